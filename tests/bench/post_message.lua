-- post_message.lua: POST /v1/messages as the seeded reader (BENCH_TOKEN from run.sh), the
-- same small body every time: the request is built once, so wrk costs nothing per request.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local token = os.getenv("BENCH_TOKEN")
assert(token ~= nil and token ~= "", "post_message.lua: BENCH_TOKEN is not set")
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"body":"wrk says hello: the quick brown fox jumps over the lazy dog"}'

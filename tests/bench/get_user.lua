-- get_user.lua: GET of the URL given to wrk with the seeded user's bearer token (the user
-- reads and the message list).
-- BENCH_TOKEN comes from run.sh; a missing one would only measure 401s, so it is fatal.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local token = os.getenv("BENCH_TOKEN")
assert(token ~= nil and token ~= "", "get_user.lua: BENCH_TOKEN is not set")
wrk.headers["Authorization"] = "Bearer " .. token

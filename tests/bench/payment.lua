-- payment.lua: POST /v2/payments (a 10.00 USD wallet top-up) as the seeded reader
-- (BENCH_TOKEN), each request with an Idempotency-Key of its own (BENCH_PAY_KEYS, which
-- run.sh makes unique per wrk process, then the thread and a counter), so that every one
-- is a new payment and a call to Stripe, never a replay of an earlier one.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local token = os.getenv("BENCH_TOKEN")
local keys = os.getenv("BENCH_PAY_KEYS")
assert(token ~= nil and token ~= "", "payment.lua: BENCH_TOKEN is not set")
assert(keys ~= nil and keys ~= "", "payment.lua: BENCH_PAY_KEYS is not set")

local next_thread = 0

function setup(thread)
	thread:set("index", next_thread)
	next_thread = next_thread + 1
end

local n = 0
local body = '{"amount":1000,"currency":"usd","purpose":"wallet_top_up"}'
local headers = {
	["Authorization"] = "Bearer " .. token,
	["Content-Type"] = "application/json",
}

function request()
	n = n + 1
	headers["Idempotency-Key"] = string.format("%s-%d-%d", keys, index or 0, n)
	return wrk.format("POST", "/v2/payments", headers, body)
end

-- transfer.lua: POST /v2/wallet/transfers of 1 (one cent) between the users run.sh signed
-- up, logged in and funded (BENCH_TRANSFER_FILE, lines "<user id>\t<access token>").
--
-- Every request is a new transfer that really moves money: its Idempotency-Key is
-- BENCH_TRANSFER_KEYS (unique per run and per wrk process: it holds BENCH_RUN_ID), then
-- the thread and the thread's request counter. wrk calls request() per thread for all of
-- that thread's connections, so thread + counter never repeats across connections.
--
-- Wallets, not pairs, are what a transfer locks (both of them, FOR UPDATE, until its
-- commit). Each thread owns its own share of the users (BENCH_TRANSFER_THREADS shares of
-- M users), and its n-th request moves 1 from user n mod M to user (n + M/2) mod M: the
-- first half of a lap pays the second half, the next half lap pays it back, so money
-- flows both ways and no balance drifts by more than 1. Requests of one thread in flight
-- at the same time have nearby counters, and two requests share a wallet only when their
-- counters differ by a multiple of M/2: with M/2 larger than the thread's connections,
-- requests in flight never wait for each other's row locks. The case measures
-- throughput, not contention on a hot pair.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local file = os.getenv("BENCH_TRANSFER_FILE")
local keys = os.getenv("BENCH_TRANSFER_KEYS")
local threads = tonumber(os.getenv("BENCH_TRANSFER_THREADS") or "")
assert(file ~= nil and file ~= "", "transfer.lua: BENCH_TRANSFER_FILE is not set")
assert(keys ~= nil and keys ~= "", "transfer.lua: BENCH_TRANSFER_KEYS is not set")
assert(threads ~= nil and threads > 0, "transfer.lua: BENCH_TRANSFER_THREADS is not set")

local next_thread = 0

function setup(thread)
	thread:set("index", next_thread)
	next_thread = next_thread + 1
end

local payers = {} -- this thread's share: { auth = "Bearer ...", body = "{...}" }
local share = 0
local n = 0
local headers = { ["Content-Type"] = "application/json" }

-- Bodies and Authorization values are built once: per request only the key changes.
function init(args)
	local all = {}
	for line in io.lines(file) do
		local id, token = line:match("^(%S+)\t(%S+)$")
		assert(id ~= nil, "transfer.lua: a line of " .. file .. " is not '<id>\\t<token>'")
		all[#all + 1] = { id = id, token = token }
	end
	assert((index or 0) < threads, "transfer.lua: more wrk threads than BENCH_TRANSFER_THREADS")
	share = math.floor(#all / threads)
	assert(share >= 4 and share % 2 == 0,
		"transfer.lua: each thread needs an even number of users, at least 4")
	local first = (index or 0) * share
	for i = 0, share - 1 do
		local to = all[first + (i + share / 2) % share + 1]
		payers[i + 1] = {
			auth = "Bearer " .. all[first + i + 1].token,
			body = string.format('{"to_user_id":"%s","amount":1,"currency":"usd"}', to.id),
		}
	end
end

function request()
	local p = payers[n % share + 1]
	n = n + 1
	headers["Authorization"] = p.auth
	headers["Idempotency-Key"] = string.format("%s-%d-%d", keys, index or 0, n)
	return wrk.format("POST", nil, headers, p.body)
end

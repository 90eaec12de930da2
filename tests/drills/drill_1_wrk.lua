-- drill_1_wrk.lua: wrk's side of drill 1 (drill_1_kill_api.py runs it and parses what it
-- prints). Each thread counts its answers per wall-clock second (os.time(), the clock the
-- drill compares its kill time with), 2xx apart from everything else, so a failure can be
-- placed in time; wrk's own summary only says how many there were.
--
-- Environment: HEX_DRILL_WRK_TOKEN, the bearer token sent with every request.
--
-- done() prints, one line each, nothing else on them:
--   WRK_SECOND t=<unix second> ok=<2xx answers> bad=<other answers>   (ascending t)
--   WRK_STATUS code=<status> n=<answers>                              (every non-2xx)
--   WRK_SUMMARY requests=.. duration_us=.. connect=.. read=.. write=.. timeout=..
--     status=.. p50_us=.. p99_us=.. max_us=..
-- connect/read/write/timeout are socket-level failures that reach no response() and so
-- have no second; status is wrk's count of answers >= 400.

local token = os.getenv("HEX_DRILL_WRK_TOKEN")
if token and token ~= "" then
	wrk.headers["Authorization"] = "Bearer " .. token
end

-- Globals, not locals: thread:get() copies a thread's globals (numbers, strings, booleans
-- and tables of them) into the main state, where done() runs.
ok_at = {}
bad_at = {}
codes = {}

function response(status, headers, body)
	local s = os.time()
	if status >= 200 and status < 300 then
		ok_at[s] = (ok_at[s] or 0) + 1
	else
		bad_at[s] = (bad_at[s] or 0) + 1
		codes[status] = (codes[status] or 0) + 1
	end
end

-- setup() and done() run in the main state; the thread objects are its only way to the
-- threads' tables.
local threads = {}

function setup(thread)
	table.insert(threads, thread)
end

local function merge(into, from)
	for k, n in pairs(from or {}) do
		into[k] = (into[k] or 0) + n
	end
end

function done(summary, latency, requests)
	local ok, bad, status = {}, {}, {}
	for _, t in ipairs(threads) do
		merge(ok, t:get("ok_at"))
		merge(bad, t:get("bad_at"))
		merge(status, t:get("codes"))
	end
	local seconds = {}
	for s in pairs(ok) do
		seconds[#seconds + 1] = s
	end
	for s in pairs(bad) do
		if not ok[s] then
			seconds[#seconds + 1] = s
		end
	end
	table.sort(seconds)
	for _, s in ipairs(seconds) do
		io.write(string.format("WRK_SECOND t=%d ok=%d bad=%d\n", s, ok[s] or 0, bad[s] or 0))
	end
	for code, n in pairs(status) do
		io.write(string.format("WRK_STATUS code=%d n=%d\n", code, n))
	end
	local e = summary.errors
	io.write(string.format(
		"WRK_SUMMARY requests=%d duration_us=%d connect=%d read=%d write=%d timeout=%d "
			.. "status=%d p50_us=%d p99_us=%d max_us=%d\n",
		summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, e.status,
		latency:percentile(50), latency:percentile(99), latency.max))
end

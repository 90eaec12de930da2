-- login.lua: POST /v1/login with valid credentials, cycling over the BENCH_LOGIN_USERS
-- users run.sh created (bench-login-<i>@example.com, password BENCH_PASSWORD), so the
-- load is not one hot row. Each wrk thread starts at its own offset.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local users = tonumber(os.getenv("BENCH_LOGIN_USERS") or "")
local password = os.getenv("BENCH_PASSWORD")
assert(users ~= nil and users > 0, "login.lua: BENCH_LOGIN_USERS is not set")
assert(password ~= nil and password ~= "", "login.lua: BENCH_PASSWORD is not set")

local next_thread = 0

function setup(thread)
	thread:set("offset", next_thread)
	next_thread = next_thread + 1
end

local requests = {}
local n = 0

-- Requests are formatted once per thread: wrk.format per request would make the
-- load generator itself a cost in the login numbers.
function init(args)
	local headers = { ["Content-Type"] = "application/json" }
	for i = 0, users - 1 do
		local body = string.format('{"email":"bench-login-%d@example.com","password":"%s"}',
			i, password)
		requests[i + 1] = wrk.format("POST", "/v1/login", headers, body)
	end
	n = (offset or 0) * 17
end

function request()
	n = n + 1
	return requests[(n % users) + 1]
end

-- webhook.lua: POST of signed Stripe events to /v2/stripe/webhook, each once. wrk's Lua
-- has no HMAC-SHA256, so webhook_events.py signs them beforehand into one file per
-- thread (BENCH_WEBHOOK_FILES.<thread>, lines "<Stripe-Signature>\t<body>"), read here
-- line by line as requests go out. A thread that reaches the end starts over: the
-- events it sends again are duplicates (200, nothing stored), which run.sh detects by
-- counting the rows stored against the replies.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local prefix = os.getenv("BENCH_WEBHOOK_FILES")
assert(prefix ~= nil and prefix ~= "", "webhook.lua: BENCH_WEBHOOK_FILES is not set")

local next_thread = 0

function setup(thread)
	thread:set("index", next_thread)
	next_thread = next_thread + 1
end

local path, file
local headers = { ["Content-Type"] = "application/json; charset=utf-8" }

function init(args)
	path = prefix .. "." .. (index or 0)
	file = assert(io.open(path, "r"))
end

function request()
	local line = file:read("*l")
	if line == nil then
		file:close()
		file = assert(io.open(path, "r"))
		line = assert(file:read("*l"), "webhook.lua: " .. path .. " is empty")
	end
	local tab = line:find("\t", 1, true)
	headers["Stripe-Signature"] = line:sub(1, tab - 1)
	return wrk.format("POST", nil, headers, line:sub(tab + 1))
end

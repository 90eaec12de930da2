-- plain.lua: a bare GET of the URL given to wrk (the nginx baseline).
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

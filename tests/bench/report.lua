-- report.lua: the done() hook every bench script shares. It prints one machine-readable
-- line that run.sh parses, so the numbers never depend on wrk's human layout.
-- Latencies are in microseconds; errors are wrk's own counters (status = non-2xx/3xx).
function done(summary, latency, requests)
	local e = summary.errors
	io.write(string.format(
		"BENCH requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d "
			.. "non2xx=%d connect=%d read=%d write=%d timeout=%d errors=%d\n",
		summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
		latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
		e.status, e.connect, e.read, e.write, e.timeout,
		e.status + e.connect + e.read + e.write + e.timeout))
end

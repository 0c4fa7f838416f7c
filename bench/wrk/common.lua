-- Shared part of every wrk script of bench/run.py, which puts it in front of the
-- scenario's own part (wrk takes one script). It numbers the threads (the global
-- `thread_index`, 0-based, set before the scenario's init runs), counts the answers
-- that are not 2xx per thread, and prints one JSON line with the totals and the
-- latency percentiles when the run ends.

local threads = {}

function setup(thread)
   thread:set("thread_index", #threads)
   table.insert(threads, thread)
end

-- Globals of each thread's Lua state; done() reads them back with thread:get.
non2xx = 0   -- answers outside 200-299
reused = 0   -- requests that had to reuse a single-use item (the pool was too small)
sample = ""  -- the first non-2xx answer, for the report

function response(status, headers, body)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
      if sample == "" then
         sample = status .. " " .. string.sub(body or "", 1, 300)
      end
   end
end

function done(summary, latency, requests)
   local bad, again, first = 0, 0, ""
   for _, thread in ipairs(threads) do
      bad = bad + (thread:get("non2xx") or 0)
      again = again + (thread:get("reused") or 0)
      local s = thread:get("sample")
      if first == "" and s ~= nil and s ~= "" then
         first = s
      end
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, '
         .. '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, '
         .. '"non2xx": %d, "reused": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
         .. '"max_us": %d, "mean_us": %.1f}\n',
      summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
      e.timeout, bad, again, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, latency.mean))
   if first ~= "" then
      io.write("BENCH_SAMPLE " .. string.gsub(first, "\n", " ") .. "\n")
   end
end

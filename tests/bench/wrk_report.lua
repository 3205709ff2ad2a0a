-- wrk script for the recgate benches.
--  * Always: at the end prints one machine-readable line
--      WRKJSON {"requests":..,"duration_us":..,"p50_us":..,"p99_us":..,...}
--    (latency percentiles in microseconds, from wrk's own histogram).
--  * If BENCH_KEYS=N (> 0) and BENCH_PATH_PREFIX are set: every request goes
--    to BENCH_PATH_PREFIX .. zero-padded random integer in [0, N) (width
--    BENCH_KEY_WIDTH, default 6), e.g. prefix
--    /v1/mws/main/recommendations?marketplace=ATVPDKIKX0DER&category=Selection&filter=BrandName%3DBrand
--    Optional BENCH_KEY_OFFSET shifts the range (default 0).
local nkeys = tonumber(os.getenv("BENCH_KEYS") or "0") or 0
local prefix = os.getenv("BENCH_PATH_PREFIX") or ""
local width = tonumber(os.getenv("BENCH_KEY_WIDTH") or "6") or 6
local offset = tonumber(os.getenv("BENCH_KEY_OFFSET") or "0") or 0

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

function init(args)
  local t = tid or 0
  math.randomseed(os.time() * 1000 + t * 7919)
  -- discard the first few values (poor initial spread with close seeds)
  for _ = 1, 10 do math.random() end
end

if nkeys > 0 then
  local fmt = "%s%0" .. width .. "d"
  request = function()
    return wrk.format("GET", string.format(fmt, prefix, offset + math.random(0, nkeys - 1)))
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors_connect":%d,"errors_read":%d,' ..
    '"errors_write":%d,"errors_status":%d,"errors_timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"p999_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end

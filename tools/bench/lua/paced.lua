-- wrk script: POSTs at a paced rate, one reading each (to /v1/events) or `batch` readings each
-- (a JSON array, to /v1/events/batch). Each connection waits `delay_ms` between requests, so the
-- offered rate is about connections × batch × 1000 / (delay_ms + latency) readings/s.
-- wrk args after "--": delay_ms [pool_size=20000] [nsensors=500] [batch=1]
-- Events come from the shared harness generator (BENCH_LUA_DIR points at it).
package.path = (os.getenv("BENCH_LUA_DIR") or ".") .. "/?.lua;" .. package.path
local ev = require("events")

local nthreads = 0
function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)
end

local pool, idx, size, pause
function init(args)
  ev.seed(tid + 1000 * os.time())
  pause = tonumber(args[1]) or 10
  size = tonumber(args[2]) or 20000
  local nsensors = tonumber(args[3]) or 500
  local batch = tonumber(args[4]) or 1
  local headers = { ["Content-Type"] = "application/json" }
  local now = os.time()
  pool = {}
  for i = 1, size do
    local body
    if batch > 1 then
      body = ev.batch_json("paced", nsensors, batch, now)
    else
      body = ev.event_json("paced", nsensors, now)
    end
    pool[i] = wrk.format("POST", wrk.path, headers, body)
  end
  idx = 0
end

function delay()
  return pause
end

function request()
  idx = idx % size + 1
  return pool[idx]
end

-- wrk script: single POST /v1/events at a paced rate. Each connection waits `delay_ms` between
-- requests, so the offered rate is about connections × 1000 / (delay_ms + latency).
-- wrk args after "--": delay_ms [pool_size=20000] [nsensors=500]
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
  local headers = { ["Content-Type"] = "application/json" }
  local now = os.time()
  pool = {}
  for i = 1, size do
    pool[i] = wrk.format("POST", wrk.path, headers, ev.event_json("paced", nsensors, now))
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

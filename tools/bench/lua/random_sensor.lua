-- wrk: each request asks for a random sensor of the read-side benchmark. SENSOR_PATH is the
-- path with {sensor} where the id goes; SENSORS the number of bench sensors.
local template = os.getenv("SENSOR_PATH")
local sensors = tonumber(os.getenv("SENSORS") or "1000")

function init()
    math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end

function request()
    local id = string.format("bench-%04d", math.random(0, sensors - 1))
    return wrk.format("GET", (template:gsub("{sensor}", id)))
end

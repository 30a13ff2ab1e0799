-- wrk scenario: GET /api/v1/deals/{id} with a uniformly random id of the benchmark account.
--
--   BENCH_API_KEY=... BENCH_MIN_ID=... BENCH_MAX_ID=... wrk -t2 -c64 -d10s -s bench/deal_get.lua http://HOST:PORT
--
-- The ids MIN..MAX all belong to the key's account (bench/gen_deals.sh prints them), so every request should
-- answer 200; wrk reports any other status as "Non-2xx or 3xx responses".

local min_id, max_id
local counter = 0

-- Runs once per thread in the main state: give each thread its own random seed.
function setup(thread)
   counter = counter + 1
   thread:set("seed", counter)
end

function init(args)
   local key = os.getenv("BENCH_API_KEY")
   min_id = tonumber(os.getenv("BENCH_MIN_ID"))
   max_id = tonumber(os.getenv("BENCH_MAX_ID"))
   if key == nil or min_id == nil or max_id == nil or max_id < min_id then
      error("set BENCH_API_KEY, BENCH_MIN_ID and BENCH_MAX_ID")
   end
   math.randomseed(os.time() * 1000 + (seed or 0))
   wrk.headers["Authorization"] = "Bearer " .. key
   wrk.headers["Accept"] = "application/json"
end

function request()
   return wrk.format("GET", "/api/v1/deals/" .. math.random(min_id, max_id))
end

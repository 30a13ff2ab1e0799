-- wrk scenario for bench/run_distribution.sh: POST /api/v1/deals {name, price, pipeline_id} without a
-- manager_id, with an admin key, so that the service distributes every deal it creates (one assignment each).
--
--   BENCH_API_KEY=... wrk -t1 -c4 -d15s --latency -s bench/deal_create.lua http://HOST:PORT -- PIPELINE_ID TAG
--
-- TAG (any word) goes into the deal names, "Bench lead TAG-<thread>-<counter>", so that the deals of one wrk
-- can be told from those of another; every answer should be 201 (wrk reports any other status as
-- "Non-2xx or 3xx responses").

local threads_made = 0

-- runs in wrk's main Lua state; thread:set makes thread_no a global of that thread's state
function setup(thread)
   threads_made = threads_made + 1
   thread:set("thread_no", threads_made)
end

local counter = 0
local pipeline, tag

function init(args)
   local key = os.getenv("BENCH_API_KEY")
   if key == nil or key == "" then
      error("deal_create.lua: set BENCH_API_KEY (an admin key of the account)")
   end
   pipeline = tonumber(args[1] or "")
   if pipeline == nil then
      error("deal_create.lua: the pipeline id is the first script argument")
   end
   tag = args[2] or "1"
   wrk.method = "POST"
   wrk.path = "/api/v1/deals"
   wrk.headers["Authorization"] = "Bearer " .. key
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["Accept"] = "application/json"
end

function request()
   counter = counter + 1
   local body = string.format('{"name":"Bench lead %s-%d-%d","price":%d,"pipeline_id":%d}',
      tag, thread_no or 0, counter, 1000 + (counter * 7919) % 1000000, pipeline)
   return wrk.format(nil, nil, nil, body)
end

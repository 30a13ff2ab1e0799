-- wrk scenarios of bench/run, chosen by BENCH_MODE (the other settings are environment variables too):
--
--   get_deal    GET /api/v1/deals/{id}, id uniform in BENCH_MIN_ID..BENCH_MAX_ID
--   list_deals  GET /api/v1/deals?manager_id=M&limit=50, M one of BENCH_MANAGERS (comma-separated ids)
--   events      POST /api/v1/events: a JSON array of 100 deal.created events with ids unique across threads
--               and runs (BENCH_RUN, a number that differs between runs), in pipeline BENCH_PIPELINE_EXT for
--               manager BENCH_MANAGER_EXT (external ids)
--   path        GET BENCH_PATH (healthz, an analytics report, ...)
--
-- BENCH_API_KEY is sent as a Bearer key when set. BENCH_DELAY_MS > 0 makes each connection wait that long
-- between its requests (wrk's delay()), to load the server at a chosen fraction of its maximum rate.

local mode = os.getenv("BENCH_MODE") or "path"
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
local threads_made = 0

function setup(thread)
   threads_made = threads_made + 1
   thread:set("thread_no", threads_made)
end

local min_id, max_id, managers, path, run, pipeline_ext, manager_ext
local counter = 0

function init(args)
   math.randomseed(os.time() * 1000 + (thread_no or 0))
   local key = os.getenv("BENCH_API_KEY")
   if key ~= nil and key ~= "" then
      wrk.headers["Authorization"] = "Bearer " .. key
   end
   wrk.headers["Accept"] = "application/json"
   min_id = tonumber(os.getenv("BENCH_MIN_ID") or "")
   max_id = tonumber(os.getenv("BENCH_MAX_ID") or "")
   managers = {}
   for m in string.gmatch(os.getenv("BENCH_MANAGERS") or "", "%d+") do
      managers[#managers + 1] = m
   end
   path = os.getenv("BENCH_PATH") or "/healthz"
   run = tonumber(os.getenv("BENCH_RUN") or "1")
   pipeline_ext = os.getenv("BENCH_PIPELINE_EXT") or "bench"
   manager_ext = os.getenv("BENCH_MANAGER_EXT") or "bench-m1"
   if mode == "get_deal" and (min_id == nil or max_id == nil) then
      error("get_deal: set BENCH_MIN_ID and BENCH_MAX_ID")
   end
   if mode == "list_deals" and #managers == 0 then
      error("list_deals: set BENCH_MANAGERS")
   end
   if mode == "events" then
      wrk.method = "POST"
      wrk.path = "/api/v1/events"
      wrk.headers["Content-Type"] = "application/json"
   end
end

if delay_ms > 0 then
   function delay()
      return delay_ms
   end
end

local function events_body()
   counter = counter + 1
   local at = os.date("!%Y-%m-%dT%H:%M:%SZ")
   local parts = {}
   for i = 1, 100 do
      local id = string.format("b%d-%d-%d-%d", run, thread_no or 0, counter, i)
      parts[i] = string.format(
         '{"id":"%s","type":"deal.created","at":"%s","data":{"deal":"%s","name":"Bench event deal %s",'
            .. '"price":%d,"pipeline":"%s","manager":"%s"}}',
         id, at, id, id, 1000 + (counter * 7919 + i) % 1000000, pipeline_ext, manager_ext)
   end
   return "[" .. table.concat(parts, ",") .. "]"
end

function request()
   if mode == "get_deal" then
      return wrk.format("GET", "/api/v1/deals/" .. math.random(min_id, max_id))
   elseif mode == "list_deals" then
      return wrk.format("GET", "/api/v1/deals?limit=50&manager_id=" .. managers[math.random(1, #managers)])
   elseif mode == "events" then
      return wrk.format(nil, nil, nil, events_body())
   end
   return wrk.format("GET", path)
end

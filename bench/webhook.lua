-- wrk script for bench/run_ingest.sh: POST /api/v1/webhooks/amocrm/{token} with amoCRM "leads[add]" bodies
-- in the shape of ../shared/amocrm/samples/leads_add.form (percent-encoded brackets, a Cyrillic name), each
-- one different (the service drops the same body within 10 minutes as a duplicate): the lead id is
-- <run><thread><counter>, unique across the threads of one wrk and across runs with different RUN tags.
--
--   wrk -t2 -c64 -d15s --latency -s bench/webhook.lua http://127.0.0.1:PORT -- TOKEN RUN
--
-- TOKEN is the account's webhook token; RUN a positive number that differs between runs.

local token, run = "", 1
local threads_made = 0

-- runs in wrk's main Lua state; thread:set makes thread_no a global of that thread's state
function setup(thread)
   threads_made = threads_made + 1
   thread:set("thread_no", threads_made)
end

local counter = 0
local prefix, suffix, path, headers

function init(args)
   token = args[1] or error("webhook.lua: the webhook token is the first script argument")
   run = tonumber(args[2] or "1")
   path = "/api/v1/webhooks/amocrm/" .. token
   headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
   -- everything but the id and the times is fixed; the name is "Заявка с сайта"
   local l = "leads%5Badd%5D%5B0%5D%5B"
   prefix = l .. "id%5D="
   suffix = "&" .. l .. "name%5D=%D0%97%D0%B0%D1%8F%D0%B2%D0%BA%D0%B0+%D1%81+%D1%81%D0%B0%D0%B9%D1%82%D0%B0"
      .. "&" .. l .. "status_id%5D=55012001"
      .. "&" .. l .. "pipeline_id%5D=6101001"
      .. "&" .. l .. "price%5D=1000"
      .. "&" .. l .. "responsible_user_id%5D=8800001"
      .. "&" .. l .. "created_user_id%5D=8800001"
      .. "&" .. l .. "account_id%5D=29085511"
end

function request()
   counter = counter + 1
   local now = os.time()
   -- run (any digits) .. thread (3 digits) .. counter (9 digits): unique, and a valid amoCRM id
   local id = string.format("%d%03d%09d", run, thread_no, counter)
   local l = "leads%5Badd%5D%5B0%5D%5B"
   local body = prefix .. id .. suffix
      .. "&" .. l .. "date_create%5D=" .. now
      .. "&" .. l .. "created_at%5D=" .. now
      .. "&" .. l .. "updated_at%5D=" .. now
      .. "&account%5Bsubdomain%5D=acme&account%5Bid%5D=29085511"
   return wrk.format("POST", path, headers, body)
end

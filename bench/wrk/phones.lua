-- POST /api/v1/auth/request_code/ with a phone number no other request of the run uses.
-- Arguments after `--`:
--   1  the first number, the 10 digits after +7 (e.g. 9150000000)
--   2  how many numbers each thread may use (thread i starts at first + i * this)

local next_number, last_number
local headers = {}

function init(args)
   local per_thread = tonumber(args[2])
   next_number = tonumber(args[1]) + thread_index * per_thread
   last_number = next_number + per_thread - 1
   headers["Content-Type"] = "application/json"
end

function request()
   if next_number > last_number then
      reused = reused + 1
   else
      next_number = next_number + 1
   end
   local body = string.format('{"phone_number": "+7%.0f"}', next_number - 1)
   return wrk.format("POST", nil, headers, body)
end

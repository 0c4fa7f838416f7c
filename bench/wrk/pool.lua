-- POSTs in which every request uses up one line of a file (single-use codes, one user
-- per activation). The lines are split between the threads: thread i of n takes lines
-- i+1, i+1+n, ... Arguments after `--`:
--   1  the file
--   2  the number of wrk threads
--   3  "body": each line is the JSON body;
--      "token": each line is a session token, sent as "Authorization: Bearer <line>"
--      "pair": each line is "<token> <invite code>": the token as with "token", the
--      body {"invite_code": "<code>"}
--   4  with "token": the JSON body of every request
-- A thread that runs out of lines starts over and counts every request after that in
-- `reused` (the report flags the run: those requests fail, the pool was too small).

local items, used, mode, fixed_body = {}, 0, nil, nil
local headers = {}

function init(args)
   local threads = tonumber(args[2])
   mode, fixed_body = args[3], args[4]
   local n = 0
   for line in io.lines(args[1]) do
      if n % threads == thread_index then
         items[#items + 1] = line
      end
      n = n + 1
   end
   headers["Content-Type"] = "application/json"
end

function request()
   used = used + 1
   if used > #items then
      reused = reused + 1
   end
   local item = items[(used - 1) % #items + 1]
   if mode == "token" then
      headers["Authorization"] = "Bearer " .. item
      return wrk.format("POST", nil, headers, fixed_body)
   end
   if mode == "pair" then
      local token, code = item:match("^(%S+) (%S+)$")
      headers["Authorization"] = "Bearer " .. token
      return wrk.format("POST", nil, headers, '{"invite_code": "' .. code .. '"}')
   end
   return wrk.format("POST", nil, headers, item)
end

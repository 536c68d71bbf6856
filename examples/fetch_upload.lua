-- fetch_upload.lua: uploads a body made as it goes: a function hands the
-- HTTP client one chunk at a time (here, numbered lines, pausing now and
-- then as a real producer would), and the body goes chunked since its
-- length is not known ahead. Prints the response's status and body.
--
--   build/eddy examples/fetch_upload.lua http://127.0.0.1:8080/upload [LINES]

local eddy = require "eddy"

local url = arg[1] or "http://127.0.0.1:8080/upload"
local lines = tonumber(arg[2]) or 100000

local i = 0
local function next_chunk()
  if i >= lines then return nil end -- the end of the body
  local chunk = {}
  for n = i + 1, math.min(i + 1000, lines) do chunk[#chunk + 1] = ("line %d\n"):format(n) end
  i = i + #chunk
  eddy.sleep(0) -- a producer may wait on eddy I/O between chunks
  return table.concat(chunk)
end

local res, err, detail = eddy.http.post(url, next_chunk, { timeout = 30 })
if not res then
  print("failed: " .. err .. " (" .. detail .. ")")
  os.exit(1)
end
print(res.status, res.body)

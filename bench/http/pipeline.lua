-- pipeline.lua: a wrk script that sends 8 requests at a time on each
-- connection (HTTP pipelining), for bench/http.sh.
init = function(args)
  local r = {}
  for i = 1, 8 do r[i] = wrk.format(nil, "/") end
  req = table.concat(r)
end
request = function() return req end

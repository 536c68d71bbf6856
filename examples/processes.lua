-- processes.lua: eddy.process, child processes without blocking the loop.
-- run() captures a command's output (with a timeout and a size limit);
-- spawn() gives the child's stdin and stdout as pipes that read and
-- write like TCP connections. No shell is involved unless asked for.
--
--   build/eddy examples/processes.lua

local eddy = require "eddy"
local process = eddy.process

local r = assert(process.run("uname", { "-s" }, { timeout = 5 }))
print("uname: " .. r.stdout:gsub("\n$", "") .. " (exit " .. r.code .. ")")

-- A conversation with sort: write the words, close its stdin, read back.
local p = assert(process.spawn({ "sort" }))
for _, word in ipairs({ "pear", "apple", "fig" }) do
  p.stdin:write(word .. "\n")
end
p.stdin:close()
while true do
  local line = p.stdout:read_line({ timeout = 5 })
  if not line then break end
  print("sorted: " .. line)
end
print("sort exited with " .. p:wait(5))

-- Several children at once, each in a task of its own.
local tasks = {}
for i = 1, 3 do
  tasks[i] = eddy.spawn(function()
    return process.run("sh", { "-c", 'echo "child $1"; exit "$1"', "sh", tostring(i) }).code
  end)
end
for i = 1, 3 do
  local _, code = tasks[i]:join()
  print(("child %d exited with %d"):format(i, code))
end

-- A child that takes too long is stopped: SIGTERM, then SIGKILL.
print("slow child: " .. select(2, process.run("sleep", { "10" }, { timeout = 0.2 })))

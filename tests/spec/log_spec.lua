-- eddy.log: lines as the eddy command writes them to stderr or a file,
-- plain and JSON (read back with lua-cjson), with levels, fields, the task
-- and thread that wrote them, and the HTTP server's access log.

local h = require "helper"
local cjson = require "cjson"

local function lines_of(out, pattern)
  local found = {}
  for line in out:gmatch("[^\n]+") do
    if not pattern or line:find(pattern) then found[#found + 1] = line end
  end
  return found
end

describe("eddy.log", function()
  it("writes plain lines: time, level, task, message and sorted fields", function()
    local rc, out = h.eddy_run([[
local eddy = require "eddy"
local log = require "eddy.log"
log.info("signed up", { user = 42, plan = "pro plus", ok = true })
eddy.spawn(function() log.warn("from a task") end):join()
]])
    assert.equal(0, rc, out)
    local l = lines_of(out)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ INFO %[task 1%] signed up ok=true plan=\"pro plus\" user=42$", l[1])
    assert.matches("WARN %[task 2%] from a task$", l[2])
  end)

  it("writes JSON lines that parse, with reserved names kept apart", function()
    local rc, out = h.eddy_run([[
local log = require "eddy.log"
log.configure{ format = "json", fields = { service = "shop" } }
log.error("payment failed", { order = 7, amount = 12.5, msg = "card\n\"declined\"", items = { "a", "b" } })
]])
    assert.equal(0, rc, out)
    local rec = cjson.decode(lines_of(out)[1])
    assert.equal("error", rec.level)
    assert.equal("payment failed", rec.msg)
    assert.equal(1, rec.task)
    assert.equal("shop", rec.service)
    assert.equal(7, rec.order)
    assert.equal(12.5, rec.amount)
    assert.equal('card\n"declined"', rec["field.msg"])
    assert.same({ "a", "b" }, rec.items)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT[%d:.]+Z$", rec.time)
  end)

  it("drops lines below the level, which can change while running", function()
    local rc, out = h.eddy_run([[
local log = require "eddy.log"
log.debug("not shown")
print("enabled debug:", log.enabled("debug"), "level:", log.level())
log.set_level("debug")
log.debug("now shown")
log.set_level("error")
log.warn("dropped")
log.error("kept")
]])
    assert.equal(0, rc, out)
    assert.equal(0, #lines_of(out, "not shown"))
    assert.matches("enabled debug:%s+false%s+level:%s+info", out)
    assert.equal(1, #lines_of(out, "DEBUG %[task 1%] now shown"))
    assert.equal(0, #lines_of(out, "dropped"))
    assert.equal(1, #lines_of(out, "ERROR %[task 1%] kept"))
  end)

  it("binds fields to a logger with with()", function()
    local rc, out = h.eddy_run([[
local log = require "eddy.log"
local req = log.with({ request = "r-1" })
req:info("start")
req:with({ step = 2 }):info("next", { extra = "x" })
]])
    assert.equal(0, rc, out)
    assert.equal(1, #lines_of(out, "start request=r%-1$"))
    assert.equal(1, #lines_of(out, "next extra=x request=r%-1 step=2$"))
  end)

  it("writes to a file, and reopens it after a rotation", function()
    local path = os.tmpname()
    local rc, out = h.eddy_run(([[
local log = require "eddy.log"
assert(log.configure{ file = %q })
log.info("first")
os.rename(%q, %q .. ".1")
log.info("second") -- still to the moved file
assert(log.reopen())
log.info("third")
print(log.configure{ file = "/nonexistent/dir/log" })
]]):format(path, path, path))
    assert.equal(0, rc, out)
    assert.matches("nil%s+/nonexistent/dir/log: No such file or directory", out)
    local rotated = h.read_file(path .. ".1")
    local fresh = h.read_file(path)
    os.remove(path)
    os.remove(path .. ".1")
    assert.equal(2, #lines_of(rotated))
    assert.matches("first", rotated)
    assert.matches("second", rotated)
    assert.equal(1, #lines_of(fresh))
    assert.matches("third", fresh)
  end)

  it("names the thread when there are several", function()
    local rc, out = h.eddy_run([[
local eddy = require "eddy"
require("eddy.log").info("hello", { thread_seen = eddy.worker.thread() })
]], nil, "--threads 2")
    assert.equal(0, rc, out)
    assert.equal(1, #lines_of(out, "%[thread 1 task 1%] hello thread_seen=1"))
    assert.equal(1, #lines_of(out, "%[thread 2 task 1%] hello thread_seen=2"))
  end)

  it("writes an access line per request when the HTTP server asks", function()
    local rc, out = h.eddy_run([[
local eddy = require "eddy"
local app = eddy.http.server()
app:route("GET", "/items/:id", function(req, res) res:send("item " .. req.params.id) end)
local srv = assert(app:listen("127.0.0.1", 0, { access_log = true }))
local port = srv:port()
os.execute(("curl -s -m 5 -o /dev/null http://127.0.0.1:%d/items/9 http://127.0.0.1:%d/nothing &"):format(port, port))
for _ = 1, 100 do
  eddy.sleep(0.02)
  if eddy.metrics.runtime().http_4xx > 0 then break end
end
srv:close()
]])
    assert.equal(0, rc, out)
    local ok = lines_of(out, "access .*path=/items/9")
    assert.equal(1, #ok, out)
    assert.matches("INFO %[task %d+%] access bytes=%d+ method=GET ms=[%d.]+ path=/items/9 remote=127.0.0.1 status=200", ok[1])
    assert.equal(1, #lines_of(out, "access .*path=/nothing remote=127.0.0.1 status=404"))
  end)

  it("refuses bad levels, formats and fields", function()
    local log = require "eddy.log"
    assert.has_error(function() log.set_level("verbose") end)
    assert.has_error(function() log.configure({ format = "xml" }) end)
    assert.has_error(function() log.info("x", "not a table") end)
    assert.has_error(function() log.with("x") end)
  end)
end)

local h = require "helper"
local eddy = h.eddy
describe("smoke", function()
  it("runs a task", function()
    local v = h.run(function() return eddy.spawn(function() return 1 end):join() end)
    assert.is_true(v)
  end)
end)

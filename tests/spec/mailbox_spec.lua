-- eddy.mailbox: messages to a reactor thread of any worker process.
local h = require "helper"
local eddy = h.eddy

describe("eddy.mailbox", function()
  it("a thread receives what another thread sends, with the sender", function()
    local rc, out = h.eddy_run([[
      local eddy = require "eddy"
      local mb = eddy.mailbox
      if eddy.worker.thread() == 1 then
        for _ = 1, 3 do
          local msg, w, t = mb.recv(5)
          print(("got %s %s from %d.%d"):format(msg.n, msg.list[2], w, t))
        end
        mb.close()
      else
        for i = 1, 3 do
          local ok, err
          repeat ok, err = mb.send(1, 1, { n = i, list = { "a", "b" } }) eddy.sleep(0.005) until ok or err ~= "not found"
        end
      end
    ]], "", "--threads 2")
    assert.equal(0, rc, out)
    assert.equal("got 1 b from 1.2\ngot 2 b from 1.2\ngot 3 b from 1.2\n", out)
  end)

  it("a message sent from one worker process reaches a task in another", function()
    local rc, out = h.sh(h.eddy_bin .. " --workers 2 --threads 2 examples/mailbox.lua")
    assert.equal(0, rc, out)
    for _, who in ipairs({ "2.1", "2.2", "1.2" }) do
      assert.matches('collector heard "hello from ' .. who:gsub("%.", "%%.") .. '"', out)
      assert.matches('was told "welcome ' .. who:gsub("%.", "%%.") .. '"', out)
    end
  end)

  it("keeps receiving in every run of a Lua state, not only the first", function()
    local rc, out = h.luajit_run([[
      local eddy = require "eddy"
      for run = 1, 3 do
        -- An error ends each run while its mailbox is open.
        pcall(eddy.run, function()
          eddy.timer.after(0.05, function()
            assert(eddy.mailbox.send(eddy.worker.id(), eddy.worker.thread(), { run = run }))
          end)
          local msg, err = eddy.mailbox.recv(2)
          print("run " .. run .. ": " .. tostring(msg and msg.run or err))
          error("the end of the run")
        end)
      end
    ]])
    assert.equal(0, rc, out)
    assert.matches("run 1: 1\nrun 2: 2\nrun 3: 3", out)
  end)

  it("broadcast reaches every open mailbox", function()
    local rc, out = h.eddy_run([[
      local eddy = require "eddy"
      local mb = eddy.mailbox
      local ready = eddy.shared.atomic("ready")
      local got = eddy.spawn(function() return mb.recv(5) end)
      eddy.yield()
      ready:add(1)
      if eddy.worker.thread() == 1 then
        while ready:get() < 3 do eddy.sleep(0.01) end
        print("delivered " .. mb.broadcast("to all"))
      end
      local _, msg = got:join()
      print("thread " .. eddy.worker.thread() .. " " .. tostring(msg))
      mb.close()
    ]], "", "--threads 3")
    assert.equal(0, rc, out)
    assert.matches("delivered 3", out)
    for t = 1, 3 do assert.matches("thread " .. t .. " to all", out) end
  end)

  it("answers full, not found, too large and timeout, and loses no accepted message", function()
    h.run(function()
      local mb = eddy.mailbox
      mb.configure({ capacity = 4 })
      assert.same({ nil, "not found" }, { mb.send(1, 9, "x") })
      assert.same({ nil, "timeout" }, { mb.recv(0.02) }) -- opens it
      assert.has_error(function() mb.configure({ capacity = 8 }) end)
      local sent = 0
      while true do
        local ok, err = mb.send(1, 1, sent + 1)
        if not ok then
          assert.equal("full", err)
          break
        end
        sent = sent + 1
        assert.is_true(sent < 1000, "never full")
        if sent % 4 == 0 then eddy.sleep(0.01) end -- the reader fills the channel
      end
      assert.is_true(sent >= 4)
      for i = 1, sent do
        local v = mb.recv(1)
        assert.equal(i, v)
      end
      assert.same({ nil, "timeout" }, { mb.recv(0.01) })
      assert.same({ nil, "too large" }, { mb.send(1, 1, ("x"):rep(100 * 1024)) })
      assert.has_error(function() mb.send(1, 1, print) end)
      assert.has_error(function() mb.send("1", 1, 1) end)
      mb.close()
      assert.same({ nil, "not found" }, { mb.send(1, 1, "closed now") })
    end)
  end)
end)

-- Installs eddy with luarocks into a temporary tree, exactly as a user
-- would, and runs an example with stock LuaJIT and the installed command.
local h = require "helper"

describe("the luarocks install", function()
  it("installs into a tree and runs an example under stock luajit", function()
    local tree = os.tmpname()
    os.remove(tree)
    local rc, out = h.sh("luarocks --lua-version=5.1 make --tree=" .. tree ..
      " rockspec/eddy-scm-1.rockspec LUA_INCDIR=/usr/include/luajit-2.1")
    assert.equal(0, rc, out)
    assert.matches("eddy scm%-1 is now installed", out)

    -- Only the tree: the build directory is not on the paths.
    local env = ("LUA_PATH='%s/share/lua/5.1/?.lua;;' LUA_CPATH='%s/lib/lua/5.1/?.so;;'")
      :format(tree, tree)
    rc, out = h.sh(env .. " " .. h.luajit .. " examples/echo.lua")
    assert.equal(0, rc, out)
    assert.matches("50 clients, 1000 lines echoed", out)

    -- A submodule required before eddy itself finds its way too.
    rc, out = h.sh(env .. " " .. h.luajit .. [[ -e 'local tcp = require "eddy.tcp"; print(type(tcp.connect))']])
    assert.equal(0, rc, out)
    assert.matches("function", out)

    rc, out = h.sh(tree .. "/bin/eddy examples/pipeline.lua")
    assert.equal(0, rc, out)
    assert.matches("sum of squares 338350", out)
    h.sh("rm -rf " .. tree .. " build-rock")
  end)
end)

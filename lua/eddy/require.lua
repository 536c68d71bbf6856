-- require, written in Lua so that a module whose main chunk waits (reads a
-- file, asks a server) can be loaded from a task: Lua cannot yield across
-- the C function that the stock require is. It keeps Lua 5.1's rules
-- (package.loaded, package.preload, package.loaders), and a task that
-- requires a module another task is still loading waits for it.

local c = require "eddy.c.task"

local package, type, error, pcall, concat = package, type, error, pcall, table.concat
local self_, suspend, wake = c.self, c.suspend, c.wake

local loading = {} -- name -> { owner = slot, waiters = { slot, gen, ... } }

local function find_loader(name)
  local msgs = {}
  for _, searcher in ipairs(package.loaders) do
    local loader = searcher(name)
    if type(loader) == "function" then return loader end
    if type(loader) == "string" then msgs[#msgs + 1] = loader end
  end
  error("module '" .. name .. "' not found:" .. concat(msgs), 3)
end

local function current_slot()
  if not c.running() then return nil end
  local ok, slot = pcall(self_)
  return ok and slot or nil
end

local function finish(name, state)
  loading[name] = nil
  local w = state.waiters
  for i = 1, #w, 2 do wake(w[i], w[i + 1], true) end
end

local function wait_for(name, state)
  local slot, gen = self_()
  local w = state.waiters
  w[#w + 1] = slot
  w[#w + 1] = gen
  local ok, err = suspend(nil, "require")
  if not ok then error("require '" .. name .. "': " .. err, 3) end
  local mod = package.loaded[name]
  if mod == nil then
    error("module '" .. name .. "' failed to load in another task", 3)
  end
  return mod
end

local function require(name)
  if type(name) ~= "string" then
    error("bad argument #1 to 'require' (string expected, got " .. type(name) .. ")", 2)
  end
  local loaded = package.loaded
  local mod = loaded[name]
  if mod ~= nil then return mod end
  local slot = current_slot()
  local state = loading[name]
  if state then
    if slot == nil or state.owner == slot then
      error("loop or previous error loading module '" .. name .. "'", 2)
    end
    return wait_for(name, state)
  end
  local loader = find_loader(name)
  state = { owner = slot, waiters = {} }
  loading[name] = state
  local ok, res = pcall(loader, name)
  finish(name, state)
  if not ok then error(res, 0) end
  if res ~= nil then loaded[name] = res end
  if loaded[name] == nil then loaded[name] = true end
  return loaded[name]
end

_G.require = require

-- Forgets loads in progress: their tasks are gone (a run ended).
local function reset()
  loading = {}
end

return { require = require, reset = reset }

-- eddy.fs: files and directories without blocking the loop. Each call
-- waits in its task for a request on libuv's threadpool (bindings/fs.c);
-- this file adds what is made of several requests: whole-file reads and
-- writes (an atomic replace through a temporary file), lines(), mkdir with
-- parents, recursive remove, temporary files. Failures are nil, err with
-- the system's reason: "not found", "permission denied", "already exists",
-- "is a directory", "not a directory", "not empty", "no space", ...

require "eddy" -- sets up the runtime when this module is loaded first
local c = require "eddy.c.fs"

local type, error = type, error
local find, sub, match, concat, sort = string.find, string.sub, string.match,
  table.concat, table.sort
local getenv = os.getenv

local M = {
  open = c.open,
  stat = c.stat,
  rename = c.rename,
  watch = c.watch,
}

local File = c.File -- the file objects' methods (bindings/fs.c)
local c_read, c_seek, c_stat = File.read, File.seek, File.stat

local CHUNK = 262144     -- lines() reads this much at a time
local BIG_READ = 1048576 -- read() of the rest, one request at a time

local function check_opts(opts, n, fn)
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #" .. n .. " to '" .. fn .. "' (options table expected)", 3)
  end
  return opts or {}
end

-- ======================================================================
-- File methods

-- file:read([n]) → up to n bytes ("" at the end of the file); without n,
-- the rest of the file. nil, err on failure.
function File.read(self, n)
  if n ~= nil then return c_read(self, n) end
  local parts = {}
  while true do
    local s, err = c_read(self, BIG_READ)
    if not s then return nil, err end
    if s == "" then break end
    parts[#parts + 1] = s
  end
  return concat(parts)
end

-- file:seek([whence[, offset]]) → the new position: whence "set", "cur"
-- (default) or "end".
function File.seek(self, whence, offset)
  if whence ~= "end" then return c_seek(self, whence, offset) end
  local st, err = c_stat(self)
  if not st then return nil, err end
  return c_seek(self, "set", st.size + (offset or 0))
end

-- for line in file:lines() do ... end: the lines without their "\n",
-- reading CHUNK bytes at a time, so that a file of any size takes little
-- memory. A read error is raised.
function File.lines(self)
  local buf, pos, eof = "", 1, false
  return function()
    while true do
      local nl = find(buf, "\n", pos, true)
      if nl then
        local line = sub(buf, pos, nl - 1)
        pos = nl + 1
        return line
      end
      if eof then
        if pos > #buf then return nil end
        local line = sub(buf, pos)
        pos = #buf + 1
        return line
      end
      local chunk, err = c_read(self, CHUNK)
      if not chunk then error("lines: " .. err, 2) end
      if chunk == "" then
        eof = true
      else
        buf = pos > #buf and chunk or sub(buf, pos) .. chunk
        pos = 1
      end
    end
  end
end

-- ======================================================================
-- Whole files

-- read_file(path) → the file's bytes, or nil, err.
function M.read_file(path)
  local f, err = c.open(path, "r")
  if not f then return nil, err end
  local data
  data, err = File.read(f)
  f:close()
  if not data then return nil, err end
  return data
end

local function check_data(data, fn)
  if type(data) ~= "string" then
    error("bad argument #2 to '" .. fn .. "' (string expected, got " .. type(data) .. ")", 3)
  end
end

local function write_all(path, data, mode, perm)
  local f, err = c.open(path, mode, perm)
  if not f then return nil, err end
  local ok
  ok, err = f:write(data)
  local closed, cerr = f:close()
  if not ok then return nil, err end
  if not closed then return nil, cerr end
  return true
end

local function dirname(path)
  return match(path, "^(.*)/[^/]*$") or "."
end

-- Writes into a temporary file beside path, syncs it and renames it over
-- path: a reader sees the old bytes or the new ones, never a part.
local function write_atomic(path, data, perm)
  if not perm then
    local st = c.stat(path)
    perm = st and st.perm or 420 -- 0644, as a new file under umask 022
  end
  local dir = dirname(path)
  local f, tmp = c.mkstemp(dir .. "/.eddy-tmp-XXXXXX")
  if not f then return nil, tmp end
  local ok, err = f:write(data)
  if ok then ok, err = f:sync() end
  if ok then ok, err = f:chmod(perm) end
  local closed, cerr = f:close()
  if ok and not closed then ok, err = nil, cerr end
  if ok then ok, err = c.rename(tmp, path) end
  if not ok then
    c.unlink(tmp)
    return nil, err
  end
  return true
end

-- write_file(path, data[, opts]) → true, or nil, err. opts: atomic (write
-- a temporary file, sync it, rename it over path), perm (of a new file;
-- atomic keeps an existing file's, else 0644).
function M.write_file(path, data, opts)
  opts = check_opts(opts, 3, "write_file")
  check_data(data, "write_file")
  if opts.atomic then return write_atomic(path, data, opts.perm) end
  return write_all(path, data, "w", opts.perm)
end

-- append(path, data) → true, or nil, err: the file is made if need be.
function M.append(path, data)
  check_data(data, "append")
  return write_all(path, data, "a")
end

-- ======================================================================
-- Paths

-- lstat(path): stat of a link itself.
function M.lstat(path)
  return c.stat(path, false)
end

-- exists(path) → true or false; nil, err when it cannot tell.
function M.exists(path)
  local st, err = c.stat(path)
  if st then return true end
  if err == "not found" or err == "not a directory" then return false end
  return nil, err
end

local function by_name(a, b) return a.name < b.name end

-- list(path) → { {name =, type =}, ... } sorted by name, or nil, err.
-- type: "file", "directory", "link", "fifo", "socket", "char", "block".
function M.list(path)
  local entries, err = c.list(path)
  if not entries then return nil, err end
  sort(entries, by_name)
  return entries
end

local function mkdir_parents(path, perm)
  local ok, err = c.mkdir(path, perm)
  if ok then return true end
  if err == "already exists" then
    local st = c.stat(path)
    if st and st.type == "directory" then return true end
    return nil, err
  end
  if err ~= "not found" then return nil, err end
  local parent = dirname(path)
  if parent == path or parent == "" or parent == "." then return nil, err end
  ok, err = mkdir_parents(parent, perm)
  if not ok then return nil, err end
  ok, err = c.mkdir(path, perm)
  if ok or err == "already exists" then return true end -- made meanwhile
  return nil, err
end

-- mkdir(path[, opts]) → true, or nil, err. opts: parents (make missing
-- parents; an existing directory is fine), perm (default 0777, less the
-- umask).
function M.mkdir(path, opts)
  opts = check_opts(opts, 2, "mkdir")
  path = match(path, "^(.-)/*$")
  if path == "" then path = "/" end
  if opts.parents then return mkdir_parents(path, opts.perm) end
  return c.mkdir(path, opts.perm)
end

local function remove_tree(path)
  local entries, err = c.list(path)
  if not entries then return nil, err end
  for i = 1, #entries do
    local e = entries[i]
    local child = path .. "/" .. e.name
    local ok
    if e.type == "directory" then
      ok, err = remove_tree(child)
    else
      ok, err = c.unlink(child)
    end
    if not ok and err ~= "not found" then return nil, err end
  end
  return c.rmdir(path)
end

-- remove(path[, opts]) → true, or nil, err: a file, a link or an empty
-- directory; with opts.recursive, a directory and all in it.
function M.remove(path, opts)
  opts = check_opts(opts, 2, "remove")
  local st, err = c.stat(path, false)
  if not st then return nil, err end
  if st.type ~= "directory" then return c.unlink(path) end
  if opts.recursive then return remove_tree(path) end
  return c.rmdir(path)
end

local function template(opts, fn)
  opts = check_opts(opts, 1, fn)
  local dir = opts.dir or getenv("TMPDIR") or "/tmp"
  return dir .. "/" .. (opts.prefix or "eddy-") .. "XXXXXX"
end

-- tmpfile([opts]) → file (open for reading and writing), path; or nil,
-- err. opts: dir (default $TMPDIR or /tmp), prefix (default "eddy-"). The
-- file stays until removed.
function M.tmpfile(opts)
  return c.mkstemp(template(opts, "tmpfile"))
end

-- tmpdir([opts]) → the path of a new directory, or nil, err (opts as
-- tmpfile's).
function M.tmpdir(opts)
  return c.mkdtemp(template(opts, "tmpdir"))
end

return M

-- The luarocks spec of eddy. From a checkout:
--   luarocks --lua-version=5.1 make rockspec/eddy-scm-1.rockspec \
--     LUA_INCDIR=/usr/include/luajit-2.1
-- installs eddy.so (the C core with eddy's Lua modules inside), the Lua
-- files of lua/eddy/, and the `eddy` command. Needs the Debian packages
-- that scripts/deps.sh lists (libluajit2-5.1-dev, libuv1-dev, libc-ares-dev,
-- libcurl4-openssl-dev, libmariadb-dev, libhiredis-dev, libssl-dev, libsqlite3-dev).
rockspec_format = "3.0"
package = "eddy"
version = "scm-1"
source = {
  url = "git+file:///dev/null", -- built from the local checkout by `make`
}
description = {
  summary = "An embeddable async network runtime for LuaJIT on libuv",
  detailed = [[
    Tasks (coroutines) that read as sequential code while thousands wait on
    I/O: timers, channels, TCP and UDP servers and clients, DNS on the loop,
    signals. Run scripts with `eddy script.lua`, or require "eddy" from
    LuaJIT and call eddy.run(fn).
  ]],
  license = "MIT",
}
dependencies = { "lua >= 5.1, < 5.2" }
external_dependencies = {
  LIBUV = { header = "uv.h" },
  LIBCARES = { header = "ares.h" },
  HIREDIS = { header = "hiredis/read.h" },
  MARIADB = { header = "mariadb/mysql.h" },
  OPENSSL = { header = "openssl/ssl.h" },
  SQLITE3 = { header = "sqlite3.h" },
}
build = {
  type = "make",
  build_target = "rock",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    BUILD = "build-rock",
  },
  install_target = "install-rock",
  install_variables = {
    BUILD = "build-rock",
    INST_LIBDIR = "$(LIBDIR)",
    INST_LUADIR = "$(LUADIR)",
    INST_BINDIR = "$(BINDIR)",
  },
}

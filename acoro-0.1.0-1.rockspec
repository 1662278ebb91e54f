-- `luarocks make` (Debian's luarocks, LuaJIT as its Lua) builds acoro with
-- CMake and installs it into a LuaRocks tree: `require "acoro"` from a
-- stock luajit with the tree's paths, and the acoro CLI on the tree's bin.
-- Needs the Debian packages of tools/setup (libuv, OpenSSL, msgpack-c,
-- LuaJIT's headers) and cmake.
rockspec_format = "3.0"
package = "acoro"
version = "0.1.0-1"
source = {
  url = "git+file://.", -- `luarocks make` builds the checkout it runs in
}
description = {
  summary = "Coroutines in C with a LuaJIT layer: messages, I/O, timers, peers",
  detailed = [[
acoro runs many coroutines on one thread over libuv, with a LuaJIT API
in the style of Python's asyncoro: spawn, send/receive, sleep, I/O,
channels, locks, and peer nodes that pass messages between processes.]],
}
dependencies = {
  "lua == 5.1", -- LuaJIT
}
build = {
  type = "cmake",
  variables = {
    CMAKE_BUILD_TYPE = "RelWithDebInfo",
    CMAKE_INSTALL_PREFIX = "$(PREFIX)",
    ACORO_LUAROCKS = "ON",
    ACORO_EMBED_EXAMPLES = "OFF",
    ACORO_BENCH = "OFF",
  },
}

-- Packaging: `cmake --install` into a temporary prefix gives what a C host
-- and a stock LuaJIT need. A tiny host builds against it both ways (the
-- pkg-config file, find_package(acoro CONFIG)) and runs scripts; the
-- installed CLI and `require "acoro"` from luajit work from that prefix, and
-- `luarocks make` installs into a LuaRocks tree.
local support = require "support"

local build = os.getenv("ACORO_BUILD") or "build"

local function sh(cmd)
  local p = assert(io.popen("(" .. cmd .. ") 2>&1; echo rc=$?"))
  local out = p:read("*a")
  p:close()
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  return rc, out
end

-- A sanitizer build's libraries need its runtime in every program linking
-- them: the plain build is the one packaged.
local function sanitized()
  local f = io.open(support.root .. "/" .. build .. "/CMakeCache.txt")
  if not f then return true end
  local cache = f:read("*a")
  f:close()
  return cache:find("ACORO_SANITIZE:BOOL=ON", 1, true) or cache:find("ACORO_TSAN:BOOL=ON", 1, true)
end

local host_c = [[
#include <acoro_lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
/* A host that does not call acoro_lua_openlib: the script's require finds
 * the installed module, which is the same libacoro this host links, so
 * acoro_lua_engine sees its engine and run-once drives its coroutines. */
int main(int argc, char **argv) {
  lua_State *L = luaL_newstate();
  double end;
  int rc;
  luaL_openlibs(L);
  if (argc != 2 || luaL_dofile(L, argv[1]) != 0) {
    fprintf(stderr, "host: %s\n", argc == 2 ? lua_tostring(L, -1) : "usage");
    return 1;
  }
  if (acoro_lua_engine(L) == NULL) {
    fprintf(stderr, "host: not the same engine\n");
    return 1;
  }
  /* bounded in time: a timer's last millisecond is spun, not slept */
  end = acoro_now(acoro_lua_engine(L)) + 30;
  while ((rc = acoro_lua_run_once(L, ACORO_RUN_ONCE)) == 1 &&
         acoro_now(acoro_lua_engine(L)) < end)
    ;
  printf("host done: %d\n", rc);
  lua_close(L);
  return rc;
}
]]

local cmake_lists = [[
cmake_minimum_required(VERSION 3.16)
project(tiny_host C)
find_package(acoro CONFIG REQUIRED)
add_executable(host host.c)
target_link_libraries(host PRIVATE acoro::lua)
]]

describe("the installed tree", function()
  local prefix, work

  setup(function()
    if sanitized() then return end
    prefix = os.tmpname()
    os.remove(prefix)
    work = prefix .. "-work"
    assert(sh(("mkdir -p %s %s"):format(prefix, work)) == 0)
    local rc, out = sh(("cmake --install %s --prefix %s"):format(
      support.shell_quote(support.root .. "/" .. build), prefix))
    assert(rc == 0, out)
    local f = assert(io.open(work .. "/host.c", "w"))
    f:write(host_c)
    f:close()
    f = assert(io.open(work .. "/CMakeLists.txt", "w"))
    f:write(cmake_lists)
    f:close()
    -- the script: found through the installed paths, as a user's would be
    f = assert(io.open(work .. "/script.lua", "w"))
    f:write(([[
      package.path = "%s/share/lua/5.1/?.lua;%s/share/lua/5.1/?/init.lua;" .. package.path
      package.cpath = "%s/lib/lua/5.1/?.so;" .. package.cpath
      local acoro = require "acoro"
      acoro.spawn(function() acoro.sleep(0.001); print("script ran") end)
    ]]):format(prefix, prefix, prefix))
    f:close()
  end)

  teardown(function()
    if prefix then sh(("rm -rf %s %s"):format(prefix, work)) end
  end)

  local function check_host(exe)
    local rc, out = sh(("cd %s && timeout 60 %s script.lua"):format(work, exe))
    assert.equal(0, rc, out)
    assert.equal("script ran\nhost done: 0\n", out:gsub("rc=%d+%s*$", ""), out)
  end

  it("builds a host with pkg-config that runs scripts", function()
    if sanitized() then return pending("a sanitizer build is not packaged") end
    local pc = "PKG_CONFIG_PATH=" .. prefix .. "/lib/pkgconfig pkg-config"
    local rc, out = sh(("%s --variable=prefix acoro"):format(pc))
    assert.equal(0, rc, out)
    assert.truthy(out:find(prefix, 1, true), out) -- the prefix installed into
    rc, out = sh(("cd %s && cc -o host_pc host.c $(%s --cflags --libs acoro)"):format(work, pc))
    assert.equal(0, rc, out)
    check_host("./host_pc")
  end)

  it("builds a host with find_package(acoro CONFIG) that runs scripts", function()
    if sanitized() then return pending("a sanitizer build is not packaged") end
    local rc, out = sh(("cd %s && cmake -S . -B b -DCMAKE_PREFIX_PATH=%s >/dev/null"
      .. " && cmake --build b >/dev/null"):format(work, prefix))
    assert.equal(0, rc, out)
    check_host("./b/host")
  end)

  it("runs scripts with its CLI and with a stock luajit", function()
    if sanitized() then return pending("a sanitizer build is not packaged") end
    local rc, out = sh(("cd %s && timeout 60 %s/bin/acoro -e 'print(require(\"acoro\").version)'"):format(work, prefix))
    assert.equal(0, rc, out)
    local code = ('package.path = "%s/share/lua/5.1/?.lua;%s/share/lua/5.1/?/init.lua;" .. package.path; '
      .. 'package.cpath = "%s/lib/lua/5.1/?.so;" .. package.cpath; '
      .. 'local a = require "acoro"; a.run(function() a.sleep(0.001) print("luajit ran") end)')
      :format(prefix, prefix, prefix)
    rc, out = sh(("cd %s && timeout 60 luajit -e %s"):format(work, support.shell_quote(code)))
    assert.equal(0, rc, out)
    assert.truthy(out:find("luajit ran", 1, true), out)
  end)
end)

describe("luarocks make", function()
  local tree

  teardown(function()
    if tree then sh("rm -rf " .. support.shell_quote(tree)) end
  end)

  it("installs into a tree where a stock luajit requires acoro and the CLI is on bin", function()
    if sanitized() then return pending("a sanitizer build is not packaged") end
    if sh("command -v luarocks >/dev/null") ~= 0 then return pending("luarocks is not installed") end
    tree = os.tmpname()
    os.remove(tree)
    -- builds in build.luarocks/ of the checkout (incremental after the first time)
    local rc, out = sh(("cd %s && CMAKE_BUILD_PARALLEL_LEVEL=2 timeout 600 luarocks make --tree=%s "
      .. "acoro-0.1.0-1.rockspec"):format(support.shell_quote(support.root), tree))
    assert.equal(0, rc, out)
    rc, out = sh(("timeout 60 %s/bin/acoro -e 'print(\"cli\", require(\"acoro\").version)'"):format(tree))
    assert.equal(0, rc, out)
    assert.truthy(out:find("cli\t0.1.0", 1, true), out)
    rc, out = sh(("cd /tmp && eval \"$(luarocks --tree=%s path)\" && timeout 60 luajit -e %s"):format(tree,
      support.shell_quote('local a = require "acoro"; a.run(function() a.sleep(0.001) '
        .. 'print("luajit ran", package.searchpath("acoro.core", package.cpath)) end)')))
    assert.equal(0, rc, out)
    assert.truthy(out:find("luajit ran\t" .. tree .. "/lib/lua/5.1/acoro/core.so", 1, true), out)
  end)
end)

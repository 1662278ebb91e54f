-- The engine as a whole: SIGINT, the install layout, the README example, and
-- the frame sizes that keep a waiting coroutine on LuaJIT's initial stack.
require "acoro" -- fills in acoro.internal
local support = require "support"

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("*a")
  p:close()
  return out
end

describe("the acoro command on SIGINT", function()
  it("stops the engine and exits 130 with a message", function()
    local out = sh(([[
      ready=$(mktemp -u); export READY=$ready
      %s -e 'io.open(os.getenv("READY"), "w"):close() require("acoro").sleep(30)' 2>"$ready.err" &
      pid=$!
      for i in $(seq 200); do [ -e "$ready" ] && break; sleep 0.05; done
      kill -INT $pid; wait $pid; echo "rc=$?"; cat "$ready.err"; rm -f "$ready" "$ready.err"
    ]]):format(support.shell_quote(support.bin)))
    assert.matches("rc=130", out, 1, true)
    assert.matches("interrupted", out, 1, true)
  end)
end)

describe("cmake --install", function()
  it("lays out bin, share/lua/5.1, lib/lua/5.1, include and pkg-config", function()
    local build = os.getenv("ACORO_BUILD") or "build"
    local prefix = os.tmpname()
    os.remove(prefix)
    local q = support.shell_quote(prefix)
    local out = sh(("cmake --install %s --prefix %s >/dev/null && cd %s && "
      .. "ls bin/acoro share/lua/5.1/acoro/init.lua share/lua/5.1/acoro/cdef.lua "
      .. "lib/lua/5.1/acoro/core.so include/acoro.h include/acoro_lua.h "
      .. "lib/pkgconfig/acoro.pc >/dev/null && echo layout-ok && "
      .. "LUA_PATH='%s/share/lua/5.1/?.lua;%s/share/lua/5.1/?/init.lua;;' "
      .. "LUA_CPATH='%s/lib/lua/5.1/?.so;;' "
      .. "luajit -e 'print(require(\"acoro\").run(function() return 6 * 7 end))' && "
      .. "bin/acoro -e 'print(\"cli\", require(\"acoro\").self())'")
      :format(build, q, q, prefix, prefix, prefix))
    sh("rm -rf " .. q)
    assert.matches("layout-ok", out, 1, true)
    assert.matches("42", out, 1, true)
    assert.matches("cli\tcoro:main/", out, 1, true)
  end)
end)

describe("README", function()
  it("its twenty-line example runs and prints the squares", function()
    local f = assert(io.open(support.root .. "/README.md"))
    local text = f:read("*a")
    f:close()
    local code = text:match("```lua\n(.-)```")
    assert.is_not_nil(code)
    local out, err, status = support.run_script(code)
    assert.are.equal(0, status, err)
    for i = 1, 3 do
      assert.matches(i .. "\tsquared is\t" .. i * i, out, 1, true)
    end
  end)
end)

describe("frame sizes", function()
  -- A waiting coroutine must fit LuaJIT's initial 40-slot stack: the JIT
  -- calls yield through a stitch that wants 20 free slots above the waiting
  -- frame (see receive_any in lua/acoro/init.lua). This keeps 100,000
  -- waiting coroutines at about 0.8 KB each.
  local funcinfo = require("jit.util").funcinfo
  local I = require "acoro.internal"
  it("of the receive loop stay small", function()
    assert.is_true(funcinfo(I.receive_any).stackslots <= 7)
    assert.are.equal(0, funcinfo(I.receive_any).params)
  end)
  it("of the sleep loop stay small", function()
    assert.is_true(funcinfo(I.sleep_until).stackslots <= 7)
    assert.is_true(funcinfo(I.sleep_loop).stackslots <= 7)
  end)
end)

describe("a timed wait", function()
  -- 100,000 sleepers must not feed the collector: each of its cycles ends
  -- in an atomic pause over every live thread. The JIT's snapshot at the
  -- stitched yield boxed a record pointer kept in a slot (24 bytes a sleep).
  it("makes no garbage once compiled", function()
    local acoro = require "acoro"
    local per_sleep
    acoro.run(function()
      for _ = 1, 2000 do acoro.sleep(1e-6) end -- compiled by now
      collectgarbage()
      collectgarbage("stop")
      local k0 = collectgarbage("count")
      for _ = 1, 5000 do acoro.sleep(1e-6) end
      per_sleep = (collectgarbage("count") - k0) * 1024 / 5000
      collectgarbage("restart")
    end)
    assert.is_true(per_sleep < 4, "bytes per sleep: " .. per_sleep)
  end)
  it("nor does a receive that times out", function()
    local acoro = require "acoro"
    local per_wait
    acoro.run(function()
      for _ = 1, 2000 do acoro.receive(1e-6) end
      collectgarbage()
      collectgarbage("stop")
      local k0 = collectgarbage("count")
      for _ = 1, 5000 do acoro.receive(1e-6) end
      per_wait = (collectgarbage("count") - k0) * 1024 / 5000
      collectgarbage("restart")
    end)
    assert.is_true(per_wait < 4, "bytes per receive: " .. per_wait)
  end)
end)

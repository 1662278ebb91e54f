-- The end of a program: acoro.atexit hooks (as coroutines, with a deadline) on a normal
-- end, SIGINT and SIGTERM; acoro.signal routing a signal to a coroutine as a message.
-- Real `acoro` processes signalled by PID once they printed "ready".
local acoro = require "acoro"
local support = require "support"

-- Starts `build/acoro script` (or luajit on it when `stock`) in the background; returns
-- a child whose pid is the process itself (no wrapper between: the signal goes to it).
-- Every script here ends by itself within 30 s.
local function start(source, stock)
  local path = support.write_temp(source)
  local cmd
  if stock then
    local build = os.getenv("ACORO_BUILD") or "build"
    cmd = ("LUA_PATH='%s/share/lua/5.1/?.lua;%s/share/lua/5.1/?/init.lua;;' "
      .. "LUA_CPATH='%s/lib/lua/5.1/?.so;;' exec luajit %s"):format(build, build, build, support.shell_quote(path))
  else
    cmd = "exec " .. support.shell_quote(support.bin) .. " " .. support.shell_quote(path)
  end
  -- The pid comes first (sh prints its own, then becomes the process); the shell's own
  -- report of a child a signal killed ("Hangup") goes to /dev/null.
  local p = assert(io.popen(("cd %s && { sh -c %s 2>&1 & wait $!; echo rc=$?; } 2>/dev/null")
    :format(support.shell_quote(support.root), support.shell_quote("echo pid=$$; " .. cmd))))
  local child = { p = p, pid = tonumber(p:read("*l"):match("^pid=(%d+)$")), lines = {} }
  function child.expect(want)
    for _ = 1, 1000 do
      local l = p:read("*l")
      if not l then error("ended before " .. want .. ":\n" .. table.concat(child.lines, "\n"), 2) end
      child.lines[#child.lines + 1] = l
      if l == want then return end
    end
    error("no " .. want, 2)
  end
  function child.signal(name) os.execute(("kill -%s %d"):format(name, child.pid)) end
  -- The lines after the ones already read, and the exit status.
  function child.finish()
    local rest = {}
    for l in p:lines() do rest[#rest + 1] = l end
    p:close()
    local rc = tonumber(table.remove(rest):match("^rc=(%d+)$"))
    return rest, rc
  end
  return child
end

local function count(list, line)
  local n = 0
  for _, l in ipairs(list) do
    if l == line then n = n + 1 end
  end
  return n
end

local WAITER = [[
local acoro = require "acoro"
acoro.atexit(function()
  acoro.sleep(0.01) -- a hook is a coroutine: it may wait
  print("hook ran in " .. acoro.self().name)
  io.stdout:flush()
end)
print("ready")
io.stdout:flush()
acoro.sleep(30)
]]

describe("acoro on SIGTERM", function()
  after_each(support.cleanup)

  it("runs the atexit hooks, prints one line and exits 143", function()
    local c = start(WAITER)
    c.expect("ready")
    c.signal("TERM")
    local rest, rc = c.finish()
    assert.are.same({ "hook ran in atexit", "acoro: terminated (SIGTERM)" }, rest)
    assert.are.equal(143, rc)
  end)

  it("comes to a coroutine as a message with acoro.signal, and the program goes on", function()
    local c = start([[
local acoro = require "acoro"
acoro.atexit(function() print("hook ran") io.stdout:flush() end)
acoro.signal("term", acoro.self())
print("ready")
io.stdout:flush()
local m = acoro.receive(30)
print(acoro.is_signal(m), m and m.signal, m and m.signum)
io.stdout:flush()
]])
    c.expect("ready")
    c.signal("TERM")
    local rest, rc = c.finish()
    assert.are.same({ "true\tterm\t15", "hook ran" }, rest)
    assert.are.equal(0, rc)
  end)

  it("ends the run when the coroutine it was routed to has ended", function()
    local c = start([[
local acoro = require "acoro"
acoro.atexit(function() print("hook ran") io.stdout:flush() end)
acoro.signal("term", acoro.spawn(function() end))
print("ready")
io.stdout:flush()
acoro.sleep(30)
]])
    c.expect("ready")
    c.signal("TERM")
    local rest, rc = c.finish()
    assert.are.same({ "hook ran", "acoro: terminated (SIGTERM)" }, rest)
    assert.are.equal(143, rc)
  end)

  it("in a stock LuaJIT: acoro.run runs the hooks and raises", function()
    local c = start([[
local acoro = require "acoro"
acoro.atexit(function() print("hook ran") io.stdout:flush() end)
print(pcall(acoro.run, function()
  print("ready")
  io.stdout:flush()
  acoro.sleep(30)
end))
]], true)
    c.expect("ready")
    c.signal("TERM")
    local rest, rc = c.finish()
    assert.are.same({ "hook ran", "false\tacoro: terminated (SIGTERM)" }, rest)
    assert.are.equal(0, rc)
  end)
end)

describe("a script that never yields", function()
  after_each(support.cleanup)

  -- The first signal waits for the loop, which never turns; the next one
  -- (sent until the process is gone, bounded) takes the default action.
  for _, sig in ipairs({ { "TERM", 143 }, { "INT", 130 } }) do
    it("is ended by a second SIG" .. sig[1] .. " with the signal's default action", function()
      local c = start([[
print("ready")
io.stdout:flush()
local t = os.time()
while os.time() - t < 30 do end -- never yields
print("the loop ended")
]])
      c.expect("ready")
      os.execute(("for i in $(seq 150); do kill -%s %d 2>/dev/null || break; sleep 0.2; done")
        :format(sig[1], c.pid))
      local rest, rc = c.finish()
      assert.are.same({}, rest)
      assert.are.equal(sig[2], rc)
    end)
  end
end)

describe("acoro on SIGINT", function()
  after_each(support.cleanup)

  it("runs the atexit hooks, prints one line and exits 130", function()
    local c = start(WAITER)
    c.expect("ready")
    c.signal("INT")
    local rest, rc = c.finish()
    assert.are.same({ "hook ran in atexit", "acoro: interrupted (SIGINT)" }, rest)
    assert.are.equal(130, rc)
  end)

  it("a second SIGINT ends hooks that are still running", function()
    local c = start([[
local acoro = require "acoro"
acoro.atexit(function() print("hook waits") io.stdout:flush() acoro.sleep(30) end, 60)
print("ready")
io.stdout:flush()
acoro.sleep(30)
]])
    c.expect("ready")
    c.signal("INT")
    c.expect("hook waits")
    c.signal("INT")
    local rest, rc = c.finish()
    assert.are.same({ "acoro: interrupted (SIGINT)" }, rest)
    assert.are.equal(130, rc)
  end)
end)

describe("a signal while the hooks run", function()
  after_each(support.cleanup)

  it("after a normal end, ends them with its line and status", function()
    local c = start([[
local acoro = require "acoro"
acoro.atexit(function() print("hook waits") io.stdout:flush() acoro.sleep(30) end, 60)
print("main done")
io.stdout:flush()
]])
    c.expect("hook waits")
    c.signal("TERM")
    local rest, rc = c.finish()
    assert.are.same({ "acoro: terminated (SIGTERM)" }, rest)
    assert.are.equal(143, rc)
  end)
end)

describe("acoro.signal", function()
  after_each(support.cleanup)

  it("does not keep the program alive", function()
    local out, err, rc = support.run_script([[
local acoro = require "acoro"
acoro.signal("hup", acoro.self())
acoro.signal("term", acoro.spawn(function() acoro.sleep(0.01) end))
print("done")
]])
    assert.are.equal("done\n", out)
    assert.are.equal("", err)
    assert.are.equal(0, rc)
  end)

  it("raises on a name it does not know and on a target that is not a coroutine", function()
    assert.has_error(function() acoro.signal("kill", nil) end, "bad argument #1 to 'acoro.signal' "
      .. "(\"int\", \"term\", \"hup\", \"usr1\", \"usr2\" or \"quit\" expected, got kill)")
    assert.has_error(function() acoro.signal("hup", 5) end,
      "bad argument #2 to 'acoro.signal' (acoro coroutine or nil expected, got number)")
  end)

  it("routes hup, and nil gives the default back", function()
    local c = start([[
local acoro = require "acoro"
acoro.signal("hup", acoro.self())
print("ready")
io.stdout:flush()
print(acoro.receive(30))
io.stdout:flush()
acoro.signal("hup", nil)
print("ready again")
io.stdout:flush()
acoro.sleep(30)
]])
    c.expect("ready")
    c.signal("HUP")
    c.expect("acoro.Signal(hup)")
    c.expect("ready again")
    c.signal("HUP")
    local rest, rc = c.finish()
    assert.are.same({}, rest)
    assert.are.equal(128 + 1, rc) -- the default action of SIGHUP: killed by it
  end)
end)

describe("acoro.atexit", function()
  after_each(support.cleanup)

  it("runs the hooks on a normal end, the last registered first, each as a coroutine", function()
    local order = {}
    acoro.run(function()
      acoro.atexit(function() order[#order + 1] = "first registered" end)
      acoro.atexit(function()
        acoro.sleep(0.001)
        order[#order + 1] = "second registered"
      end)
      order[#order + 1] = "main"
    end)
    assert.are.same({ "main", "second registered", "first registered" }, order)
  end)

  it("ends a hook past its deadline with a warning, and runs the next", function()
    local lines, order = {}, {}
    local prev = acoro.log.set_writer(function(level, msg) lines[#lines + 1] = level .. ": " .. msg end)
    acoro.run(function()
      acoro.atexit(function() order[#order + 1] = "next hook" end)
      acoro.atexit(function()
        order[#order + 1] = "slow hook"
        acoro.sleep(30)
        order[#order + 1] = "never"
      end, 0.05)
    end)
    acoro.log.set_writer(prev)
    assert.are.same({ "slow hook", "next hook" }, order)
    assert.are.equal(1, #lines)
    assert.matches("^warn: atexit hook coro:atexit/%d+ still running after 0.05 s: terminated$", lines[1])
  end)

  it("runs the hooks when main raises, then raises main's error", function()
    local ran = false
    support.expect_failures("boom")
    assert.has_error(function()
      acoro.run(function()
        acoro.atexit(function() ran = true end)
        error("boom", 0)
      end)
    end)
    assert.is_true(ran)
  end)

  it("checks its arguments", function()
    assert.has_error(function() acoro.atexit(5) end, "acoro.atexit: expected a function, got number")
    assert.has_error(function() acoro.atexit(function() end, 0 / 0) end)
  end)

  it("a program's hook runs once, and a script ending normally prints nothing more", function()
    local out, err, rc = support.run_script([[
local acoro = require "acoro"
acoro.atexit(function() print("bye") end)
print("hello")
]])
    assert.are.equal("hello\nbye\n", out)
    assert.are.equal("", err)
    assert.are.equal(0, rc)
    assert.are.equal(1, count(support.lines(out), "bye"))
  end)
end)

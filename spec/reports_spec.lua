-- What errors and log lines tell a user: the caller's line on misuse, one "acoro:" prefix,
-- the target of a failed connection, what a deadlocked coroutine waits for, a failed
-- coroutine's error once (and at "info" when a monitor has it), names given at spawn, and
-- a peer that stays down logged once a minute.
local acoro = require "acoro"
local support = require "support"

-- Runs fn in acoro.run with the log captured: the list of {level, msg}.
-- The writer is set inside the run: the strict run's own (which keeps expected failures
-- off the output) is under it.
local function logged(fn)
  local got = {}
  local outer = acoro.log.set_writer(nil)
  acoro.log.set_writer(outer)
  local ok, err = pcall(acoro.run, function()
    acoro.log.set_writer(function(level, msg) got[#got + 1] = { level, msg } end)
    fn()
  end)
  acoro.log.set_writer(outer)
  assert(ok, err)
  return got
end

describe("misuse", function()
  after_each(support.cleanup)

  it("outside a coroutine, every I/O call names the caller's line", function()
    local line
    local function mark() line = debug.getinfo(2, "l").currentline end
    local calls = {
      ["acoro.tcp.connect"] = function() mark() acoro.tcp.connect("127.0.0.1", 9) end,
      ["acoro.fs.stat"] = function() mark() acoro.fs.stat("/") end,
      ["acoro.fs.open"] = function() mark() acoro.fs.open("/dev/null") end,
      ["acoro.sleep"] = function() mark() acoro.sleep(1) end,
    }
    for what, call in pairs(calls) do
      local ok, err = pcall(call)
      assert.is_false(ok)
      assert.are.equal("spec/reports_spec.lua:" .. line .. ": " .. what
        .. ": called outside an acoro coroutine (use acoro.run or the acoro command)", err:gsub("^%./", ""))
    end
  end)

  it("the CLI's report has one prefix", function()
    local out, err, rc = support.run_script("local acoro = require 'acoro'\nacoro.tcp.connect('127.0.0.1', 9, 5)\n")
    assert.are.equal(1, rc)
    assert.are.equal("", out)
    local first = support.lines(err)[1]
    assert.matches("^acoro: .*%.lua:2: tcp%.connect: opts must be a table$", first)
  end)

  it("a second coroutine writing to a stream being written raises at its caller's line", function()
    local line, err
    acoro.run(function()
      local srv = assert(acoro.tcp.listen("127.0.0.1", 0))
      local _, port = srv:getsockname()
      local peer
      acoro.spawn(function() peer = srv:accept() end) -- and never reads
      local s = assert(acoro.tcp.connect("127.0.0.1", port))
      local writer = support.spawn_blocked(function(ready)
        ready()
        s:send(string.rep("x", 64 * 1024 * 1024), 30) -- far past the socket buffers
      end)
      local ok
      ok, err = pcall(function()
        line = debug.getinfo(1, "l").currentline + 1
        s:send("y")
      end)
      assert.is_false(ok)
      writer:terminate()
      s:close()
      if peer then peer:close() end
      srv:close()
    end)
    assert.are.equal("spec/reports_spec.lua:" .. line .. ": acoro: send: another coroutine is already writing "
      .. "this stream", err:gsub("^%./", ""))
  end)

  -- A second waiter on a listener or a process: the error names the user's
  -- line, as for streams.
  local function second_waiter(first, second)
    local err
    acoro.run(function()
      local waiter = support.spawn_blocked(function(ready)
        ready()
        first()
      end)
      local ok
      ok, err = pcall(second)
      assert.is_false(ok)
      waiter:terminate()
    end)
    return (err:gsub("^%./", ""))
  end

  it("a second accept on one listener names the caller's line", function()
    local srv, line
    local err = second_waiter(function()
      srv = assert(acoro.tcp.listen("127.0.0.1", 0))
      srv:accept(30)
    end, function()
      line = debug.getinfo(1, "l").currentline; srv:accept(30)
    end)
    srv:close()
    assert.matches("^spec/reports_spec%.lua:" .. line .. ": acoro: accept: ", err)
  end)

  it("a second wait for one process names the caller's line", function()
    local p, line
    local err = second_waiter(function()
      p = assert(acoro.process.spawn({ "sleep", "30" }))
      p:wait(30)
    end, function()
      line = debug.getinfo(1, "l").currentline; p:wait(30)
    end)
    p:kill()
    assert.matches("^spec/reports_spec%.lua:" .. line .. ": acoro: wait: another coroutine is already waiting", err)
  end)
end)

describe("failed connections", function()
  it("name their target", function()
    acoro.run(function()
      local s, why, code = acoro.tcp.connect("127.0.0.1", 9, { timeout = 5 })
      assert.is_nil(s)
      assert.are.equal("ECONNREFUSED: connection refused (127.0.0.1:9)", why)
      assert.are.equal("ECONNREFUSED", code)
    end)
  end)
end)

describe("a deadlock report", function()
  it("says what each coroutine waits for and where", function()
    local ok, err = pcall(acoro.run, function()
      local lock = acoro.Lock()
      lock:acquire()
      local a = acoro.spawn(function() lock:acquire() end)
      acoro.spawn(function() acoro.receive() end)
      a:join()
    end)
    assert.is_false(ok)
    assert.matches("^acoro: deadlock: 3 coroutine%(s%) wait for something that cannot come: ", err)
    assert.matches("coro:main/%d+ waits in join of coro:%-/%d+ at [^,]*reports_spec%.lua:%d+", err)
    assert.matches("coro:%-/%d+ waits in acquire at [^,]*reports_spec%.lua:%d+", err)
    assert.matches("coro:%-/%d+ waits in receive at [^,]*reports_spec%.lua:%d+", err)
  end)
end)

describe("a coroutine's failure", function()
  it("is logged once, its error once, at error level when nobody watches", function()
    support.expect_failures("spec: alone")
    local co
    local got = logged(function()
      co = acoro.spawn({ name = "alone" }, function() error("spec: alone", 0) end)
      co:join()
    end)
    assert.are.equal(1, #got)
    assert.are.equal("error", got[1][1])
    assert.matches("^coroutine coro:alone/%d+ failed: spec: alone\nstack traceback:\n", got[1][2])
    local _, n = got[1][2]:gsub("spec: alone", "")
    assert.are.equal(1, n)
  end)

  it("is logged at info when a monitor has it, and a script can silence that", function()
    support.expect_failures("spec: watched")
    local exit
    local got = logged(function()
      local co = acoro.spawn({ name = "watched" }, function()
        acoro.sleep(0.001)
        error("spec: watched", 0)
      end)
      co:monitor()
      exit = acoro.receive(5)
    end)
    assert.is_true(acoro.is_exit(exit))
    assert.are.equal("spec: watched", exit.error)
    assert.are.equal(1, #got)
    assert.are.equal("info", got[1][1])
    assert.matches("^coroutine coro:watched/%d+ failed: spec: watched\nstack traceback:\n", got[1][2])
    local prev = acoro.log.set_level("warn")
    support.expect_failures("spec: watched")
    got = logged(function()
      local co = acoro.spawn(function() acoro.sleep(0.001) error("spec: watched", 0) end)
      co:monitor()
      acoro.receive(5)
    end)
    acoro.log.set_level(prev)
    assert.are.same({}, got)
  end)
end)

describe("acoro.spawn with options", function()
  it("names the coroutine (tostring, co.name) without registering it, and makes a daemon", function()
    acoro.run(function()
      local co = acoro.spawn({ name = "worker" }, function(a, b) return a + b end, 2, 3)
      assert.matches("^coro:worker/%d+$", tostring(co))
      assert.are.equal("worker", co.name)
      assert.is_nil(acoro.locate("worker"))
      assert.are.same({ true, 5 }, { co:join() })
      local d = acoro.spawn({ daemon = true }, function() acoro.receive() end)
      assert.matches("^coro:%-/%d+$", tostring(d)) -- a daemon left waiting: no deadlock
    end)
  end)

  it("checks its options", function()
    assert.has_error(function() acoro.spawn({ name = 5 }, function() end) end,
      "acoro.spawn: opts.name must be a string, got number")
    assert.has_error(function() acoro.spawn({ name = "x" }, 5) end,
      "acoro.spawn: expected a function after the options, got number")
  end)
end)

describe("a node whose peer is down", function()
  it("logs the first failed dial, then the same failure at most once a minute", function()
    local results = {}
    local got = logged(function()
      acoro.node({ host = "127.0.0.1", port = 0, discover = false })
      for i = 1, 5 do results[i] = select(2, acoro.peer("127.0.0.1:9", 5)) end
    end)
    for i = 1, 5 do assert.matches("connection refused", results[i]) end
    local dials = {}
    for _, g in ipairs(got) do
      if g[2]:find("127.0.0.1:9", 1, true) then dials[#dials + 1] = g[1] .. ": " .. g[2] end
    end
    assert.are.same({ "warn: node: peer 127.0.0.1:9: cannot connect: connection refused" }, dials)
  end)
end)

describe("a stock LuaJIT script that spawns and never runs the engine", function()
  local function luajit(code)
    local build = os.getenv("ACORO_BUILD") or "build"
    local p = assert(io.popen(("cd %s && LUA_PATH='%s/share/lua/5.1/?.lua;%s/share/lua/5.1/?/init.lua;;' "
      .. "LUA_CPATH='%s/lib/lua/5.1/?.so;;' timeout 60 luajit -e %s 2>&1; echo rc=$?")
      :format(support.shell_quote(support.root), build, build, build, support.shell_quote(code))))
    local out = p:read("*a")
    p:close()
    return out
  end

  it("gets a warning as it exits", function()
    assert.are.equal("acoro: 2 coroutine(s) spawned but never run: acoro.run was never called "
      .. "(from a stock LuaJIT, wrap the main code in acoro.run(function() ... end))\nrc=0\n",
      luajit("local acoro = require 'acoro' acoro.spawn(print, 'never') acoro.spawn(print, 'never')"))
  end)

  it("gets none once acoro.run ran them, nor when it spawned nothing", function()
    assert.are.equal("ran\nrc=0\n",
      luajit("local acoro = require 'acoro' acoro.spawn(print, 'ran') acoro.run(function() end)"))
    assert.are.equal("rc=0\n", luajit("local acoro = require 'acoro' acoro.run(function() end)"))
  end)

  it("gets none when a host stepped the engine and left a coroutine waiting", function()
    assert.are.equal("stepped\nrc=0\n", luajit("local acoro = require 'acoro' "
      .. "acoro.spawn(function() print('stepped') acoro.receive() end) "
      .. "require('acoro.core').run_once()"))
  end)
end)

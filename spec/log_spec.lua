-- acoro.log: the library's messages go through it; a script redirects them
-- (set_writer) and filters them (set_level); an embedding host gets them
-- through its hook (acoro_lua_set_log); by default they go to stderr as
-- before ("acoro: MESSAGE"). Each case runs in a child process.

local acoro = require "acoro"
local support = require "spec.support"

local run_script = support.run_script

describe("acoro.log", function()
  after_each(support.cleanup)

  it("writes to stderr by default, with the text the library always wrote", function()
    local out, err, code = run_script([[
      local acoro = require "acoro"
      print(acoro.spawn(function() error("spec: default writer") end).id)
      acoro.sleep(0.01)
      acoro.log.warn("a warning ", 42)
      acoro.log.debug("not shown at the default level")
    ]])
    assert.equal(0, code, err)
    local id = out:match("^(%d+)\n$")
    assert.truthy(id, out)
    assert.truthy(err:find("acoro: coroutine coro:-/" .. id .. " failed: ", 1, true), err)
    assert.truthy(err:find("spec: default writer\nstack traceback:", 1, true), err)
    assert.truthy(err:find("\nacoro: a warning 42\n", 1, true), err)
    assert.falsy(err:find("not shown", 1, true), err)
  end)

  it("set_writer captures the library's messages: a coroutine's error, a transform's, the engine's",
    function()
      local out, err, code = run_script([[
        local acoro = require "acoro"
        local got = {}
        assert(acoro.log.set_writer(function(level, msg) got[#got + 1] = { level, msg } end) == nil)
        local co = acoro.spawn(function() error("spec: captured") end)
        acoro.sleep(0.01)
        local ch = acoro.channel("logged")
        ch:set_transform(function() error("spec: bad transform") end)
        ch:send(1)
        local r = acoro.spawn(function() acoro.sleep(0.05) end)
        r:set_mailbox_limit(1)
        r:send(1); r:send(2)
        acoro.yield()
        acoro.log.set_writer(nil)
        for _, g in ipairs(got) do print(g[1] .. "|" .. (g[2]:gsub("\n.*", ""))) end
        print(co.id, r.id)
      ]])
      assert.equal(0, code, err)
      assert.equal("", err)
      local lines = support.lines(out)
      local id, rid = lines[4]:match("^(%d+)\t(%d+)$")
      assert.truthy(id, out)
      local head = "error|coroutine coro:-/" .. id .. " failed: "
      assert.equal(head, lines[1]:sub(1, #head), out)
      assert.truthy(lines[1]:find("spec: captured", 1, true), out)
      head = "error|channel logged: transform failed, message dropped: "
      assert.equal(head, lines[2]:sub(1, #head), out)
      assert.truthy(lines[2]:find("spec: bad transform", 1, true), out)
      assert.equal("warn|mailbox of coroutine " .. rid .. " full (limit 1): dropping new messages",
        lines[3])
    end)

  it("the writer gets the whole message: the error and its traceback, without prefix nor newline",
    function()
      support.expect_failures("spec: whole")
      acoro.run(function()
        local got = {}
        acoro.log.set_writer(function(level, msg) got[#got + 1] = { level, msg } end)
        local co = acoro.spawn(function() error("spec: whole", 0) end)
        assert.is_false((co:join(5))) -- its failure is logged before join returns
        acoro.log.set_writer(nil)
        assert.equal(1, #got)
        assert.equal("error", got[1][1])
        assert.matches("^coroutine coro:%-/" .. co.id .. " failed: spec: whole\nstack traceback:\n",
          got[1][2])
        assert.falsy(got[1][2]:find("\n$"))
      end)
    end)

  it("set_level filters by level; level() and enabled() tell; a bad level raises", function()
    acoro.run(function()
      local got = {}
      local prev_writer = acoro.log.set_writer(function(level, msg) got[#got + 1] = level .. ":" .. msg end)
      assert.equal("info", acoro.log.level())
      acoro.log.debug("d1"); acoro.log.info("i1"); acoro.log.warn("w1"); acoro.log.error("e1")
      assert.equal("info", acoro.log.set_level("warn"))
      assert.is_false(acoro.log.enabled("info"))
      assert.is_true(acoro.log.enabled("warn"))
      acoro.log.debug("d2"); acoro.log.info("i2"); acoro.log.warn("w2"); acoro.log.error("e2")
      acoro.log.set_level("debug")
      acoro.log.write("debug", "d", 3)
      acoro.log.set_level("error")
      acoro.log.warn("w4"); acoro.log.error("e4")
      assert.equal("error", acoro.log.set_level("info"))
      acoro.log.set_writer(prev_writer)
      assert.same({ "info:i1", "warn:w1", "error:e1", "warn:w2", "error:e2", "debug:d3", "error:e4" }, got)
      assert.has_error(function() acoro.log.set_level("verbose") end,
        "bad argument #1 to 'acoro.log.set_level' (a level expected: "
          .. "\"error\", \"warn\", \"info\" or \"debug\", got verbose)")
      assert.has_error(function() acoro.log.write(2, "x") end)
      assert.has_error(function() acoro.log.set_writer("stderr") end)
    end)
  end)

  it("the level filters the engine's own lines too", function()
    local _, err, code = run_script([[
      local acoro = require "acoro"
      acoro.log.set_level("error")
      local r = acoro.spawn(function() acoro.sleep(0.05) end)
      r:set_mailbox_limit(1)
      r:send(1); r:send(2)
    ]])
    assert.equal(0, code, err)
    assert.equal("", err)
  end)

  it("a writer that raises loses nothing: the message and why go to stderr", function()
    local _, err, code = run_script([[
      local acoro = require "acoro"
      acoro.log.set_writer(function() error("spec: writer broke") end)
      acoro.log.warn("spec: the message")
    ]])
    assert.equal(0, code, err)
    assert.truthy(err:find("acoro: log writer failed: .*spec: writer broke"), err)
    assert.truthy(err:find("acoro: spec: the message\n", 1, true), err)
  end)

  it("the CLI's own report of a failed main goes to stderr past the script's writer", function()
    local _, err, code = run_script([[
      local acoro = require "acoro"
      acoro.log.set_writer(function() end)
      error("spec: main failed")
    ]])
    assert.equal(1, code)
    assert.truthy(err:find("spec: main failed", 1, true), err)
  end)

  it("an embedding host's hook gets the engine's and the Lua library's lines, filtered", function()
    local script = support.write_temp([[
      local acoro = require "acoro"
      acoro.run(function()
        acoro.spawn(function() error("spec: embedded", 0) end)
        acoro.sleep(0.01)
        local r = acoro.spawn(function() acoro.sleep(0.05) end)
        r:set_mailbox_limit(1)
        r:send(1); r:send(2)
        acoro.log.debug("spec: hidden")
        acoro.log.set_level("debug")
        acoro.log.debug("spec: debug shown")
        acoro.log.set_level("error")
        acoro.log.warn("spec: warn hidden")
        acoro.log.error("spec: error shown")
        local got = {}
        acoro.log.set_writer(function(_, msg) got[#got + 1] = msg end)
        acoro.log.error("spec: to the script's writer")
        acoro.log.set_writer(nil)
        assert(#got == 1)
      end)
    ]])
    local host = support.root .. "/" .. (os.getenv("ACORO_BUILD") or "build") .. "/embed_host"
    local p = assert(io.popen(support.shell_quote(host) .. " " .. support.shell_quote(script) .. " 2>&1; echo rc=$?"))
    local out = p:read("*a")
    p:close()
    local lines = support.lines(out)
    assert.equal("rc=0", lines[#lines], out)
    assert.equal("LOG 0 coroutine coro:-/2 failed: spec: embedded", lines[1], out)
    assert.equal("stack traceback:", lines[2], out) -- the error once
    local rest = {}
    for _, l in ipairs(lines) do
      if l:find("^LOG") and not l:find("failed") then rest[#rest + 1] = l end
    end
    assert.same({ "LOG 1 mailbox of coroutine 3 full (limit 1): dropping new messages",
      "LOG 3 spec: debug shown", "LOG 0 spec: error shown" }, rest)
  end)
end)

-- The module is reachable as acoro.log and as require "acoro.log".
describe("acoro.log module", function()
  it("is the same table both ways", function()
    assert.equal(require "acoro.log", acoro.log)
  end)
end)

-- The progress line (run_results'): one sink in acoro.log, drawn on stderr
-- only when it is a terminal, taken by a progress writer wherever stderr goes.
describe("acoro.log progress", function()
  after_each(support.cleanup)

  it("nothing on a pipe by default; a progress writer gets each state and the last; the level hides it",
    function()
      local out, err, code = run_script([[
        local acoro = require "acoro"
        local log = acoro.log
        local function print(...)
          local t = { ... }
          for i = 1, select("#", ...) do t[i] = tostring(t[i]) end
          io.write(table.concat(t, " "), "\n")
        end
        print("default", log.progress_enabled())
        log.progress("spec: not on a pipe", true)
        local got = {}
        print("prev", log.set_progress_writer(function(line, final) got[#got + 1] = line .. "|" .. tostring(final) end))
        print("set", log.progress_enabled())
        log.progress("one")
        log.progress("two", true)
        log.set_level("warn")
        print("warn", log.progress_enabled())
        log.progress("hidden", true)
        log.set_level("info")
        print("got", table.concat(got, " "))
        print("back", type(log.set_progress_writer(nil)), log.progress_enabled())
        print("bad", (select(2, pcall(log.set_progress_writer, 42))))
        log.set_progress_writer(function() error("spec: progress writer") end)
        log.progress("x")
      ]])
      assert.equal(0, code, err)
      assert.same({ "default false", "prev nil", "set true", "warn false", "got one|false two|true",
        "back function false",
        "bad bad argument #1 to 'acoro.log.set_progress_writer' (a function or nil expected, got number)" },
        support.lines(out))
      assert.falsy(err:find("not on a pipe", 1, true), err)
      assert.truthy(err:find("acoro: log progress writer failed: ", 1, true), err)
      assert.truthy(err:find("spec: progress writer", 1, true), err)
    end)
end)

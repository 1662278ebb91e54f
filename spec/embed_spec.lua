-- The embedding examples (examples/embed/, C hosts of the Lua layer) and
-- the C host API they use: run-once steps, an engine on the host's libuv
-- loop, posts from host threads, host functions that wait.
local support = require "support"

local build = support.root .. "/" .. (os.getenv("ACORO_BUILD") or "build")

-- Runs a program of the build with a time limit; returns its stdout and
-- stderr together, and its exit code last.
local function run(path, args)
  local cmd = ("timeout -k 5 60 %s %s 2>&1; echo rc=$?"):format(
    support.shell_quote(build .. "/" .. path), args or "")
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  local lines = support.lines(out)
  return lines, out
end

describe("examples/embed", function()
  it("host_loop runs scripts inside the host's libuv loop, beside its timer", function()
    local lines, out = run("examples/embed/host_loop")
    assert.equal("rc=0", lines[#lines], out)
    local ticks, steps = 0, 0
    for _, l in ipairs(lines) do
      if l:match("^script: host tick %d+$") then ticks = ticks + 1 end
      if l:match("^script: worker step %d$") then steps = steps + 1 end
    end
    assert.equal(5, ticks, out)
    assert.equal(3, steps, out)
    -- the daemon was still alive, and did not keep uv_run from returning
    assert.truthy(lines[#lines - 1]:match("^host: uv_run returned after %d+ ticks, daemon alive: yes$"), out)
  end)

  it("frame_loop steps the scripts once per frame until they are done", function()
    local lines, out = run("examples/embed/frame_loop")
    assert.equal("rc=0", lines[#lines], out)
    local last_frame, steps = 0, 0
    for _, l in ipairs(lines) do
      local f, s = l:match("^frame (%d+): player at step (%d)$")
      if f then
        steps = steps + 1
        assert.equal(steps, tonumber(s), out)
        assert.is_true(tonumber(f) > last_frame, out) -- one message per later frame
        last_frame = tonumber(f)
      end
    end
    assert.equal(6, steps, out)
    assert.truthy(lines[#lines - 1]:match("^scripts done after %d+ frames$"), out)
  end)

  it("thread_events: a host thread's 100,000 posts all arrive, in order", function()
    local lines, out = run("examples/embed/thread_events")
    assert.same({ "received 100000 events in order", "rc=0" }, lines, out)
  end)

  it("db_query: a host function waits for a host thread; others run meanwhile", function()
    local lines, out = run("examples/embed/db_query")
    assert.same({
      "users:\ttrue\tada\tgrace",
      "count:\ttrue\t2",
      "bad:\tnil\tsyntax error\tEDB",
      "slow:\tnil\ttimeout\tETIMEDOUT",
      "others ran meanwhile:\ttrue",
      "rc=0",
    }, lines, out)
  end)
end)

-- Scripts run by spec/c/embed_host, whose `host` table gives host
-- functions that wait (completed by host threads) and posts from threads.
local function host_script(source)
  local path = support.write_temp(source)
  return run("embed_host", support.shell_quote(path))
end

describe("host functions that wait", function()
  after_each(support.cleanup)

  it("give their values to the caller only; the others keep running", function()
    local lines, out = host_script([[
      local acoro = require "acoro"
      acoro.run(function()
        local ran = 0
        local other = acoro.spawn(function()
          while true do ran = ran + 1; acoro.yield() end
        end)
        print(host.wait(20, 1, "two", { msgpack = 3 }))
        local a, b, c = host.wait(1, 1.5, "x")
        print(a, b, c)
        print(host.wait(1, "fail"))
        print(ran > 0)
        other:terminate()
        print(host.join())
      end)
    ]])
    assert.same({ "1\ttwo\ttable: ", "1.5\tx\tnil", "nil\thost says no\tENOPE", "true", "0", "rc=0" },
      { (lines[1] or ""):gsub("0x%x+", ""), lines[2], lines[3], lines[4], lines[5], lines[6] }, out)
  end)

  it("are cancelled by a timeout, a throw and a terminate, and their late values freed", function()
    local lines, out = host_script([[
      local acoro = require "acoro"
      acoro.run(function()
        print(host.wait_briefly(10000, "late"))
        local thrown = acoro.spawn(function()
          local ok, err = pcall(host.wait, 10000, "late")
          return ok, err
        end)
        local ended = acoro.spawn(function() return host.wait(10000, "late") end)
        acoro.yield() -- both ran before main again: each waits in its host call now
        thrown:throw("stop")
        print(thrown:join())
        ended:terminate()
        print(ended:join())
        print("cancelled", host.join())
      end)
    ]])
    assert.same({ "nil\ttimeout\tETIMEDOUT", "true\tfalse\tstop", "false\tterminated",
      "cancelled\t3", "rc=0" }, lines, out)
  end)

  it("raise at once for a misuse, with nothing left waiting", function()
    local lines, out = host_script([[
      local acoro = require "acoro"
      print(pcall(host.wait, 1))
      acoro.run(function()
        local ok, err = pcall(host.wait, "not a number")
        print(ok, (tostring(err):gsub("^.-: ", "")))
        print(host.wait(1, 7))
      end)
      print("joined", host.join())
    ]])
    assert.equal("false", lines[1]:match("^(%a+)\t"), out)
    assert.truthy(lines[1]:find("outside an acoro coroutine", 1, true), out)
    assert.equal("false", lines[2]:match("^(%a+)\t"), out)
    assert.truthy(lines[2]:find("number expected", 1, true), out)
    assert.same({ "7", "joined\t0", "rc=0" }, { lines[3], lines[4], lines[5] }, out)
  end)
end)

describe("posts from host threads", function()
  after_each(support.cleanup)

  it("reach a coroutine by name or by id, as numbers, strings or MessagePack values", function()
    local lines, out = host_script([[
      local acoro = require "acoro"
      acoro.run(function()
        local function collect()
          local got = {}
          while true do
            local m = acoro.receive()
            if m == "done" then return got end
            got[#got + 1] = type(m) == "table" and ("{i=" .. m.i .. "}") or tostring(m)
          end
        end
        local by_name = acoro.spawn(collect)
        by_name:register("sink")
        host.post("sink", 3, "msgpack")
        print(table.concat(select(2, by_name:join()), " "))
        local by_id = acoro.spawn(collect)
        host.post(by_id.id, 3, "string")
        print(table.concat(select(2, by_id:join()), " "))
        print(host.bad_msgpack())
        -- to a name nobody has: dropped and counted, the rest still comes
        local after = acoro.spawn(collect)
        after:register("after")
        host.post("nobody", 2)
        host.join() -- its posts are queued: they arrive before the next thread's
        host.post("after", 1)
        print(#select(2, after:join()), host.lost())
        host.join()
      end)
    ]])
    assert.same({ "{i=1} {i=2} {i=3}", "m1 m2 m3", "-2015", "1\t3", "rc=0" },
      { lines[1], lines[2], lines[3], lines[#lines - 1], lines[#lines] }, out)
    assert.truthy(out:find("LOG 1 a message posted by the host was dropped (no such coroutine)", 1, true), out)
  end)
end)

describe("core.run_once", function()
  after_each(support.cleanup)

  it("steps the engine without a main coroutine until the scripts are done", function()
    local lines, out = host_script([[
      local acoro = require "acoro"
      local core = require "acoro.core"
      local log = {}
      local a = acoro.spawn(function()
        for i = 1, 3 do acoro.sleep(0.005); log[#log + 1] = "a" .. i end
      end)
      acoro.spawn(function() a:join(); log[#log + 1] = "joined" end)
      -- ONCE blocks for the next timer, but spins its last millisecond
      -- (returning without an event, as often as the host calls): bounded
      -- in time, not in steps
      local rc, t0 = nil, os.time()
      repeat
        rc = core.run_once(1)
      until rc ~= 1 or os.time() - t0 > 20
      print(rc, table.concat(log, " "))
      print(core.run_once(2), core.run_once(0))
    ]])
    assert.same({ "0\ta1 a2 a3 joined", "0\t0", "rc=0" }, lines, out)
  end)
end)

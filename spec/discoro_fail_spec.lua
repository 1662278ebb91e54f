-- acoro.discoro's failure handling, with real processes on 127.0.0.1: values
-- that are false travel as they are (result, status Exit, a monitor's Exit); a
-- late answer from a server a job no longer runs on is ignored; run_results'
-- progress line goes through acoro.log's progress sink; a node killed mid-run
-- gives its jobs to the other node (bounded only as a safety net: bench/run
-- `lost` measures how long it takes).

local support = require "support"
local net = require "net_support"
local ns = require "node_support"

local q = support.shell_quote
local NODE_BIN = support.bin:gsub("acoro$", "acoro-node")

local dirs = {}
local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p " .. q(d)) == 0)
  dirs[#dirs + 1] = d
  return d
end

-- Starts acoro-node with `cpus` servers; returns the child, its location and pid.
local function start_node(cpus)
  local c = ns.track(net.spawn(("%s --cpus %d --listen 127.0.0.1:0 --no-discover --secret-file %s"
    .. " --dest-path %s"):format(q(NODE_BIN), cpus, q(ns.secret), q(tmpdir()))))
  local loc, pid = ns.expect_all(c, { "^acoro%-node listening (127%.0%.0%.1:%d+)$", "ready %(pid (%d+)%)" })
  return c, loc, pid
end

local stopped = {} -- pids of nodes this spec stopped (SIGSTOP): continued before they are killed

local function cleanup()
  for _, pid in ipairs(stopped) do os.execute("kill -CONT " .. pid .. " 2>/dev/null") end
  stopped = {}
  ns.stop_all()
  for _, d in ipairs(dirs) do os.execute("rm -rf " .. q(d)) end
  dirs = {}
end

describe("discoro values", function()
  after_each(cleanup)

  it("a job returning false, 'x': its result, its status Exit and its monitor's Exit carry false", function()
    local _, loc = start_node(1)
    local cli = ns.start(ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
local status = acoro.spawn(function()
  while true do
    local m = acoro.receive()
    if acoro.is_exit(m) then say("status exit", m.job, m.reason, type(m.value), tostring(m.value)) end
  end
end)
status:set_daemon()
local comp = discoro.Computation({ peers = { arg[1] }, status = status,
  code = "function no() return false, 'x' end function zero() return 0 end" })
assert(comp:schedule())
local r = { comp:run_result("no") }
say("result", #r, type(r[1]), tostring(r[1]), r[2])
local mon = acoro.self()
local r2 = { comp:submit({ monitor = mon }, "no") }
say("submit", type(r2[1]), tostring(r2[1]), r2[2])
local m = acoro.receive_match(acoro.is_exit, 30)
say("monitor exit", m.reason, type(m.value), tostring(m.value))
local h = assert(comp:run_async("no"))
h:monitor()
m = acoro.receive_match(function(x) return acoro.is_exit(x) and x.coro == h end, 30)
say("async exit", m.reason, type(m.value), tostring(m.value))
local rs, es = comp:run_results("no", { 1, 2 })
say("results", type(rs[1]), tostring(rs[1]), tostring(rs[2]), next(es))
say("zero", comp:run_result("zero"))
comp:close()
say("closed")
]], nil, nil, q(loc))
    assert.equal("2 boolean false x", cli:expect("^result (.*)$"))
    assert.equal("boolean false x", cli:expect("^submit (.*)$"))
    assert.equal("normal boolean false", cli:expect("^monitor exit (.*)$"))
    assert.equal("normal boolean false", cli:expect("^async exit (.*)$"))
    assert.equal("boolean false false nil", cli:expect("^results (.*)$"))
    assert.equal("0", cli:expect("^zero (.*)$"))
    cli:expect("^closed$")
    local exits = {}
    for _, l in ipairs(cli.seen) do
      local e = l:match("^status exit (.*)$")
      if e then exits[#exits + 1] = e end
    end
    table.sort(exits)
    assert.same({ "1 normal boolean false", "2 normal boolean false", "3 normal boolean false",
      "4 normal boolean false", "5 normal boolean false", "6 normal number 0" }, exits)
  end)
end)

describe("discoro: a late answer", function()
  after_each(cleanup)

  -- Two nodes of one server each, window 1, three jobs held by a gate. Node A's
  -- daemon is stopped (SIGSTOP) past zombie_period: its server is dropped and
  -- job 1 re-queued, while that server still runs job 1. Once job 1 runs again
  -- on B, A's copy is let go: its "done" comes late, from a server job 1 no
  -- longer runs on. It must neither complete job 1 nor free B's one slot (which
  -- would start job 3 beside job 1 on B).
  it("a done from a server the job was re-queued away from: ignored, the new server's slot kept", function()
    local _, la, pa = start_node(1)
    local _, lb, pb = start_node(1)
    local cli = ns.start(ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
local main = acoro.self()
local name = {} -- server location -> "A" (job 1's first server) or "B"
local gate = acoro.spawn(function()
  local up, lost, held, bloc = 0, false, {}, nil
  -- server location -> the job that runs there, until its coroutine's Exit
  -- (which comes after anything that server's other jobs sent before it)
  local on = {}
  while true do
    local m = acoro.receive()
    if m.status == "ServerInitialized" then
      up = up + 1
      if up == 2 then main:send("up") end
    elseif m.status == "JobRequeued" then
      say("requeued", m.job)
    elseif m.status == "NodeClosed" then
      lost = true
      say("node closed")
      for _, j in ipairs(held) do
        if name[j.co.location] == "B" then j.co:send("go") end -- B's slot frees: job 1 goes there
      end
    elseif m == "late answer ignored" then
      -- the scheduler has had A's answer: B's job 1 may end now (a slot freed
      -- by that answer would have started job 3 on B before)
      say(m)
      on[bloc].co:send("go")
    elseif acoro.is_exit(m) and m.coro and on[m.coro.location] and on[m.coro.location].co == m.coro then
      on[m.coro.location] = nil
    elseif m.start then
      local loc = m.co.location
      if on[loc] then
        say("two at once on", name[loc])
        m.co:send("go")
      else
        on[loc] = m
        m.co:monitor()
        if not lost then
          held[#held + 1] = m
          if m.start == 1 then
            name[loc] = "A"
          else
            bloc, name[loc] = loc, "B"
          end
          if #held == 2 then say("stop", m.start == 1 and m.node or held[1].node) end
        elseif m.start == 1 then
          -- job 1 again, on B: now A's copy answers, late
          for _, j in ipairs(held) do
            if j.start == 1 and name[j.co.location] == "A" then j.co:send("go") end
          end
        else
          m.co:send("go")
        end
      end
    end
  end
end)
gate:set_daemon()
-- the scheduler's debug line says when it had the late answer
acoro.log.set_level("debug")
acoro.log.set_writer(function(level, msg)
  if msg:find("a late answer from", 1, true) then
    gate:send("late answer ignored")
  elseif level ~= "debug" then
    acoro.log.default_writer(level, msg)
  end
end)
local comp = discoro.Computation({ peers = { arg[1], arg[2] }, status = gate, window = 1, pulse_interval = 0.2,
  zombie_period = 1, code = [=[
local ffi = require "ffi"
pcall(ffi.cdef, "int getppid(void);")
function hold(i, gate)
  gate:send({ start = i, node = ffi.C.getppid(), co = acoro.self() })
  acoro.receive()
  return i .. "@" .. acoro.node().location
end
]=] })
assert(comp:schedule())
assert(acoro.receive(30) == "up")
local r, e = comp:run_results("hold", { { 1, gate }, { 2, gate }, { 3, gate } })
local got = {}
for i = 1, 3 do
  local n, loc = tostring(r[i]):match("^(%d+)@(.*)$")
  got[i] = e[i] or (n .. "@" .. tostring(name[loc]))
end
say("results", table.concat(got, " "))
comp:close()
]], nil, nil, q(la) .. " " .. q(lb))
    local pid = cli:expect("^stop (%d+)$")
    assert.truthy(pid == pa or pid == pb)
    stopped[#stopped + 1] = pid
    assert.equal(0, os.execute("kill -STOP " .. pid))
    cli:expect("^node closed$")
    cli:expect("^late answer ignored$")
    assert.equal("1@B 2@B 3@B", cli:expect("^results (.*)$"))
    local requeued, twice = {}, {}
    for _, l in ipairs(cli.seen) do
      requeued[#requeued + 1] = l:match("^requeued (%d+)$")
      twice[#twice + 1] = l:match("^two at once on (.*)$")
    end
    assert.same({ "1" }, requeued)
    assert.same({}, twice)
  end)
end)

describe("discoro: the progress line goes through acoro.log", function()
  after_each(cleanup)

  -- Under script(1) stderr is a terminal: without a progress writer the line
  -- is drawn there (spec/discoro_run_at_spec.lua); with one, the writer takes
  -- every state and the terminal gets none.
  it("a progress writer takes run_results' line: nothing is drawn on the terminal", function()
    local _, loc = start_node(2)
    local path = support.write_temp(ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
local lines, last = 0, nil
acoro.log.set_progress_writer(function(line, final)
  lines = lines + 1
  last = line .. (final and " (final)" or "")
end)
local comp = discoro.Computation({ peers = { arg[1] }, code = "function sq(x) return x * x end" })
assert(comp:schedule())
local list = {}
for i = 1, 20 do list[i] = i end
local r = comp:run_results("sq", list)
say("results", #r, lines >= 1)
say("last", last)
comp:close()
]])
    local inner = ("%s --listen 127.0.0.1:0 --no-discover --secret-file %s %s %s")
      :format(q(support.bin), q(ns.secret), q(path), q(loc))
    local tty = ns.track(net.spawn("script -qec " .. q(inner) .. " /dev/null"))
    assert.equal("20 true", tty:expect("^results (%d+ %a+)"))
    assert.matches("^discoro: 20/20 jobs, [%d.]+ jobs/s, ETA 0 s %(final%)", tty:expect("^last (.*)$"))
    -- the writer's last state, said by the script, is the only one on the terminal
    local _, drawn = tty:output():gsub("discoro: %d+/20 jobs", "")
    assert.equal(1, drawn, tty:output())
  end)
end)

describe("discoro: a node killed mid-run", function()
  after_each(cleanup)

  -- bench/discoro_lost.lua, which bench/run's `lost` row times, with short
  -- jobs: it fails when a job fails or when anything takes past its bound
  -- (60 s here, a safety net only: the figure is bench/run's).
  it("its jobs are re-queued on the other node and every value comes back, within a generous bound", function()
    local _, la, pa = start_node(2)
    local _, lb = start_node(2)
    local c = ns.track(net.spawn(("%s --listen 127.0.0.1:0 --no-discover --secret-file %s %s %s %s %s 0.2 60")
      :format(q(support.bin), q(ns.secret), q(support.root .. "/bench/discoro_lost.lua"), q(la), pa, q(lb))))
    local line = c:expect("^(LOST .*)$")
    assert.matches("^LOST mode=kill job_s=0.2 ref_s=[%d.]+ detect_s=[%d.]+ last_s=[%d.]+"
      .. " over_s=%-?[%d.]+ requeued=2$", line)
  end)
end)

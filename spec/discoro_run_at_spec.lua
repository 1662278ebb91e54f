-- acoro.discoro's run_at family, close{await_async=} and run_results'
-- progress line, with real processes on 127.0.0.1: acoro-node daemons named
-- alpha and beta with 2 servers each (discovery off, peers=).

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

-- Starts acoro-node NAME; returns the child, its location and pid.
local function start_node(name)
  local c = ns.track(net.spawn(("%s --cpus 2 --listen 127.0.0.1:0 --no-discover --secret-file %s"
    .. " --dest-path %s --name %s"):format(q(NODE_BIN), q(ns.secret), q(tmpdir()), name)))
  local loc, pid = ns.expect_all(c, { "^acoro%-node listening (127%.0%.0%.1:%d+)$", "ready %(pid (%d+)%)" })
  return c, loc, pid
end

local function cleanup()
  ns.stop_all()
  for _, d in ipairs(dirs) do os.execute("rm -rf " .. q(d)) end
  dirs = {}
end

-- Jobs that say which node runs them (its daemon is their parent).
local CODE = [=[
local ffi = require "ffi"
pcall(ffi.cdef, "int getppid(void);")
function ppid() return ffi.C.getppid() end
function tell(to) to:send({ ppid = ffi.C.getppid() }) end
function hold(v) acoro.receive() return v end
function sq(x) return x * x end
]=]

describe("discoro run_at", function()
  after_each(cleanup)

  it("run_result_at and run_at place jobs by node name, location or server; an impossible one fails alone", function()
    local _, la, pa = start_node("alpha")
    local _, lb, pb = start_node("beta")
    local cli = ns.start(ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
local me = acoro.self()
local comp = discoro.Computation({ peers = { arg[1], arg[2] }, code = ]] .. ("%q"):format(CODE) .. [[ })
assert(comp:schedule())
say("by name", comp:run_result_at("beta", "ppid"))
say("by location", comp:run_result_at(arg[1], "ppid"))
say("by glob", comp:run_result_at("al*", "ppid"))
local h = comp:run_at("beta", "tell", me)
say("handle", acoro.is_remote(h))
say("told", acoro.receive_match(function(m) return type(m) == "table" and m.ppid end, 30).ppid)
-- a server's own location: the job runs there
local s = comp:servers()[1]
say("server", comp:run_result_at(s, "sq", 5))
comp:close()
]], nil, nil, q(la) .. " " .. q(lb))
    assert.equal(pb, cli:expect("^by name (%d+)$"))
    assert.equal(pa, cli:expect("^by location (%d+)$"))
    assert.equal(pa, cli:expect("^by glob (%d+)$"))
    assert.equal("true", cli:expect("^handle (.*)$"))
    assert.equal(pb, cli:expect("^told (%d+)$"))
    assert.equal("25", cli:expect("^server (.*)$"))
  end)

  it("a run_at job that no server matches fails at its timeout with the reason; the others run", function()
    local _, la = start_node("alpha")
    local cli = ns.start(ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
local comp = discoro.Computation({ peers = { arg[1] }, timeout = 0.5, code = ]] .. ("%q"):format(CODE) .. [[ })
assert(comp:schedule())
local main = acoro.self()
acoro.spawn(function() main:send({ other = comp:run_result("sq", 6) }) end)
say("gamma", comp:run_result_at("gamma", "sq", 2))
say("other", acoro.receive_match(function(m) return type(m) == "table" and m.other end, 30).other)
comp:close()
]], nil, nil, q(la))
    -- (", no server is up" follows when the node's servers took longer
    -- than the timeout to start, on a loaded machine)
    assert.matches("^nil no server matches the job sq%(1%) in 0%.5 s: no server at gamma",
      cli:expect("^gamma (.*)$"))
    assert.equal("36", cli:expect("^other (.*)$"))
  end)
end)

describe("discoro close", function()
  after_each(cleanup)

  it("close{await_async=true} waits for the async jobs given out; close() fails them", function()
    local _, la = start_node("alpha")
    local cli = ns.start(ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
local main = acoro.self()
local status = acoro.spawn(function()
  while true do
    local m = acoro.receive()
    if acoro.is_exit(m) then say("exit", m.job, m.reason, tostring(m.value), tostring(m.error)) end
    if m.status == "ComputationClosed" then main:send("closed") end
  end
end)
status:set_daemon()
for _, await in ipairs({ true, false }) do
  local comp = discoro.Computation({ peers = { arg[1] }, status = status, code = ]] .. ("%q"):format(CODE) .. [[ })
  assert(comp:schedule())
  local h = assert(comp:run_async("hold", 5))
  -- runs once close() waits
  acoro.spawn(function() h:send("go") end)
  say("close", comp:close({ await_async = await }))
  acoro.receive_match(function(m) return m == "closed" end, 30)
end
say("done")
]], nil, nil, q(la))
    cli:expect("^done$")
    local exits = {}
    for _, l in ipairs(cli.seen) do
      if l:match("^exit ") then exits[#exits + 1] = l end
    end
    assert.same({ "exit 1 normal 5 nil", "exit 1 error nil closed" }, exits)
  end)
end)

describe("discoro run_results progress", function()
  after_each(cleanup)

  local SCRIPT = [[
local discoro = require "acoro.discoro"
local comp = discoro.Computation({ peers = { arg[1] }, code = "function sq(x) return x * x end" })
assert(comp:schedule())
local list = {}
for i = 1, 20 do list[i] = i end
local r = comp:run_results("sq", list)
say("results", #r)
comp:close()
]]

  it("draws done/total, jobs/s and ETA on stderr when it is a terminal, and nothing on a pipe", function()
    local _, la = start_node("alpha")
    -- under script(1): stdout and stderr a terminal
    local path = support.write_temp(ns.PRELUDE .. SCRIPT)
    local inner = ("%s --listen 127.0.0.1:0 --no-discover --secret-file %s %s %s")
      :format(q(support.bin), q(ns.secret), q(path), q(la))
    local tty = ns.track(net.spawn("script -qec " .. q(inner) .. " /dev/null"))
    tty:expect("results 20")
    assert.matches("discoro: 20/20 jobs, [%d.]+ jobs/s, ETA 0 s", tty:output())
    local cli = ns.start(ns.PRELUDE .. SCRIPT, nil, nil, q(la))
    cli:expect("^results 20$")
    assert.falsy(cli:output():find("jobs/s", 1, true))
  end)

  it("progress = a function gets the figures instead; progress = false draws nothing", function()
    local _, la = start_node("alpha")
    local cli = ns.start(ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
local last
local comp = discoro.Computation({ peers = { arg[1] }, code = "function sq(x) return x * x end",
  progress = function(done, total, rate) last = { done, total, rate >= 0 } end })
assert(comp:schedule())
local r = comp:run_results("sq", { 1, 2, 3 })
say("last", last[1], last[2], last[3], #r)
last = nil
comp:run_results("sq", { 1, 2, 3 }, { progress = false })
say("off", last == nil)
comp:close()
]], nil, nil, q(la))
    assert.equal("3 3 true 3", cli:expect("^last (.*)$"))
    assert.equal("true", cli:expect("^off (.*)$"))
  end)
end)

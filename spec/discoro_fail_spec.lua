-- acoro.discoro's failure handling, with real processes on 127.0.0.1: values
-- that are false travel as they are (result, status Exit, a monitor's Exit); a
-- late answer from a server a job no longer runs on is ignored; a node killed
-- mid-run gives its jobs to the other node (bounded only as a safety net:
-- bench/run `lost` measures how long it takes).

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

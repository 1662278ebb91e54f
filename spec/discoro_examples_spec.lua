-- The discoro examples (examples/discoro_*.lua) as real processes on
-- 127.0.0.1: an acoro-node with 2 servers, discovery off, the client given the
-- node's location; the specs check what the client prints.

local support = require "support"
local net = require "net_support"
local ns = require "node_support"

local q = ns.q
local NODE_BIN = support.bin:gsub("acoro$", "acoro-node")

local function start_node()
  local dest = os.tmpname()
  os.remove(dest)
  local c = ns.track(net.spawn(("%s --cpus 2 --listen 127.0.0.1:0 --no-discover --secret-file %s"
    .. " --dest-path %s --serve 1"):format(q(NODE_BIN), q(ns.secret), q(dest))))
  return c, c:expect("^acoro%-node listening (127%.0%.0%.1:%d+)$"), dest
end

describe("examples/discoro_client1.lua", function()
  after_each(ns.stop_all)

  it("runs 5 jobs on the node's servers and prints each result", function()
    local node, loc, dest = start_node()
    local cli = ns.track(net.spawn_acoro(("--listen 127.0.0.1:0 --no-discover --secret-file %s %s %s 5")
      :format(q(ns.secret), q("examples/discoro_client1.lua"), q(loc))))
    local results, at = {}, {}
    for _ = 1, 10 do
      local l = assert(cli:line(), cli:output())
      local i, where = l:match("^job (%d+) runs at (127%.0%.0%.1:%d+)$")
      if i then
        at[#at + 1] = where
      else
        i = assert(l:match("^result: job (%d+) slept [%d.]+ s$"), l)
        results[#results + 1] = tonumber(i)
      end
    end
    table.sort(results)
    assert.same({ 1, 2, 3, 4, 5 }, results)
    assert.equal(5, #at)
    for _, where in ipairs(at) do assert.not_equal(loc, where) end -- on a server, not the node
    -- the node served its one computation and exits, its dest path empty
    node:close()
    ns.forget(node)
    local p = io.popen("ls -A " .. q(dest))
    assert.equal("", p:read("*a"))
    p:close()
    os.execute("rm -rf " .. q(dest))
  end)
end)

describe("examples/discoro_client4.lua", function()
  after_each(ns.stop_all)

  it("ships 3 files, each job sends its counts back as a file the client prints", function()
    local _, loc = start_node()
    local back = os.tmpname()
    os.remove(back)
    local cli = ns.track(net.spawn_acoro(("--listen 127.0.0.1:0 --no-discover --secret-file %s --dest-path %s %s %s %s")
      :format(q(ns.secret), q(back), q("examples/discoro_client4.lua"), q(loc), q(back))))
    for i = 1, 3 do
      assert.equal(("data%d.txt: %d lines, %d words, %d bytes"):format(i, i * 10, i * i * 10, i * 10 * (5 * i + 1)),
        cli:expect("^(data%d.txt: .*)$"))
    end
    os.execute("rm -rf " .. q(back))
  end)
end)

-- Runs examples/NAME with the node's location and `args`; returns the client.
local function run_example(name, loc, args)
  return ns.track(net.spawn_acoro(("--listen 127.0.0.1:0 --no-discover --secret-file %s %s %s %s")
    :format(q(ns.secret), q("examples/" .. name), q(loc), args or "")))
end

describe("examples/discoro_client3.lua", function()
  after_each(ns.stop_all)

  it("objects of a registered class go to a job and come back as the client's class", function()
    local _, loc = start_node()
    local cli = run_example("discoro_client3.lua", loc, "3")
    for i = 1, 3 do
      assert.equal(("C(i=%d, v=%d, at "):format(i, (i + 1) ^ 2), cli:expect("^got (C%(i=%d+, v=%d+, at )127"))
    end
    assert.equal("done", cli:expect("^job ended: (.*)$"))
  end)
end)

describe("examples/discoro_client7.lua", function()
  after_each(ns.stop_all)

  it("starts jobs from the status messages, one more per job that ends, until 6 ran", function()
    local _, loc = start_node()
    local cli = run_example("discoro_client7.lua", loc, "6")
    local got, up = {}, 0
    while #got < 6 do
      local l = assert(cli:line(), cli:output())
      if l == "server up" then up = up + 1 end
      local i = l:match("^result: job (%d+) slept")
      if i then got[#got + 1] = tonumber(i) end
      assert.falsy(l:match("failed"), l)
    end
    table.sort(got)
    assert.same({ 1, 2, 3, 4, 5, 6 }, got)
    assert.is_true(up >= 1)
  end)
end)

describe("examples/discoro_client8.lua", function()
  after_each(ns.stop_all)

  it("jobs that never yield for their whole run come back, one per server at a time", function()
    local _, loc = start_node()
    local cli = run_example("discoro_client8.lua", loc, "3 0.3")
    for i = 1, 3 do
      assert.equal(tostring(i), cli:expect("^result: job (%d+) computed 0%.3 s %(%d+ rounds%)$"))
    end
  end)
end)

describe("examples/discoro_client5.lua", function()
  after_each(ns.stop_all)

  it("a program sent with files= runs on a server, fed and read through pipes by a job", function()
    local _, loc = start_node()
    local cli = run_example("discoro_client5.lua", loc, "3")
    local pid
    for i = 1, 3 do
      local line = cli:expect("^output: (%d+ LINE %d+) %(pid %d+%)$")
      local p = cli.seen[#cli.seen]:match("pid (%d+)")
      assert.equal(("%d LINE %d"):format(i, i), line)
      pid = pid or p
      assert.equal(pid, p) -- one program for all the lines
    end
    cli:expect("^output: end after 3 lines$")
    cli:expect("^program exited: normal 0$")
  end)
end)

for _, name in ipairs({ "discoro_client6.lua", "discoro_client6_channel.lua" }) do
  describe("examples/" .. name, function()
    after_each(ns.stop_all)

    it("streams 200 values to 2 jobs, which send alerts as they come and their summaries at the end", function()
      local _, loc = start_node()
      local cli = run_example(name, loc, "2 200")
      local summaries, alerts = {}, { job1 = 0, job2 = 0 }
      while #summaries < 2 do
        local l = assert(cli:line(), cli:output())
        local job = l:match("^alert (job%d) at %d+: average [%d.]+$")
        if job then
          alerts[job] = alerts[job] + 1
        else
          summaries[#summaries + 1] = assert(l:match("^summary (.*)$"), l)
        end
      end
      table.sort(summaries)
      -- every alert came before its job's summary (one stream from each job)
      local want = name == "discoro_client6.lua" and 36 or 33
      assert.same({ ("job1: 200 values, %d alerts"):format(want), ("job2: 200 values, %d alerts"):format(want) },
        summaries)
      assert.same({ job1 = want, job2 = want }, alerts)
    end)
  end)
end

describe("examples/discoro_client9_server.lua", function()
  after_each(ns.stop_all)

  it("each server enabled with a file of its own, read into its memory, and jobs run on that memory", function()
    local _, loc = start_node()
    local cli = run_example("discoro_client9_server.lua", loc, "2")
    -- server k holds 1..10k: twice their sum is 10k(10k+1)
    assert.equal("10 numbers, twice their sum 110", cli:expect("^server 1: (.*)$"))
    assert.equal("20 numbers, twice their sum 420", cli:expect("^server 2: (.*)$"))
  end)
end)

describe("examples/discoro_client9_node.lua", function()
  after_each(ns.stop_all)

  it("two nodes, each enabled with its part: node_setup writes it once, servers hold it in memory", function()
    local _, la = start_node()
    local _, lb = start_node()
    local cli = ns.track(net.spawn_acoro(("--listen 127.0.0.1:0 --no-discover --secret-file %s %s %s %s")
      :format(q(ns.secret), q("examples/discoro_client9_node.lua"), q(la), q(lb))))
    local got = {}
    got[1] = cli:expect("^at 127%.0%.0%.1:%d+: (.*)$")
    got[2] = cli:expect("^at 127%.0%.0%.1:%d+: (.*)$")
    table.sort(got)
    -- the odd lines on one node, the even on the other
    assert.same({ "50 values, sum 2500", "50 values, sum 2550" }, got)
  end)
end)

describe("examples/discoro_ssh_ec2.lua", function()
  after_each(ns.stop_all)

  it("a client that starts its own node with discovery off reaches a node by its location alone", function()
    local _, loc = start_node()
    local key = io.open(ns.secret):read("*l")
    local cli = ns.track(net.spawn(("env ACORO_SECRET=%s %s %s %s 0 3"):format(q(key), q(support.bin),
      q("examples/discoro_ssh_ec2.lua"), q(loc))))
    for i = 1, 3 do assert.equal(tostring(i), cli:expect("^job (%d+) ran on %S+$")) end
  end)
end)

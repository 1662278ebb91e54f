-- The examples with the web monitor (examples/discoro_httpd1.lua,
-- discoro_httpd2.lua, discoro_client2.lua) as real processes on 127.0.0.1:
-- an acoro-node with 2 servers, the example given its location and HTTP port
-- 0, its stdin fed here a line at a time; the specs check what it prints and
-- what its monitor answers meanwhile.

local acoro = require "acoro"
local cjson = require "cjson"
local support = require "support"
local ns = require "node_support"
local pipe = require "pipe_support"

local NODE_BIN = support.bin:gsub("acoro$", "acoro-node")

-- Runs test(example, status, url) inside acoro.run with a node and the example
-- started (extra: its arguments after the node's location); every child is
-- stopped at the end, whatever happened.
local function with_example(name, extra, test)
  local dest = os.tmpname()
  os.remove(dest)
  local failure
  acoro.run(function()
    local children = {}
    local ok, err = pcall(function()
      local node = pipe.spawn({ NODE_BIN, "--cpus", "2", "--listen", "127.0.0.1:0", "--no-discover",
        "--secret-file", ns.secret, "--dest-path", dest })
      children[#children + 1] = node
      local loc = node:expect("^acoro%-node listening (127%.0%.0%.1:%d+)$", "acoro-node")
      acoro.spawn(function() while node:line(3 * pipe.T) do end end):set_daemon()
      local argv = { support.bin, "--listen", "127.0.0.1:0", "--no-discover", "--secret-file", ns.secret,
        support.root .. "/examples/" .. name, loc }
      for _, a in ipairs(extra) do argv[#argv + 1] = a end
      local ex = pipe.spawn(argv)
      children[#children + 1] = ex
      local url = ex:expect("^monitor at (http://127%.0%.0%.1:%d+/)$", name)
      -- the monitor's JSON, as a page would get it
      local function status()
        local code, body = pipe.get(url .. "api/status")
        assert.equal(200, code, body)
        return cjson.decode(body)
      end
      test(ex, status, url)
    end)
    for _, c in ipairs(children) do c:stop() end
    if not ok then failure = err end
  end)
  os.execute("rm -rf " .. support.shell_quote(dest))
  if failure then error(failure, 0) end
end

-- Reads lines until one matches `last`; returns the others that match
-- `pattern` (their first capture), sorted.
local function collect(ex, pattern, last)
  local got = {}
  while true do
    local l = ex:line()
    if not l then error("ended before " .. last .. ":\n" .. table.concat(ex.seen, "\n"), 2) end
    if l:match(last) then break end
    local cap = l:match(pattern)
    if cap then got[#got + 1] = cap end
  end
  table.sort(got)
  return got
end

describe("examples/discoro_httpd1.lua", function()
  it("starts a job per number typed, its monitor counts them, quit waits for them", function()
    with_example("discoro_httpd1.lua", { "0" }, function(ex, status)
      ex:expect("^type a delay")
      ex:say("0.3")
      assert.equal("1", ex:expect("^job (%d+) runs at 127%.0%.0%.1:%d+$"))
      local st = status()
      assert.equal(1, st.jobs.submitted)
      assert.equal("computation", st.name)
      ex:say("soon")
      assert.equal("soon", ex:expect("^not a delay: (.*)$"))
      ex:say("0.1")
      assert.equal("2", ex:expect("^job (%d+) runs at 127%.0%.0%.1:%d+$"))
      assert.equal(2, status().jobs.submitted)
      ex:say("quit")
      assert.same({ "job 1 slept 0.3 s", "job 2 slept 0.1 s" }, collect(ex, "^result: (.*)$", "^2 job%(s%) ended$"))
      assert.equal(0, ex:finish())
    end)
  end)
end)

describe("examples/discoro_httpd2.lua", function()
  it("its own status coroutine prints each server up and each job's end, next to the monitor", function()
    with_example("discoro_httpd2.lua", { "0" }, function(ex, status)
      ex:expect("^type a delay")
      assert.same({ submitted = 0, running = 0, done = 0, failed = 0, requeued = 0 }, status().jobs)
      ex:say("0.2")
      assert.equal("1", ex:expect("^job (%d+) submitted$"))
      ex:say("x")
      assert.equal("x", ex:expect("^not a delay: (.*)$"))
      ex:say("0.1")
      assert.equal("2", ex:expect("^job (%d+) submitted$"))
      ex:say("quit")
      assert.same({ "1 finished: job 1 slept 0.2 s", "2 finished: job 2 slept 0.1 s" },
        collect(ex, "^job (%d+ finished: .*)$", "^2 job%(s%) ended$"))
      assert.equal(0, ex:finish())
      local up = 0
      for _, l in ipairs(ex.seen) do
        if l:match("^server up at 127%.0%.0%.1:%d+$") then up = up + 1 end
      end
      assert.is_true(up >= 1, table.concat(ex.seen, "\n"))
    end)
  end)
end)

describe("examples/discoro_client2.lua", function()
  it("runs N jobs with the monitor up, which shows them all done until stdin says so", function()
    with_example("discoro_client2.lua", { "4", "0" }, function(ex, status, url)
      local results = collect(ex, "^result: (job %d+) slept [%d.]+ s$", "^all jobs ended")
      assert.same({ "job 1", "job 2", "job 3", "job 4" }, results)
      local runs = 0
      for _, l in ipairs(ex.seen) do
        if l:match("^job %d runs at 127%.0%.0%.1:%d+$") then runs = runs + 1 end
      end
      assert.equal(4, runs)
      local st = status()
      assert.same({ submitted = 4, running = 0, done = 4, failed = 0, requeued = 0 }, st.jobs)
      assert.equal(1, #st.nodes)
      assert.equal("up", st.nodes[1].status)
      assert.equal(4, st.nodes[1].done)
      local code, page = pipe.get(url)
      assert.equal(200, code)
      assert.truthy(page:find('<script src="/static/app.js"></script>', 1, true))
      ex:say("")
      assert.equal(0, ex:finish())
    end)
  end)
end)

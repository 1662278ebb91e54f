-- The discoro web monitor in a real browser: an acoro-node with 2 servers and
-- a client (spec/monitor_client.lua) running a computation watched by
-- discoro.httpd, as real processes on 127.0.0.1; headless Chromium (Debian's,
-- driven by playwright-core from spec/browser/) looks at its pages through
-- spec/browser/monitor_test.js, which asks this spec for each action (jobs
-- to run, a node to kill) and checks the pages after it, and the node's own
-- monitor (acoro-node --http). Screenshots of the pages go to
-- build/screenshots/. Pending only when Chromium cannot
-- start here, or when npm could not install the driver.

local acoro = require "acoro"
local support = require "support"
local ns = require "node_support"
local pipe = require "pipe_support"

local T = pipe.T
local DIR = support.root .. "/spec/browser"
local BUILD = os.getenv("ACORO_BUILD") or "build"
local NODE_BIN = support.bin:gsub("acoro$", "acoro-node")
local TOKEN = "spec-token-" .. tostring(os.time())

local function driver_env()
  -- node and Chromium run without this process's sanitizer preloads
  local env = {}
  for _, k in ipairs({ "PATH", "HOME", "TMPDIR", "LANG", "CHROMIUM", "XDG_RUNTIME_DIR" }) do
    env[k] = os.getenv(k)
  end
  return env
end

describe("the discoro web monitor in a real browser", function()
  it("shows the computation live, terminates a job, a killed node closed, markup as text; auth and /metrics",
    function()
      local driver = io.open(DIR .. "/node_modules/playwright-core/package.json")
      if not driver then
        return pending("playwright-core is not installed in spec/browser "
          .. "(tools/setup runs npm ci there; it said why it could not)")
      end
      driver:close()
      local shots = BUILD .. "/screenshots"
      os.execute("mkdir -p " .. support.shell_quote(shots))
      for _, n in ipairs({ "cluster", "node", "server", "acoro-node" }) do os.remove(shots .. "/" .. n .. ".png") end
      local dest = os.tmpname()
      os.remove(dest)
      local result, failure
      acoro.run(function()
        local children = {}
        local ok, err = pcall(function()
          local node = pipe.spawn({ NODE_BIN, "--cpus", "2", "--listen", "127.0.0.1:0", "--no-discover",
            "--secret-file", ns.secret, "--dest-path", dest, "--name", "spec-node", "--http", "127.0.0.1:0" })
          children[#children + 1] = node
          local node_url = node:expect("^acoro%-node monitor (http://127%.0%.0%.1:%d+/)$", "acoro-node")
          local loc = node:expect("^acoro%-node listening (127%.0%.0%.1:%d+)$", "acoro-node")
          -- the node's log is read on, so that its pipe never fills
          acoro.spawn(function() while node:line(3 * T) do end end):set_daemon()
          local client = pipe.spawn({ support.bin, "--listen", "127.0.0.1:0", "--no-discover", "--secret-file",
            ns.secret, support.root .. "/spec/monitor_client.lua", loc, TOKEN })
          children[#children + 1] = client
          local port = client:expect("^monitor (%d+)$", "the client")
          local ui = pipe.spawn({ "node", DIR .. "/monitor_test.js", ("http://127.0.0.1:%s"):format(port), TOKEN, loc,
            shots:match("^/") and shots or (support.root .. "/" .. shots), node_url }, driver_env())
          children[#children + 1] = ui
          -- the driver's steps, in its order; each answered "go" once done
          while true do
            local l, why = ui:line(3 * T)
            if not l then
              result = "FAIL the driver ended (" .. why .. "):\n" .. table.concat(ui.seen, "\n")
              break
            end
            local step, rest = l:match("^STEP (%S+)%s*(.*)$")
            if step == "run" then
              client:say("run " .. rest)
              client:expect("^ran " .. rest .. ": (%d+)$", "the client")
            elseif step == "blip" then
              client:say("blip " .. rest)
              client:expect("^ran " .. rest .. ": (%d+)$", "the client")
              client:expect("^monitor (%d+) again$", "the client")
            elseif step == "hold" then
              client:say("hold " .. rest)
            elseif step == "terminated" then
              -- the job's own monitor got the reason
              assert.equal("terminated", client:expect("^hold ended: (.*)$", "the client"))
            elseif step == "long" then
              client:say("long " .. rest)
            elseif step == "kill" then
              node.p:kill("KILL")
              node.p:wait(T)
            elseif l:match("^OK ") or l:match("^FAIL ") or l:match("^SKIP ") then
              result = l
              break
            end
            if step then ui:say("go") end
          end
          if result:match("^OK ") then
            -- the jobs that ran on the killed node fail once no node is left
            for _ = 1, 4 do
              local v = client:expect("^long %d+: (.*)$", "the client")
              assert.equal("unreachable", v)
            end
            client:say("quit")
            client:expect("^bye$", "the client")
          elseif not result:match("^SKIP ") then
            result = result .. "\nclient:\n" .. table.concat(client.seen, "\n") .. "\nnode:\n"
              .. table.concat(node.seen, "\n")
          end
        end)
        for _, c in ipairs(children) do c:stop() end
        if not ok then failure = err end
      end)
      os.execute("rm -rf " .. support.shell_quote(dest))
      if failure then error(failure, 0) end
      if result:match("^SKIP ") then return pending(result:gsub("^SKIP ", "")) end
      assert.matches("^OK ", result)
      for _, n in ipairs({ "cluster", "node", "server", "acoro-node" }) do
        assert.truthy(io.open(shots .. "/" .. n .. ".png"), "no screenshot " .. n .. ".png in " .. shots)
      end
    end)
end)

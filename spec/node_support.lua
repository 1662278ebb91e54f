-- Helpers of the distribution specs (spec/node*_spec.lua): real `acoro` node
-- processes on 127.0.0.1 started with the CLI's node flags, read line by line.
local support = require "support"
local net = require "net_support"

local M = {}
local q = support.shell_quote
M.q = q

M.secret = support.write_temp("the shared secret\n", ".key")
M.other_secret = support.write_temp("another secret\n", ".key")

-- Starts `source` as a node on 127.0.0.1 (any port, unless `extra` has its own
-- --listen) with `extra` CLI flags, the secret file `key` (nil: M.secret), the
-- script's `args` and `env` ("NAME=value ..." added to its environment, or nil);
-- the script must print "listening <location>" first (PRELUDE does). Returns the
-- child and its location. stop_all() stops every child started.
local children = {}
function M.start(source, extra, key, args, env)
  local path = support.write_temp(source)
  local cmd = ("%s --listen 127.0.0.1:0 --no-discover --secret-file %s %s %s %s")
    :format(q(support.bin), q(key or M.secret), extra or "", q(path), args or "")
  local c = net.spawn(env and ("env " .. env .. " " .. cmd) or cmd)
  children[#children + 1] = c
  return c, c:expect("^listening (127%.0%.0%.1:%d+)$")
end

-- Starts a node (as M.start, `extra` its flags) that peers with the node at
-- `location` (its arg[1]) before it runs `body` after PRELUDE. Returns the child
-- and its location.
function M.start_peer(location, body, extra)
  return M.start(M.PRELUDE .. "assert(acoro.peer(arg[1], 10))\n" .. body, extra, nil, q(location))
end

-- Reads c's lines until each pattern of the list has matched one (in any order);
-- returns the first capture of each, in the list's order.
function M.expect_all(c, patterns)
  local got, left = {}, #patterns
  while left > 0 do
    local l = c:line()
    if l == nil then error("child ended; output:\n" .. c:output(), 2) end
    for i, p in ipairs(patterns) do
      local cap = got[i] == nil and l:match(p)
      if cap then
        got[i] = cap
        left = left - 1
        break
      end
    end
  end
  return unpack(got)
end

-- Stops c with the others in stop_all(); forget(c) takes it back.
function M.track(c)
  children[#children + 1] = c
  return c
end

function M.forget(c)
  for i = #children, 1, -1 do
    if children[i] == c then table.remove(children, i) end
  end
end

function M.stop_all()
  for _, c in ipairs(children) do
    c:kill()
    c:close()
  end
  children = {}
end

-- The start of every script a spec runs as a child: acoro, getpid, and
-- say(...), which prints a line at once.
M.SAY = [[
local acoro = require "acoro"
local ffi = require "ffi"
ffi.cdef "int getpid(void);"
local function say(...)
  local t = {}
  for i = 1, select("#", ...) do t[i] = tostring((select(i, ...))) end
  print(table.concat(t, " "))
  io.stdout:flush()
end
]]

-- The start of a lying peer's script (spec/lying_peer.lua): SAY, then LP.
M.LYING = M.SAY .. ([[
package.path = %q .. package.path
local LP = require "lying_peer"
]]):format(support.root .. "/spec/?.lua;")

-- Starts `body` (Lua) as the shared lying peer against the node at
-- `target`: a process with no node of its own, in which `p` is already
-- linked with the secret (LP.connect), and `args` (shell words) follow
-- target and key file in arg. Returns the child; stop_all() stops it.
function M.liar(body, target, args)
  local path = support.write_temp(M.LYING .. "local p = LP.connect(arg[1], arg[2])\n" .. body)
  return M.track(net.spawn(("%s %s %s %s %s"):format(q(support.bin), q(path), q(target), q(M.secret),
    args or "")))
end

-- The start of every node script: SAY, then the node's location and pid.
M.PRELUDE = M.SAY .. [[
say("listening", acoro.node().location)
say("pid", ffi.C.getpid())
]]

return M

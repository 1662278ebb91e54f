-- Helpers shared by the specs that check what nodes leave on disk (file
-- transfer, the receiver's refusals): shell commands, fresh temporary
-- directories removed after each test, a sorted listing of a tree, and a
-- bounded wait for a condition that another process makes true.

local ns = require "node_support"

local q = ns.q
local M = {}

function M.sh(cmd) return os.execute(cmd) == 0 end

-- The output of a shell command, trailing white space removed.
function M.read(cmd)
  local p = assert(io.popen(cmd))
  local s = p:read("*a")
  p:close()
  return (s:gsub("%s+$", ""))
end

local dirs = {}

function M.tmpdir()
  local d = M.read("mktemp -d")
  assert(d:match("^/"), "mktemp -d failed")
  dirs[#dirs + 1] = d
  return d
end

-- Stops every node the test started, then removes its directories (made
-- writable first: some tests take write permission away).
function M.cleanup()
  ns.stop_all()
  for _, d in ipairs(dirs) do M.sh("chmod -R u+w " .. q(d) .. " 2>/dev/null; rm -rf " .. q(d)) end
  dirs = {}
end

function M.exists(path) return M.sh("test -e " .. q(path)) end

-- Every name under dir (recursive, hidden ones too), sorted, one a line.
function M.tree(dir)
  return M.read("cd " .. q(dir) .. " && find . -mindepth 1 | sort")
end

-- Waits until cond() holds: it depends on another process, so it is
-- polled (every 50 ms, at most 20 s, a safety net only).
function M.eventually(cond, what)
  for _ = 1, 400 do
    if cond() then return end
    M.sh("sleep 0.05")
  end
  error("never happened: " .. what, 2)
end

return M

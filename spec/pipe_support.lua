-- Children of a spec inside acoro.run, through acoro.process: stdin a pipe
-- the spec writes to, stdout and stderr one pipe read a line at a time (sh
-- execs the program: the pid is its own, so a kill reaches it), and a GET
-- through curl. Every wait is bounded.
local acoro = require "acoro"

local M = {}
M.T = 60

local Child = {}
Child.__index = Child

-- spawn(argv [, env]): env (a table) replaces the environment.
function M.spawn(argv, env)
  local cmd = { "sh", "-c", 'exec "$0" "$@" 2>&1', stdin = "pipe", stdout = "pipe", env = env }
  for _, a in ipairs(argv) do cmd[#cmd + 1] = a end
  local p = assert(acoro.process.spawn(cmd))
  return setmetatable({ p = p, seen = {} }, Child)
end

-- The next line without its "\n", or nil and why (EOF, timeout).
function Child:line(timeout)
  local l, why = self.p.stdout:readline(nil, timeout or M.T)
  if not l or why then return nil, why or "eof" end
  l = l:gsub("\n$", "")
  self.seen[#self.seen + 1] = l
  return l
end

-- The first capture of the first line that matches, or an error with all the
-- lines read.
function Child:expect(pattern, what)
  while true do
    local l, why = self:line()
    if not l then
      error(("%s: no line like %s (%s); it printed:\n%s"):format(what or "the child", pattern, why,
        table.concat(self.seen, "\n")), 2)
    end
    local cap = l:match(pattern)
    if cap then return cap end
  end
end

function Child:say(text) assert(self.p.stdin:send(text .. "\n")) end

-- The exit code, once stdin is closed (the child's end of input).
function Child:finish()
  self.p.stdin:close()
  return self.p:wait(M.T)
end

function Child:stop()
  if self.p:wait(0) == nil then
    self.p:kill("KILL")
    self.p:wait(M.T)
  end
  self.p:close()
end

-- GET url through curl -> status code, body. curl runs without this
-- process's sanitizer preloads (under them it hangs).
function M.get(url)
  local p = assert(acoro.process.spawn({ "curl", "-s", "-m", tostring(M.T), "-w", "\n%{http_code}", url,
    stderr = "null", env = { PATH = os.getenv("PATH") } }))
  local out = p:communicate(nil, M.T) or ""
  local body, code = out:match("^(.*)\n(%d+)$")
  return tonumber(code), body
end

return M

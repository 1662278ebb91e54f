-- Helpers shared by the specs: running the `acoro` CLI as a child process with a hard
-- time limit, temporary script files, and time bounds. Plain LuaJIT only (io.popen,
-- os.tmpname): no rocks beyond busted/luassert are needed.

local support = {}

-- Repository root: this file lives in <root>/spec/support.lua.
local function repo_root()
  local src = debug.getinfo(1, "S").source:gsub("^@", "")
  local dir = src:match("^(.*)/spec/[^/]*$")
  if dir == nil then dir = "." end
  if dir:sub(1, 1) ~= "/" then
    local pwd = io.popen("pwd"):read("*l")
    dir = (dir == ".") and pwd or (pwd .. "/" .. dir)
  end
  return dir
end

support.root = repo_root()

-- The CLI under test: $ACORO_BIN, else build/acoro under the repo root.
support.bin = os.getenv("ACORO_BIN") or (support.root .. "/build/acoro")

-- Quote one string for /bin/sh.
function support.shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function write_file(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

support.read_file = read_file

-- Temporary files made by write_temp, removed by cleanup().
local temps = {}

-- Writes `content` to a fresh temporary file whose name ends with `suffix` (default
-- ".lua") and returns its path.
function support.write_temp(content, suffix)
  local base = os.tmpname()
  local path = base .. (suffix or ".lua")
  temps[#temps + 1] = base
  temps[#temps + 1] = path
  write_file(path, content)
  return path
end

function support.cleanup()
  for _, p in ipairs(temps) do os.remove(p) end
  temps = {}
end

-- Runs `timeout 60 <acoro> <args_string>` from the repo root, with `stdin_string` (default
-- empty) on its standard input. `args_string` is passed to the shell as is: quote
-- arguments with support.shell_quote. Returns stdout, stderr, exit code (124 when the
-- time limit killed it).
function support.run_cli(args_string, stdin_string, limit)
  local base = os.tmpname()
  local inp, out, err = base .. ".in", base .. ".out", base .. ".err"
  write_file(inp, stdin_string or "")
  local cmd = string.format("cd %s && timeout -k 5 %d %s %s <%s >%s 2>%s; echo $?",
    support.shell_quote(support.root), limit or 60, support.shell_quote(support.bin),
    args_string or "", support.shell_quote(inp), support.shell_quote(out),
    support.shell_quote(err))
  local p = assert(io.popen(cmd, "r"))
  local status = p:read("*a")
  p:close()
  local stdout, stderr = read_file(out), read_file(err)
  for _, f in ipairs({ base, inp, out, err }) do os.remove(f) end
  return stdout, stderr, tonumber(status:match("(%d+)%s*$"))
end

-- Writes `source` to a temporary script and runs it with the CLI plus `args_string`.
function support.run_script(source, args_string, stdin_string)
  local path = support.write_temp(source)
  return support.run_cli(support.shell_quote(path) .. " " .. (args_string or ""), stdin_string)
end

-- Splits text into a list of lines (without the line ends).
function support.lines(text)
  local t = {}
  for line in text:gmatch("([^\n]*)\n") do t[#t + 1] = line end
  local tail = text:match("([^\n]+)$")
  if tail then t[#t + 1] = tail end
  return t
end

-- Asserts a generous bound on a measured duration: at least `min` (minus 1 ms of clock
-- rounding) and less than `max` (default 5 s). Never used for performance.
function support.assert_took(elapsed, min, max)
  assert(type(elapsed) == "number", "elapsed is not a number")
  max = max or 5
  if elapsed < min - 1e-3 or elapsed >= max then
    error(string.format("took %.6f s, expected within [%.3f, %.3f)", elapsed, min, max), 2)
  end
end

-- Spawns fn(ready) and returns it once it has called ready() (fn then
-- blocks, typically): the caller waits for an event, never for a sleep.
-- Call inside an acoro coroutine.
function support.spawn_blocked(fn)
  local acoro = require "acoro"
  local parent = acoro.self()
  local co = acoro.spawn(function()
    return fn(function() parent:send("ready") end)
  end)
  local got = acoro.receive(5, "timeout")
  if got ~= "ready" then error("spawn_blocked: the child did not get ready: " .. tostring(got), 2) end
  return co
end

-- The next acoro.run of this spec lets its coroutines fail on purpose with a message
-- containing `text` (any message when `text` is nil): see spec/strict_run.lua. Every
-- other coroutine that fails while acoro.run runs fails the spec.
support.expect_failures = require("strict_run").expect_failures

return support

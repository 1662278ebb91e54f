-- acoro.discoro.code: the source text a computation ships, and how a compute
-- server loads it. Client functions travel as their source (read back from
-- their file through debug.getinfo), never as bytecode; a server loads text
-- only (load(src, name, "t")), in a global environment of its own.
local M = {}

local type, tostring, error, pairs, ipairs = type, tostring, error, pairs, ipairs

-- Lines of each source file read once per process.
local file_lines = {}
local function lines_of(path)
  local t = file_lines[path]
  if t then return t end
  local f = io.open(path, "rb")
  if not f then return nil end
  t = {}
  for l in f:lines() do t[#t + 1] = l end
  f:close()
  file_lines[path] = t
  return t
end

-- The module name under which `v` is loaded, or nil.
local function module_name(v)
  if type(v) ~= "table" and type(v) ~= "function" then return nil end
  for name, m in pairs(package.loaded) do
    if m == v and type(name) == "string" then return name end
  end
  return nil
end

local function where(info)
  return ("%s:%d"):format(info.short_src, info.linedefined)
end

-- name -> the text `NAME = function(...) ... end` for a Lua function of the
-- client, with `local u = require "mod"` before it for each upvalue that
-- is a loaded module. Raises (at `level`) on anything else: a C function, an
-- upvalue that is not a module, a source that is not in a readable file.
local function function_source(fn, name, level, shipped)
  local info = debug.getinfo(fn, "S")
  if info.what ~= "Lua" then
    error(("acoro.discoro: %s is not a Lua function"):format(name or tostring(fn)), level)
  end
  local lines = info.source:sub(1, 1) == "@" and lines_of(info.source:sub(2))
  if not lines or not lines[info.lastlinedefined] then
    error(("acoro.discoro: function %s (%s): its source is not in a readable file; ship it as text")
      :format(name or "?", where(info)), level)
  end
  local first = lines[info.linedefined]
  local s = first:find("function", 1, true)
  if not s then
    error(("acoro.discoro: function at %s: cannot find its source"):format(where(info)), level)
  end
  if not name then
    name = first:sub(1, s - 1):match("([%a_][%w_]*)%s*=%s*$")
      or first:sub(s):match("^function%s+[%w_%.:]-([%a_][%w_]*)%s*%(")
    if not name then
      error(("acoro.discoro: function at %s has no name to call it by: give code = {NAME = fn}")
        :format(where(info)), level)
    end
  end
  local body = { (first:sub(s):gsub("^function%s+[%w_%.:]+%s*%(", "function(")) }
  for i = info.linedefined + 1, info.lastlinedefined do body[#body + 1] = lines[i] end
  if info.lastlinedefined > info.linedefined then
    -- the text after the function's last `end` (a comma, a parenthesis) is not ours
    local last = body[#body]
    local e = 0
    for pos in last:gmatch("()end") do e = pos end
    body[#body] = last:sub(1, e + 2)
  else
    local only = body[1]
    local e = 0
    for pos in only:gmatch("()end") do e = pos end
    body[1] = only:sub(1, e + 2)
  end
  local pre = {}
  local i = 1
  while true do
    local uname, uval = debug.getupvalue(fn, i)
    if not uname then break end
    -- itself (a recursive local function), or another function shipped under
    -- the upvalue's own name, is a global of the same name on the server
    if uval ~= fn and not (type(uval) == "function" and shipped[uval] == uname) then
      local mod = module_name(uval)
      if not mod then
        error(("acoro.discoro: function %s (%s) has upvalue '%s', which is not a loaded module:"
          .. " pass it as an argument"):format(name, where(info), uname), level)
      end
      pre[#pre + 1] = ("local %s = require(%q)"):format(uname, mod)
    end
    i = i + 1
  end
  local text = ("do\n%s\n%s = %s\nend\n"):format(table.concat(pre, "\n"), name, table.concat(body, "\n"))
  local ok, err = load(text, "=" .. name, "t")
  if not ok then
    error(("acoro.discoro: function %s (%s): its source could not be extracted (%s); ship it as text")
      :format(name, where(info), err), level)
  end
  return name, text
end

local function is_bytecode(s)
  return s:byte(1) == 27
end

-- build(code) -> source text, {function -> name}. code: source text, the name
-- of a .lua file, a function, or a list (or name -> function table) of these.
-- Raises at the caller of Computation{} (level) on bytecode, an upvalue, an
-- unreadable file.
function M.build(code, level)
  level = (level or 1) + 1
  local parts, names, shipped = {}, {}, {}
  local function add(v, name)
    if type(v) == "string" then
      if is_bytecode(v) then error("acoro.discoro: code: bytecode is refused (ship Lua source)", level + 1) end
      if v:match("%.lua$") and not v:find("\n", 1, true) then
        local f, err = io.open(v, "rb")
        if not f then error("acoro.discoro: code: " .. err, level + 1) end
        local src = f:read("*a")
        f:close()
        if is_bytecode(src) then
          error("acoro.discoro: code: " .. v .. " is bytecode (refused: ship Lua source)", level + 1)
        end
        parts[#parts + 1] = src
      else
        parts[#parts + 1] = v
      end
    elseif type(v) == "function" then
      local n, text = function_source(v, name, level + 2, shipped)
      names[v] = n
      parts[#parts + 1] = text
    else
      error("acoro.discoro: code must be Lua source, a .lua file name, a function or a list of them, got "
        .. type(v), level + 1)
    end
  end
  if type(code) == "table" then
    -- the names of the functions shipped, for upvalues naming one another
    shipped = {}
    for k, v in pairs(code) do
      if type(v) == "function" then
        local info = debug.getinfo(v, "S")
        local lines = info.source:sub(1, 1) == "@" and lines_of(info.source:sub(2))
        local first = lines and lines[info.linedefined]
        shipped[v] = type(k) == "string" and k or first and (first:match("([%a_][%w_]*)%s*=%s*function")
          or first:match("function%s+[%w_%.:]-([%a_][%w_]*)%s*%("))
      end
    end
    for _, v in ipairs(code) do add(v) end
    for k, v in pairs(code) do
      if type(k) == "string" then add(v, k) end
    end
  else
    add(code)
  end
  return table.concat(parts, "\n"), names
end

-- load_env(src, name) -> env | nil, err: the computation's code run in a
-- fresh global environment (standard libraries and acoro readable in it,
-- its own globals kept apart). Text only: bytecode is refused.
function M.load_env(src, name)
  if type(src) ~= "string" or type(name) ~= "string" then return nil, "bad code" end
  if is_bytecode(src) then return nil, "bytecode is refused" end
  local env = setmetatable({}, { __index = _G })
  env._G = env
  env.acoro = require "acoro"
  local chunk, err = load(src, "=" .. name, "t", env)
  if not chunk then return nil, err end
  local ok, e = pcall(chunk)
  if not ok then return nil, tostring(e) end
  return env
end

-- check(src, name) -> true | nil, err: compiles without running.
function M.check(src, name)
  if is_bytecode(src) then return nil, "bytecode is refused" end
  local chunk, err = load(src, "=" .. name, "t")
  if not chunk then return nil, err end
  return true
end

return M

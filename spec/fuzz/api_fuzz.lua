-- spec/fuzz/api_fuzz.lua: calls every public function of the acoro module
-- and every public method of each kind of object (coroutine, channel, the
-- sync primitives, streams, servers, UDP sockets, processes, pool jobs,
-- files, rcis; with the C methods behind them) with random arguments and
-- random selves, each call under pcall; one call in 50 from a plain Lua
-- coroutine inside the fuzzer, a full collection now and then. Nothing may
-- crash or hang: spec/api_fuzz_spec.lua runs this script in a child process,
--   acoro spec/fuzz/api_fuzz.lua SEED CALLS TMPDIR   (inside the engine), or
--   luajit spec/fuzz/api_fuzz.lua SEED CALLS TMPDIR  (a fifth of the calls
--                                                    before acoro.run)
-- and wants its last line, "api_fuzz seed=S calls=N raised=R interrupted=I".
--
-- Bounded: a watchdog coroutine throws into the fuzzer when one call has
-- waited for 10 ms (a receive with no timeout, a join on a coroutine that
-- never ends, ...); a call given a timeout <= 0.01 s gets 2 s, and if it
-- needs the watchdog, the timeout was not kept: exit status 4.
-- Sandboxed: no node is started, no peer is asked; hosts are loopback or
-- invalid, ports come from the random numbers; processes run `true`, `cat`
-- or a program that does not exist; paths are inside TMPDIR; acoro.stream
-- never gets an fd that could be open (an fd of the engine's own would
-- abort the process when closed: see the docs). Each call is written to
-- TMPDIR/trace before it is made: after a crash, its tail says which call
-- it was.
local acoro = require "acoro"
local ffi = require "ffi"

local seed, ncalls, tmp = tonumber(arg[1]), tonumber(arg[2]), arg[3]
assert(seed and ncalls and tmp, "usage: acoro spec/fuzz/api_fuzz.lua SEED CALLS TMPDIR")
math.randomseed(seed)
local random = math.random

local trace = assert(io.open(tmp .. "/trace", "w"))
trace:setvbuf("line")

------------------------------------------------------------------------------
-- Random values.

local NAN, INF = 0 / 0, math.huge
local NUMS = { 0, -0.0, 1, 2, 3, -1, -2, 0.5, -0.5, 1e-9, 0.001, 0.002, 0.01, NAN, INF, -INF,
  2 ^ 31, -2 ^ 31, 2 ^ 32, 2 ^ 53, -2 ^ 53, 2 ^ 53 + 2, 2 ^ 63, -2 ^ 63, 1e308, -1e308, 5e-324,
  65535, 65536, 10, 15, 9, 255, 1024, 4096 }
local SMALL = { 0, 0.001, 0.002, -1, 1e-9, 0 }
local STRS = { "", "a", "\0", "a\0b", ("x"):rep(70000), "l", "L", "a", "*a", "*l", "r", "w", "w+",
  "r+", "rb", "a+", "set", "cur", "end", "TERM", "SIGINT", "hup", "BOGUS", "pipe", "inherit",
  "null", "%s%n%d", "name", "main", "fz", "ch", "\255\254", "x=y", "=", "127.0.0.1:1" }
local HOSTS = { "127.0.0.1", "::1", "", "\0", "256.256.256.256", "127.0.0.1\0evil", "::1%lo" }

local pool = {}   -- kind -> list of live objects of that kind
local kinds = {}  -- kind names, in a fixed order
local shun = {}   -- handles never to hand out: the fuzzer's, main's, the watchdog's

local FUNS = {
  function() end,
  function(...) return ... end,
  function() error("fuzz error") end,
  function() error({ "table error" }) end,
  function() return true end,
  function(a, b) return b, a end,
  function() return nil, nil, 3 end,
  function() acoro.yield() return 1 end,
  function() acoro.sleep(0.001) end,
  function() return acoro.receive(0.001) end,
  coroutine.yield, -- a plain yield inside an acoro coroutine: misuse, must not crash
  print, type, string.len, select,
}

local function pick(list) return list[random(#list)] end

local function any_object()
  local k = pick(kinds)
  local list = pool[k]
  if list and #list > 0 then return pick(list) end
  return nil
end

local rand_value

local function rand_table(depth)
  local r = random(10)
  if r == 1 then return {} end
  if r == 2 then
    local t = {}
    t.self = t
    return t
  end
  if r == 3 then
    local t = {}
    local c = t
    for _ = 1, 100 do c[1] = {} c = c[1] end
    return t
  end
  if r == 4 then return setmetatable({}, { __index = function() error("index trap") end }) end
  if r == 5 then return { timeout = pick(SMALL) } end
  if r == 6 then return { timeout = pick(NUMS), location = rand_value(depth + 1) } end
  if r == 7 then return { tls = { cert = tmp .. "/nope.pem", key = rand_value(depth + 1) } } end
  local t = {}
  for i = 1, random(0, 4) do t[i] = rand_value(depth + 1) end
  for _ = 1, random(0, 3) do
    local k = rand_value(depth + 1)
    if k ~= nil and k == k then t[k] = rand_value(depth + 1) end
  end
  return t
end

local MISC = {
  function() return coroutine.create(function() end) end,
  function() return io.stdout end,
  function() return newproxy(true) end,
  function() return ffi.new("int[4]") end,
  function() return ffi.cast("void *", 0) end,
  function() return ffi.cast("void *", 12345) end,
  function() return 1LL end,
  function() return -1ULL end,
  function() return acoro end,
  function() return acoro.Exit end,
}

function rand_value(depth)
  depth = depth or 0
  local r = random(100)
  if r <= 18 then return pick(NUMS) end
  if r <= 30 then return pick(SMALL) end
  if r <= 42 then return pick(STRS) end
  if r <= 48 then return nil end
  if r <= 52 then return random(2) == 1 end
  if r <= 74 then return any_object() end
  if r <= 84 then return depth < 3 and rand_table(depth) or {} end
  if r <= 92 then return pick(FUNS) end
  return pick(MISC)()
end

------------------------------------------------------------------------------
-- Objects: a pool per kind, filled at the start and with what calls return.

local kind_of_mt = {}

local function add_kind(kind, sample)
  local mt = getmetatable(sample)
  if mt == nil or kind_of_mt[mt] then return end
  kind_of_mt[mt] = kind
  pool[kind] = pool[kind] or {}
  kinds[#kinds + 1] = kind
end

-- Every coroutine and process ever kept, to end at the end (a call may
-- have made a waiting daemon a non-daemon).
local to_end = {}

local function keep(v)
  local t = type(v)
  if (t ~= "userdata" and t ~= "table") or shun[v] then return end
  local kind = kind_of_mt[getmetatable(v)]
  if not kind then return end
  if (kind == "coro" or kind == "process") and not to_end[v] then
    to_end[v] = kind
  end
  local list = pool[kind]
  for i = 1, #list do if list[i] == v then return end end
  if #list < 8 then list[#list + 1] = v else list[random(#list)] = v end
end

local function safe_host() return pick(HOSTS) end

-- A path inside tmp: a plain name from a random string, or one of a few.
local NAMES = { "f", "g", "d", "d/x", "none/y", "f.acoro-part", "link" }
local function safe_path(v)
  if type(v) == "string" and random(2) == 1 then
    local s = v:gsub("[^%w]", ""):sub(1, 20)
    if s ~= "" then return tmp .. "/" .. s end
  end
  return tmp .. "/" .. pick(NAMES)
end

local function spawn_table()
  local t = { pick({ "true", "cat", tmp .. "/no-such-program" }) }
  for i = 2, random(1, 3) do t[i] = rand_value(2) end
  local function stdio()
    local r = random(8)
    if r == 1 then return nil end
    if r == 2 then return "pipe" end
    if r == 3 then return "null" end
    if r == 4 then return false end
    if r == 5 then return pick({ -1, 2 ^ 31, 1e9, NAN, 0.5, 2 ^ 53 }) end
    if r == 6 then
      local s = pool.stream and pool.stream[1]
      return s
    end
    return rand_value(2)
  end
  t.stdin, t.stdout, t.stderr = stdio(), stdio(), random(2) == 1 and "null" or stdio()
  if t.stdout == "inherit" or t.stderr == "inherit" then t.stdout, t.stderr = "null", "null" end
  if random(4) == 1 then t.cwd = random(2) == 1 and tmp or rand_value(2) end
  if random(4) == 1 then t.env = rand_table(1) end
  return t
end

-- Sandboxes: rewrite the arguments of calls that would leave the sandbox.
local sandbox = {}
sandbox["acoro.process.spawn"] = function(a) a[1] = random(10) > 1 and spawn_table() or a[1] end
sandbox["acoro.stream"] = function(a)
  local x = a[1]
  if type(x) == "number" and x >= -1 and x < 2 ^ 31 then a[1] = -1 end
  if type(x) == "string" then a[1] = "not an fd" end
end
local function host_first(a) a[1] = safe_host() end
sandbox["acoro.tcp.connect"] = host_first
sandbox["acoro.tcp.listen"] = host_first
sandbox["acoro.udp.bind"] = host_first
sandbox["udp:sendto"] = function(a) a[2] = safe_host() end
-- Every acoro.fs function but these takes a path first (rename two):
-- each is made one inside tmp.
local FS_NO_PATH = { sha256 = true, getuid = true, is_file = true, random = true }
local function fs_sandbox(a, name)
  if FS_NO_PATH[name] then return end
  a[1] = safe_path(a[1])
  if name == "rename" then a[2] = safe_path(a[2]) end
end
sandbox["process:kill"] = function(a) -- a signal to our own children only
  if type(a[1]) == "number" and (a[1] ~= a[1] or a[1] < 0 or a[1] > 64) then a[1] = 9 end
end

-- Calls that leave the process (nodes, peers, files sent to peers) or are
-- internal hooks (a leading "_", init): not called.
local SKIP = { node = true, peer = true, discover = true, send_file = true, del_file = true,
  init = true }

------------------------------------------------------------------------------
-- The callables.

local calls = {} -- {name=, fn=, kind=}

local function add_functions(prefix, t)
  local names = {}
  for k, v in pairs(t) do
    if type(k) == "string" and type(v) == "function" and not k:find("^_") and not SKIP[k] then
      names[#names + 1] = k
    end
  end
  table.sort(names)
  for _, k in ipairs(names) do calls[#calls + 1] = { name = prefix .. k, fn = t[k] } end
end

-- The C methods behind the Lua ones ("_take", "_name", ...) are internal,
-- but a script reaches them through any object: they are called too, with
-- random arguments, except those that register a wait (the fuzzer would
-- then not park as their Lua caller does), which only get a wrong self.
local WAITS = { _read = true, _write = true, _accept = true, _recv = true, _send = true,
  _handshake = true, _wait = true, _fill = true, _seek = true, _close = true, _starttls = true }

local function add_methods(kind, methods)
  local names = {}
  for k, v in pairs(methods) do
    if type(k) == "string" and type(v) == "function"
      and (not k:find("^_") or debug.getinfo(v, "S").what == "C") then
      names[#names + 1] = k
    end
  end
  table.sort(names)
  for _, k in ipairs(names) do
    calls[#calls + 1] = { name = kind .. ":" .. k, fn = methods[k], kind = kind,
      wrong_self_only = WAITS[k] }
  end
end

------------------------------------------------------------------------------
-- The run.

local fuzzer
local call_no, in_call, done = 0, false, false
local outside = false -- calls made before acoro.run (plain luajit)
local raised, interrupted = 0, 0
local WATCHDOG = setmetatable({}, { __tostring = function() return "fuzz watchdog" end })

-- The timeout each waiting call was given, where it is: a call whose
-- timeout is a number <= 0.01 (-inf included) must return by itself; the
-- watchdog lets it run 2 s before it counts it as a timeout not kept.
local function pos(i) return function(a) return a[i] end end
local function opt(i) return function(a) return type(a[i]) == "table" and rawget(a[i], "timeout") or nil end end
local function acquire(a)
  if a[1] == false then return 0 end
  if type(a[1]) == "number" and a[2] == nil then return a[1] end
  return a[2]
end
local TIMEOUT_OF = {
  ["acoro.receive"] = pos(1), ["acoro.suspend"] = pos(1), ["acoro.receive_match"] = pos(2),
  ["acoro.sleep"] = pos(1), ["coro:join"] = pos(1), ["coro:deliver"] = pos(2),
  ["acoro.locate"] = opt(2), ["acoro.locate_channel"] = opt(2), ["acoro.tcp.connect"] = opt(3),
  ["Lock:acquire"] = acquire, ["RLock:acquire"] = acquire, ["Semaphore:acquire"] = acquire,
  ["Event:wait"] = pos(1), ["Condition:wait"] = pos(1), ["Condition:wait_for"] = pos(2),
  ["channel:deliver"] = pos(2), ["channel:subscribe"] = pos(2), ["channel:unsubscribe"] = pos(2),
  ["stream:recv"] = pos(2), ["stream:recvall"] = pos(2), ["stream:readline"] = pos(2),
  ["stream:read"] = pos(2), ["stream:send"] = pos(2), ["stream:write"] = pos(2),
  ["stream:send_msg"] = pos(2), ["stream:recv_msg"] = pos(1), ["stream:starttls"] = pos(2),
  ["server:accept"] = pos(1), ["udp:recvfrom"] = pos(1), ["udp:sendto"] = pos(4),
  ["process:wait"] = pos(1), ["process:communicate"] = pos(2), ["job:result"] = pos(1),
}
local short_call, call_started = false, 0
local not_kept = {} -- descriptions of the calls that overran their short timeout

local function describe(v)
  local t = type(v)
  if t == "string" then return ("%q"):format(#v > 20 and v:sub(1, 20) .. "..." or v) end
  if t == "number" then return tostring(v) end
  if t == "table" or t == "userdata" then
    local kind = kind_of_mt[getmetatable(v)]
    return kind and ("<" .. kind .. ">") or t
  end
  return t
end

local function one_call()
  local c = pick(calls)
  -- Outside the engine acoro.run would run it, and the victims spawned
  -- before it with it: not called there.
  while outside and c.name == "acoro.run" do c = pick(calls) end
  local a = {}
  local n = random(0, 4)
  for i = 1, n do a[i] = rand_value() end
  local self
  if c.kind then
    local list = pool[c.kind]
    if random(10) <= 8 and list and #list > 0 then self = pick(list) else self = rand_value() end
    if c.wrong_self_only and kind_of_mt[getmetatable(self)] == c.kind then self = rand_value() end
    if c.wrong_self_only and kind_of_mt[getmetatable(self)] == c.kind then self = nil end
  end
  local sb = sandbox[c.name]
  if sb then sb(a) end
  local fs_name = c.name:match("^acoro%.fs%.(.*)$")
  if fs_name then fs_sandbox(a, fs_name) end
  local nested = random(50) == 1
  local parts = {}
  for i = 1, n do parts[i] = describe(a[i]) end
  local tof = TIMEOUT_OF[c.name]
  local t = tof and tof(a)
  short_call = type(t) == "number" and t <= 0.01 and (c.kind == nil or kind_of_mt[getmetatable(self)] == c.kind)
  call_started = acoro.now()
  trace:write(call_no, nested and " nested " or " ", c.name, c.kind and ("(" .. describe(self) .. ") ") or " ",
    table.concat(parts, ", "), "\n")
  in_call = true
  local res
  if nested then
    -- One call in 50 from a plain Lua coroutine inside the fuzzer: the
    -- waits that check raise at once, the others yield to us with their
    -- wait registered for the fuzzer. We pass each yield on to the engine
    -- and the wake reason back, as a well-behaved wrapper would (a wrapper
    -- that drops the call leaves its wait and, say, a lock's waiter entry
    -- behind: documented misuse, spec/api_regressions_spec.lua has it).
    local f = c.fn
    local co = coroutine.create(function()
      if c.kind then return f(self, unpack(a, 1, n)) end
      return f(unpack(a, 1, n))
    end)
    res = { coroutine.resume(co) }
    local hops = 0
    while coroutine.status(co) == "suspended" and not outside and hops < 1000 do
      hops = hops + 1
      res = { coroutine.resume(co, coroutine.yield()) }
    end
  elseif c.kind then
    res = { pcall(c.fn, self, unpack(a, 1, n)) }
  else
    res = { pcall(c.fn, unpack(a, 1, n)) }
  end
  in_call = false
  if not res[1] then
    raised = raised + 1
    if res[2] == WATCHDOG then interrupted = interrupted + 1 end
    local ok, text = pcall(tostring, res[2])
    trace:write("  raised: ", ok and text:gsub("\n.*", ""):sub(1, 160) or "?", "\n")
  end
  for i = 2, #res do keep(res[i]) end
end

-- Fresh objects of every kind (calls close, terminate and fill them up).
local refresh_no = 0
local function refresh()
  refresh_no = refresh_no + 1
  local co = acoro.spawn(function() while true do acoro.receive() end end)
  co:set_daemon(true)
  keep(co)
  local ch = acoro.channel("ch" .. refresh_no)
  ch:subscribe(co)
  keep(ch)
  for _, k in ipairs({ "Lock", "RLock", "Event", "Semaphore", "Condition" }) do keep(acoro[k]()) end
  local srv = acoro.tcp.listen("127.0.0.1", 0)
  if srv then
    keep(srv)
    local _, port = srv:getsockname()
    keep(acoro.tcp.connect("127.0.0.1", port, { timeout = 1 }))
    keep(srv:accept(1))
  end
  keep(acoro.udp.bind("127.0.0.1", 0))
  keep(acoro.fs.open(tmp .. "/seedfile", "r+"))
  keep(acoro.fs.sha256())
end

local function setup()
  -- Coroutines: a receiver, a suspender, a sleeper (daemons, so that the
  -- run can end), and a dead one.
  local victims = {
    acoro.spawn(function() while true do acoro.receive() end end),
    acoro.spawn(function() while true do acoro.suspend() end end),
    acoro.spawn(function() acoro.sleep(1e9) end),
    acoro.spawn(function() return 1 end),
  }
  for i = 1, 3 do victims[i]:set_daemon(true) end
  acoro.yield()
  add_kind("coro", victims[1])
  for _, v in ipairs(victims) do keep(v) end

  local ch = acoro.channel("ch")
  add_kind("channel", ch)
  ch:register()
  ch:subscribe(victims[1])
  local sub = acoro.channel("sub")
  ch:subscribe(sub)
  keep(ch)
  keep(sub)

  for _, k in ipairs({ "Lock", "RLock", "Event", "Semaphore", "Condition" }) do
    local o = acoro[k]()
    add_kind(k, o)
    keep(o)
  end

  local srv = assert(acoro.tcp.listen("127.0.0.1", 0))
  add_kind("server", srv)
  keep(srv)
  local _, port = srv:getsockname()
  local c1 = assert(acoro.tcp.connect("127.0.0.1", port, { timeout = 5 }))
  local c2 = assert(srv:accept(5))
  add_kind("stream", c1)
  keep(c1)
  keep(c2)

  local u = assert(acoro.udp.bind("127.0.0.1", 0))
  add_kind("udp", u)
  keep(u)
  keep(acoro.udp.bind("127.0.0.1", 0))

  local p = assert(acoro.process.spawn({ "cat" }))
  add_kind("process", p)
  keep(p)
  keep(p.stdin)
  keep(p.stdout)
  keep(assert(acoro.process.spawn({ "true", stdin = "null" })))

  local f = assert(acoro.fs.open(tmp .. "/seedfile", "w+"))
  add_kind("file", f)
  keep(f)
  assert(f:write("line 1\nline 2\n"))
  local h = acoro.fs.sha256()
  add_kind("sha256", h)
  keep(h)

  local job = acoro.pool.submit(function() return 1 end)
  add_kind("job", job)
  keep(job)

  if not acoro.rci.locate("fz") then acoro.rci.register("fz", function(...) return ... end) end
  local r = acoro.rci.locate("fz")
  add_kind("rci", r)
  keep(r)

end

-- The callables: the module and its sub-tables, each kind's methods (a
-- coroutine's live in the handles' __index function: its upvalue Coro).
-- Called again after more kinds are known: adds theirs.
local have_methods = {}
local function build_calls()
  if #calls == 0 then
    require("acoro.internal").load_all() -- the modules acoro loads on first use
    add_functions("acoro.", acoro)
    for _, sub_name in ipairs({ "tcp", "udp", "process", "pool", "fs", "rci" }) do
      add_functions("acoro." .. sub_name .. ".", acoro[sub_name])
    end
    calls[#calls + 1] = { name = "tostring", fn = tostring }
    -- A full collection now and then: objects dropped from the pools (their
    -- waits, buffers and requests under way) meet their __gc.
    calls[#calls + 1] = { name = "collectgarbage", fn = function() collectgarbage() end }
  end
  for mt, kind in pairs(kind_of_mt) do
    if not have_methods[kind] then
      have_methods[kind] = true
      local idx = mt.__index
      if type(idx) == "function" then
        local fn = idx
        for i = 1, 20 do
          local name, v = debug.getupvalue(fn, i)
          if name == nil then break end
          if name == "Coro" then idx = v end
        end
      end
      if type(idx) == "table" then add_methods(kind, idx) end
      if mt.__call then calls[#calls + 1] = { name = kind .. ":__call", fn = mt.__call, kind = kind } end
    end
  end
  table.sort(calls, function(x, y) return x.name < y.name end)
end

local function cleanup()
  for o, kind in pairs(to_end) do
    if kind == "coro" then
      pcall(o.terminate, o)
    else
      pcall(o.kill, o, 9)
      pcall(o.close, o)
    end
  end
  for _, list in pairs(pool) do
    for _, o in ipairs(list) do
      local kind = kind_of_mt[getmetatable(o)]
      if kind == "stream" or kind == "server" or kind == "udp" or kind == "file" then
        pcall(o.close, o)
      elseif kind == "channel" then
        pcall(o.close, o)
      end
    end
  end
end

-- Outside the engine (run by plain luajit): what can be made without a
-- coroutine, for the calls made before acoro.run.
local function setup_outside()
  local victims = {
    acoro.spawn(function() while true do acoro.receive() end end),
    acoro.spawn(function() return 1 end),
  }
  victims[1]:set_daemon(true)
  add_kind("coro", victims[1])
  for _, v in ipairs(victims) do keep(v) end
  local ch = acoro.channel("outside")
  add_kind("channel", ch)
  keep(ch)
  for _, k in ipairs({ "Lock", "RLock", "Event", "Semaphore", "Condition" }) do
    local o = acoro[k]()
    add_kind(k, o)
    keep(o)
  end
  local srv = assert(acoro.tcp.listen("127.0.0.1", 0))
  add_kind("server", srv)
  keep(srv)
  local u = assert(acoro.udp.bind("127.0.0.1", 0))
  add_kind("udp", u)
  keep(u)
  local p = assert(acoro.process.spawn({ "cat" }))
  add_kind("process", p)
  add_kind("stream", p.stdin)
  keep(p)
  keep(p.stdin)
  keep(p.stdout)
  local h = acoro.fs.sha256()
  add_kind("sha256", h)
  keep(h)
  local job = acoro.pool.submit(function() return 1 end)
  add_kind("job", job)
  keep(job)
  acoro.rci.register("fz0", function(...) return ... end)
  local r = acoro.rci.locate("fz0")
  add_kind("rci", r)
  keep(r)
end

-- The calls first..last inside the engine: the fuzzer, its watchdog, and
-- the end of what they made.
local function fuzz_in_engine(first, last)
  local main_handle = acoro.self()
  shun[main_handle] = true
  done = false

  fuzzer = acoro.spawn(function()
    local ok, err = pcall(setup)
    if ok then ok, err = pcall(build_calls) end
    if not ok then
      io.stderr:write("api_fuzz: setup failed: ", tostring(err), "\n")
      os.exit(3)
    end
    for i = first, last do
      call_no = i
      one_call()
      if i % 250 == 0 then
        in_call = true
        pcall(refresh)
        in_call = false
      end
    end
    done = true
  end)
  shun[fuzzer] = true

  local watchdog = acoro.spawn(function()
    local seen = -1
    while not done do
      acoro.sleep(0.01)
      if in_call and call_no == seen and not done then
        if not short_call then
          fuzzer:throw(WATCHDOG)
        elseif acoro.now() - call_started > 2 then
          not_kept[#not_kept + 1] = ("call %d"):format(call_no)
          io.stderr:write("api_fuzz: call ", call_no, " overran its timeout (see the trace)\n")
          fuzzer:throw(WATCHDOG)
        end
      end
      seen = call_no
    end
  end)
  watchdog:set_daemon(true)
  shun[watchdog] = true

  local ok, a, b = fuzzer:join()
  if not ok then
    io.stderr:write("api_fuzz: the fuzzer failed outside a call: ", tostring(a), " ", tostring(b), "\n")
    os.exit(2)
  end
  pcall(cleanup)
end

if pcall(acoro.self) then -- under the acoro command: in the engine already
  fuzz_in_engine(1, ncalls)
else -- plain luajit: a fifth of the calls before acoro.run, every one raising or not waiting
  local ok, err = pcall(setup_outside)
  if ok then ok, err = pcall(build_calls) end
  if not ok then
    io.stderr:write("api_fuzz: setup failed: ", tostring(err), "\n")
    os.exit(3)
  end
  outside = true
  local n0 = math.floor(ncalls / 5)
  for i = 1, n0 do
    call_no = i
    one_call()
  end
  outside = false
  -- Two runs: the second meets the objects (coroutines, sockets, pending
  -- requests) the first left behind.
  acoro.run(fuzz_in_engine, n0 + 1, ncalls - n0)
  acoro.run(fuzz_in_engine, ncalls - n0 + 1, ncalls)
end
trace:close()
if #not_kept > 0 then
  io.stderr:write("api_fuzz: timeouts not kept: ", table.concat(not_kept, ", "), "\n")
  os.exit(4)
end
print(("api_fuzz seed=%d calls=%d raised=%d interrupted=%d"):format(seed, call_no, raised, interrupted))

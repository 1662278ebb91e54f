-- acoro.io: the Lua half of acoro's I/O: TCP (acoro.tcp), TLS, byte
-- streams and the standard streams. The C half (bindings/lio.c) keeps the
-- buffers and registers waits; this file turns them into calls that look
-- blocking: each loops "try; if it must wait, park; try again".
--
-- Errors (docs/design.md, "Errors"): misuse raises; an expected failure returns
-- nil, message, code (code as libuv names it, e.g. "ECONNREFUSED");
-- "timeout" (code "ETIMEDOUT") and "eof" are reasons of their own.
local bit = require "bit"
local ffi = require "ffi"
local argcheck = require "acoro.check"

local io = {}

local cio, park, check, now
local C, E -- the engine's symbols and the engine, for the FFI calls below
local acoro -- the main module, given by io.init
local K_TIMEOUT
local type, error, setmetatable, tostring = type, error, setmetatable, tostring
local band, rshift, byte, char = bit.band, bit.rshift, string.byte, string.char

-- The Lua methods of streams and servers; io.init adds them to the C
-- userdata's method tables.
local Stream, Server = {}, {}
local weak = { __mode = "k" }
local default_timeout = setmetatable({}, weak) -- stream/server -> seconds
local tls_pending = setmetatable({}, weak)     -- stream -> true until the handshake is over
local server_tls = setmetatable({}, weak)      -- server -> TLS context
local ctx_cache = setmetatable({}, weak)       -- opts.tls table -> {client=, server=}

local stream_mt, server_mt -- the C userdata's metatables

local DEFAULT_MAX_LINE = 1024 * 1024
local DEFAULT_MAX_MSG = require("acoro.limits").MSG_MAX

local check_number = argcheck.number

-- Every method checks its self first: a stream method called on a server, a
-- UDP socket or a number raises "bad self to s:recv (acoro stream
-- expected, got number)".
local bad_self, check_timeout = argcheck.bad_self, argcheck.timeout
local misuse = argcheck.misuse -- raises at the user's line

local function check_stream(s, what)
  if getmetatable(s) ~= stream_mt then bad_self(s, "s:" .. what, "acoro stream", 4) end
end

local function check_server(s, what)
  if getmetatable(s) ~= server_mt then bad_self(s, "server:" .. what, "acoro server", 4) end
end

local function check_open(obj, what)
  if not obj:is_open() then error(("acoro: %s: the %s is closed"):format(what,
    getmetatable(obj) == stream_mt and "stream" or "server"), 3) end
end

-- The hot calls of a stream (is it open, read, what is buffered, take,
-- write) go to the engine through the FFI: the JIT compiles them into the
-- caller's trace, where each classic C method (bindings/lio.c) ended the
-- trace and checked its userdata again. The stream's userdata is a box
-- whose first field is the stream (NULL once collected); callers have
-- checked its metatable (check_stream) first. Anything but the common
-- answer goes to the classic method, which raises or reports as before.
local spp = ffi.typeof("acoro_stream_t **")
local charpp = ffi.new("const char *[1]")
local ffi_string = ffi.string

local function stream_of(s)
  return ffi.cast(spp, s)[0]
end

local function stream_open(s)
  local p = stream_of(s)
  return p ~= nil and C.acoro_stream_is_open(p) ~= 0
end

local function check_stream_open(s, what)
  if not stream_open(s) then error(("acoro: %s: the stream is closed"):format(what), 3) end
end

local function buffered(s)
  return tonumber(C.acoro_reader_buffered(C.acoro_stream_reader(stream_of(s)), nil))
end

-- take(s, n): n bytes (at most what is buffered), as s:_take(n).
local function take(s, n)
  if n % 1 ~= 0 or n > 2 ^ 40 then return s:_take(n) end -- the C method's rounding
  local r = C.acoro_stream_reader(stream_of(s))
  local have = tonumber(C.acoro_reader_buffered(r, charpp))
  if n > have then n = have end
  local data = ffi_string(charpp[0], n)
  C.acoro_reader_consume(r, n)
  return data
end

-- take_line(s, max): the first line buffered, "\n" included, if it ends
-- within max bytes, else nil (nothing taken), as s:_take_line(max).
local function take_line(s, max)
  if max % 1 ~= 0 or max > 2 ^ 40 then return s:_take_line(max) end
  local r = C.acoro_stream_reader(stream_of(s))
  local have = tonumber(C.acoro_reader_buffered(r, charpp))
  local n = tonumber(C.acoro_reader_find(r, 10, 0, max < have and max or have))
  if n == 0 then return nil end
  local line = ffi_string(charpp[0], n)
  C.acoro_reader_consume(r, n)
  return line
end

-- The deadline of a call on obj whose timeout is its argument #argn (nil:
-- obj's settimeout default). acoro.check's rule: NaN raises.
local function deadline_of(obj, timeout, what, argn)
  if timeout == nil then
    timeout = default_timeout[obj]
  elseif type(timeout) ~= "number" or timeout ~= timeout then -- the name is made only to raise
    check_timeout(timeout, (getmetatable(obj) == server_mt and "server:" or "s:") .. what, argn, 4)
  end
  return timeout and now() + timeout
end

-- Seconds left before `deadline` (nil: none, -1 for the engine), never
-- below 0. Shared with the other I/O modules (udp, process, fs, pool).
local function left(deadline)
  if not deadline then return -1 end
  local l = deadline - now()
  return l > 0 and l or 0
end
io.left = left

------------------------------------------------------------------------------
-- TLS.

local function tls_context(opts, server)
  if type(opts) ~= "table" then
    error("acoro: tls options must be a table {cert=, key=, ca=, verify=, server_name=}", 3)
  end
  local cache = ctx_cache[opts]
  if not cache then
    cache = {}
    ctx_cache[opts] = cache
  end
  local which = server and "server" or "client"
  if cache[which] then return cache[which] end
  local verify = opts.verify
  if verify == nil then verify = not server or opts.ca ~= nil end
  local ctx, err, code = cio.tls_context(server, opts.cert, opts.key, opts.ca, verify)
  if not ctx then return nil, err, code end
  cache[which] = ctx
  return ctx
end

local function handshake(s, deadline)
  while true do
    local ok, err, code = s:_handshake(left(deadline))
    if ok then
      tls_pending[s] = nil
      return true
    end
    if ok == nil then return nil, err, code end
    if park() == K_TIMEOUT then return nil, "TLS handshake timed out", "ETIMEDOUT" end
  end
end

-- s:starttls(opts [, timeout]) -> true | nil, err, code. opts.server = true
-- for the accepting side.
function io.starttls(s, opts, timeout)
  check_stream(s, "starttls")
  if type(opts) ~= "table" then
    error("acoro: starttls: tls options must be a table {cert=, key=, ca=, verify=, server_name=, server=}", 3)
  end
  check("starttls")
  local deadline = deadline_of(s, timeout, "starttls", 2) -- raises before anything starts
  local ctx, err, code = tls_context(opts, opts.server)
  if not ctx then return nil, err, code end
  s:_starttls(ctx, opts.server, opts.server_name)
  tls_pending[s] = true
  return handshake(s, deadline)
end

------------------------------------------------------------------------------
-- Reading. fill waits until the buffer has `min` bytes or a `delim` byte,
-- or reading ended; false if the deadline came first, "closed" if another
-- coroutine closed the stream, or "failed", message, code if a TLS
-- handshake still going on failed (its reason is then the answer).

local function fill(s, min, delim, deadline)
  if tls_pending[s] then
    local ok, err, code = handshake(s, deadline)
    if not ok then
      if code == "ETIMEDOUT" then return false end
      if not s:is_open() then return "closed" end
      return "failed", err, code
    end
  end
  while true do
    if not stream_open(s) then return "closed" end -- by another coroutine
    local rc = C.acoro_stream_read(C.acoro_current(E), stream_of(s), min, delim, left(deadline))
    local r, err, code = rc == 1, nil, nil
    if rc < 0 then r, err, code = s:_read(min, delim, left(deadline)) end -- it says why
    if r then return true end
    if r == nil and code == "EWAITING" then misuse("acoro: read: " .. err) end
    if park() == K_TIMEOUT then return false end
  end
end

-- What reading ended with: "eof", or message, code; "timeout" if it did not.
local function why(s, filled, err, code)
  if not filled then return "timeout", "ETIMEDOUT" end
  if filled == "closed" then return "closed", "ECLOSED" end
  if filled == "failed" then return err, code end
  local r, rcode = s:_read_status()
  return r or "eof", rcode
end

function Stream:recv(max, timeout)
  check_stream(self, "recv")
  check("recv")
  check_stream_open(self, "recv")
  check_number(max, "recv", "max", 1)
  local ok, e, c = fill(self, 1, -1, deadline_of(self, timeout, "recv", 2))
  if buffered(self) > 0 then return take(self, max or 65536) end
  return nil, why(self, ok, e, c)
end

function Stream:recvall(n, timeout)
  check_stream(self, "recvall")
  check("recvall")
  check_stream_open(self, "recvall")
  if type(n) ~= "number" or n < 0 or n % 1 ~= 0 then
    error("acoro: recvall: expected a byte count, got " .. tostring(n), 2)
  end
  if n == 0 then return "" end
  local ok, e, c = fill(self, n, -1, deadline_of(self, timeout, "recvall", 2))
  local have = self:_buffered()
  if have >= n then return self:_take(n) end
  local r, code = why(self, ok, e, c)
  if have > 0 then return self:_take(have), r, code end
  return nil, r, code
end

-- The next line (its "\n" included, at most max bytes), or nil and why
-- there is none yet; then nothing is taken: the bytes buffered (an
-- unfinished line, or the start of one too long) stay for the next call.
local function next_line(s, max, deadline)
  local line = take_line(s, max) -- a line already buffered: no wait at all
  if line then return line end
  local ok, e, c = fill(s, max + 1, 10, deadline)
  line = take_line(s, max)
  if line then return line end
  if buffered(s) > max then return argcheck.line_too_long(max) end
  return nil, why(s, ok, e, c)
end

function Stream:readline(max, timeout)
  check_stream(self, "readline")
  check("readline")
  check_stream_open(self, "readline")
  check_number(max, "readline", "max", 1)
  local line, r, code = next_line(self, max or DEFAULT_MAX_LINE,
    deadline_of(self, timeout, "readline", 2))
  if line then return line end
  if code == "EMSGSIZE" then return nil, r, code end
  local have = self:_buffered() -- the partial-data rule
  if have > 0 then return self:_take(have), r, code end
  return nil, r, code
end

-- File-like reading: read(n) as recvall, read() (or "a") everything to EOF.
function Stream:read(n, timeout)
  check_stream(self, "read")
  if n == nil or n == "a" or n == "*a" then
    check("read")
    local deadline = deadline_of(self, timeout, "read", 2)
    local ok, e, c
    repeat
      ok, e, c = fill(self, self:_buffered() + 1, -1, deadline)
    until ok ~= true or self:_read_status()
    local r, code = why(self, ok, e, c)
    local data = self:_take(self:_buffered())
    if r == "eof" then return data end
    return data ~= "" and data or nil, r, code
  elseif n == "l" or n == "*l" then
    local line, r, code = self:readline(nil, timeout)
    if line and line:sub(-1) == "\n" then return line:sub(1, -2) end
    return line, r, code
  end
  return self:recvall(n, timeout)
end

-- for line in s:lines([max [, timeout]]): lines without their "\n", the
-- last one at EOF even without it. A timeout (per line), a line over max
-- or a read error raises (argcheck.lines_failed) and takes nothing: after
-- a timeout the unfinished line is still there for readline.
function Stream:lines(max, timeout)
  check_stream(self, "lines")
  check_number(max, "lines", "max", 1)
  max = max or DEFAULT_MAX_LINE
  deadline_of(self, timeout, "lines", 2) -- a bad timeout raises here, not in the loop
  return function()
    check("lines")
    check_stream_open(self, "lines")
    local line, r, code = next_line(self, max, deadline_of(self, timeout, "lines", 2))
    if not line and r == "eof" then
      if self:_buffered() == 0 then return nil end
      line = self:_take(self:_buffered())
    end
    if not line then argcheck.lines_failed("s:lines", r, code) end
    if line:byte(-1) == 10 then return line:sub(1, -2) end
    return line
  end
end

------------------------------------------------------------------------------
-- Writing.

function Stream:send(data, timeout)
  check_stream(self, "send")
  check("send")
  check_stream_open(self, "send")
  if type(data) ~= "string" then
    if type(data) ~= "number" then
      error("acoro: send: expected a string, got " .. type(data), 2)
    end
    data = tostring(data)
  end
  local deadline = deadline_of(self, timeout, "send", 2)
  if tls_pending[self] then
    local ok, err, code = handshake(self, deadline)
    if not ok then return nil, err, code end
  end
  local rc = C.acoro_stream_write(C.acoro_current(E), stream_of(self), data, #data, left(deadline))
  local r, err, code = rc == 1, nil, nil
  if rc < 0 then -- failed, or misuse: the C method says which (nothing is written)
    r, err, code = self:_write(data, left(deadline))
  end
  while true do
    if r then return #data end
    if r == nil then
      if code == "EWAITING" then misuse("acoro: send: " .. err) end
      return nil, err, code
    end
    local reason = park()
    r, err, code = self:_write_status()
    if r == false then
      if reason == K_TIMEOUT then return nil, "timeout", "ETIMEDOUT" end
      r, err, code = self:_write("", left(deadline)) -- woken early: wait on
    end
  end
end
Stream.write = Stream.send

local function frame_header(n)
  return char(band(rshift(n, 24), 255), band(rshift(n, 16), 255), band(rshift(n, 8), 255),
    band(n, 255))
end

-- Length-prefixed messages (4-byte big-endian length, as asyncoro).
function Stream:send_msg(data, timeout)
  check_stream(self, "send_msg")
  if type(data) ~= "string" then
    error("acoro: send_msg: expected a string, got " .. type(data), 2)
  end
  if #data > DEFAULT_MAX_MSG then
    error(("acoro: send_msg: message of %d bytes is over the %d-byte limit"):format(#data,
      DEFAULT_MAX_MSG), 2)
  end
  if #data <= 65536 then return self:send(frame_header(#data) .. data, timeout) end
  local deadline = deadline_of(self, timeout, "send_msg", 2)
  local ok, err, code = self:send(frame_header(#data), left(deadline))
  if not ok then return nil, err, code end
  return self:send(data, deadline and left(deadline))
end

-- recv_msg([timeout [, max]]) -> message | nil, reason. Nothing is taken
-- from the stream until a whole frame is there, so a timeout loses nothing.
-- A frame over `max` (64 MB) closes the stream.
function Stream:recv_msg(timeout, max)
  check_stream(self, "recv_msg")
  check("recv_msg")
  check_stream_open(self, "recv_msg")
  check_number(max, "recv_msg", "max", 0)
  max = max or DEFAULT_MAX_MSG
  local deadline = deadline_of(self, timeout, "recv_msg", 1)
  local ok, e, ecode = fill(self, 4, -1, deadline)
  if self:_buffered() < 4 then
    local r, code = why(self, ok, e, ecode)
    if r == "eof" and self:_buffered() > 0 then r = "eof in the middle of a frame" end
    return nil, r, code
  end
  local a, b, c, d = byte(self:_peek(4), 1, 4)
  local n = ((a * 256 + b) * 256 + c) * 256 + d
  if n > max then
    self:close()
    return nil, ("frame of %d bytes is over the %d-byte limit"):format(n, max), "EMSGSIZE"
  end
  ok, e, ecode = fill(self, 4 + n, -1, deadline)
  if self:_buffered() < 4 + n then
    local r, code = why(self, ok, e, ecode)
    if r == "eof" then r = "eof in the middle of a frame" end
    return nil, r, code
  end
  self:_take(4)
  return self:_take(n)
end

------------------------------------------------------------------------------
-- The rest of a stream's methods.

function Stream:settimeout(t)
  check_stream(self, "settimeout")
  if t ~= nil then check_timeout(t, "s:settimeout", 1) end
  default_timeout[self] = t
end

function Stream:shutdown()
  check_stream(self, "shutdown")
  return self:_shutdown()
end

function Stream:getpeername()
  check_stream(self, "getpeername")
  return self:_name(true)
end

function Stream:getsockname()
  check_stream(self, "getsockname")
  return self:_name(false)
end

function Stream:setnodelay(on)
  check_stream(self, "setnodelay")
  return self:_nodelay(on ~= false)
end

function Stream:starttls(opts, timeout)
  return io.starttls(self, opts, timeout)
end

------------------------------------------------------------------------------
-- TCP.

local tcp = {}

local function check_host_port(host, port, what)
  if type(host) ~= "string" then
    error(("acoro: %s: expected a host name or address, got %s"):format(what, type(host)), 3)
  end
  if type(port) ~= "number" or port < 0 or port > 65535 or port % 1 ~= 0 then
    error(("acoro: %s: expected a port number (0-65535), got %s"):format(what, tostring(port)), 3)
  end
end
io.check_host_port = check_host_port

-- acoro.tcp.connect(host, port [, opts]) -> stream | nil, err, code.
-- opts: timeout (seconds, for resolution, connect and handshake),
-- nodelay, tls = {cert=, key=, ca=, verify=, server_name=}.
function tcp.connect(host, port, opts)
  check_host_port(host, port, "tcp.connect")
  if opts ~= nil and type(opts) ~= "table" then
    error("acoro: tcp.connect: opts must be a table", 2)
  end
  opts = opts or {}
  if opts.timeout ~= nil then check_timeout(opts.timeout, "acoro.tcp.connect", 3, 3, "opts.timeout") end
  check("tcp.connect")
  local ctx, err, code
  if opts.tls then
    ctx, err, code = tls_context(opts.tls, false)
    if not ctx then return nil, err, code end
  end
  local deadline = opts.timeout and now() + opts.timeout
  local c
  c, err, code = cio.tcp_connect(host, port)
  if not c then return nil, err .. " (" .. host .. ":" .. port .. ")", code end
  while not c:_wait(left(deadline)) do
    if park() == K_TIMEOUT then
      c:_free()
      return nil, "timeout", "ETIMEDOUT"
    end
  end
  local s
  s, err, code = c:_result()
  c:_free()
  if not s then return nil, err .. " (" .. host .. ":" .. port .. ")", code end -- the target named
  if opts.nodelay then s:_nodelay(true) end
  if ctx then
    s:_starttls(ctx, false, opts.tls.server_name or host)
    tls_pending[s] = true
    local ok
    ok, err, code = handshake(s, deadline)
    if not ok then
      s:close()
      return nil, err, code
    end
  end
  return s
end

-- acoro.tcp.listen(host, port [, opts]) -> server | nil, err, code.
-- opts: backlog, tls = {cert=, key=, ca=, verify=} (the server side).
function tcp.listen(host, port, opts)
  if host == nil then host = "0.0.0.0" end
  check_host_port(host, port, "tcp.listen")
  if opts ~= nil and type(opts) ~= "table" then
    error("acoro: tcp.listen: opts must be a table", 2)
  end
  opts = opts or {}
  local ctx, err, code
  if opts.tls then
    ctx, err, code = tls_context(opts.tls, true)
    if not ctx then return nil, err, code end
  end
  local srv
  srv, err, code = cio.tcp_listen(host, port, opts.backlog)
  if not srv then return nil, err, code end
  server_tls[srv] = ctx
  return srv
end

-- server:accept([timeout]) -> stream | nil, err, code. On a TLS server the
-- handshake goes on in the background: the stream's first recv or send
-- waits for it (and fails with its reason), so one slow or bad client never
-- holds up the accept loop.
function Server:accept(timeout)
  check_server(self, "accept")
  check("accept")
  check_open(self, "accept")
  local deadline = deadline_of(self, timeout, "accept", 1)
  while true do
    local s, err, code = self:_accept(left(deadline))
    if code == "EWAITING" then misuse("acoro: accept: " .. err) end
    if s then
      local ctx = server_tls[self]
      if ctx then
        s:_starttls(ctx, true)
        tls_pending[s] = true
      end
      return s
    end
    if s == nil then return nil, err, code end
    if park() == K_TIMEOUT then return nil, "timeout", "ETIMEDOUT" end
    if not self:is_open() then return nil, "closed", "ECLOSED" end
  end
end

function Server:getsockname()
  check_server(self, "getsockname")
  return self:_name()
end

function Server:settimeout(t)
  check_server(self, "settimeout")
  if t ~= nil then check_timeout(t, "server:settimeout", 1) end
  default_timeout[self] = t
end

------------------------------------------------------------------------------
-- Standard streams and fds as streams.

-- A regular file standing in for a standard stream (`acoro x.lua < file`)
-- is an acoro.fs file on that fd (read and written at the fd's own offset,
-- on the thread pool): the same methods (readline, recv, read, lines,
-- send, write), and the fd stays open when it is closed.
local function std_stream(fd)
  local s, err, code = cio.open_fd(fd)
  if s then return s end
  if code == "EINVAL" then
    local _ = acoro.fs -- loads and starts acoro.fs
    return require("acoro.internal").fs_from_fd(fd)
  end
  error("acoro: cannot open fd " .. fd .. " as a stream: " .. tostring(err), 3)
end

-- acoro.stream(fd | stream) -> stream: a terminal, pipe or socket fd as an
-- acoro stream (the same methods as a TCP connection).
function io.stream(x)
  if getmetatable(x) == stream_mt then return x end
  -- (an fd past int's range would be cut down to another one in C: 2^32 is 0)
  if type(x) ~= "number" or x < 0 or x >= 2 ^ 31 or x % 1 ~= 0 then
    error("acoro.stream: expected an fd number or a stream, got " .. tostring(x), 2)
  end
  return cio.open_fd(x)
end

function io.init(m, c)
  cio = c
  local I = require "acoro.internal"
  acoro = m
  park, check, now, K_TIMEOUT = I.io_park, I.io_check, m.now, I.TIMEOUT
  C, E = I.C, I.E
  stream_mt, server_mt = c.metatables.stream, c.metatables.server
  for k, f in pairs(Stream) do stream_mt.__index[k] = f end
  for k, f in pairs(Server) do c.metatables.server.__index[k] = f end
  m.tcp = tcp
  m.stream = io.stream
  return std_stream -- acoro.stdin / stdout / stderr: init.lua makes them on first use
end

return io

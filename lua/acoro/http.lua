-- acoro.http: a small HTTP/1.1 server on acoro's TCP and TLS streams, one
-- coroutine per connection. Requests are parsed in C by Node's http_parser
-- (bindings/lhttp.c), which also enforces the header and body limits as bytes
-- arrive; this file routes, times out slow clients and writes answers.
--
--   local http = require "acoro.http"
--   local srv = assert(http.server{port = 8080})
--   srv:route("GET", "/hello", function(req, res) res:send("hi\n") end)
--   srv:serve()       -- or srv:start(): the accept loop in its own coroutine
--
-- The contract is in docs/http.md.
local ffi = require "ffi"
local acoro = require "acoro"
local core = require "acoro.core"
local log = require "acoro.log"
local new_table = require "table.new"

local type, error, tostring, pairs, setmetatable, pcall, tonumber = type, error, tostring,
  pairs, setmetatable, pcall, tonumber
local concat, now, ffi_string = table.concat, acoro.now, ffi.string
local parse_query = core.http.query

-- The parser (bindings/lhttp.c, which says what each call does): through
-- the FFI, so that the JIT compiles a request's way from the bytes to req.
-- This declaration mirrors lhttp.c's.
ffi.cdef [[
typedef struct acoro_http acoro_http_t;
typedef struct { size_t name, name_len, value, value_len; } acoro_http_span_t;
typedef struct {
  size_t consumed;
  const char *url, *path, *query, *hdrs, *body, *why;
  size_t url_len, path_len, query_len, body_len, nspans;
  const acoro_http_span_t *spans;
  int method, minor, keep_alive, status;
} acoro_http_out_t;
acoro_http_t *acoro_http_new(size_t max_header, size_t max_body);
void acoro_http_free(acoro_http_t *h);
int acoro_http_execute(acoro_http_t *h, const char *data, size_t len, acoro_http_out_t *out);
const char *acoro_http_method(int method);
]]
local C
do -- global in the acoro executable, else in the library acoro.core loaded
  local ok = pcall(function() return ffi.C.acoro_http_execute end)
  C = ok and ffi.C or ffi.load(assert(core.path(), "acoro: cannot locate acoro.core"))
end
local out_t = ffi.typeof("acoro_http_out_t")
local CONTINUE, DONE, NOMEM = 1, 2, 4 -- lhttp.c's ACORO_HTTP_*: 0 more, 3 error
local METHODS = setmetatable({}, { __index = function(t, code)
  local name = ffi_string(C.acoro_http_method(code))
  t[code] = name
  return name
end })

local http = {}

local REASONS = {
  [100] = "Continue", [200] = "OK", [201] = "Created", [202] = "Accepted",
  [204] = "No Content", [301] = "Moved Permanently", [302] = "Found",
  [303] = "See Other", [304] = "Not Modified", [307] = "Temporary Redirect",
  [308] = "Permanent Redirect", [400] = "Bad Request", [401] = "Unauthorized",
  [403] = "Forbidden", [404] = "Not Found", [405] = "Method Not Allowed",
  [408] = "Request Timeout", [409] = "Conflict", [413] = "Content Too Large",
  [415] = "Unsupported Media Type", [429] = "Too Many Requests",
  [431] = "Request Header Fields Too Large", [500] = "Internal Server Error",
  [501] = "Not Implemented", [503] = "Service Unavailable",
}
http.REASONS = REASONS

local DEFAULTS = {
  host = "127.0.0.1", port = 0, max_header = 8192, max_body = 1024 * 1024,
  timeout = 30, max_conns = 4096, backlog = 1024, max_per_source = 0,
}

local function misuse(msg, level)
  error("acoro.http: " .. msg, (level or 2) + 1)
end

-- A header name or value with CR or LF would let a value split the answer.
local function check_header(k, v)
  if type(k) ~= "string" or k == "" or k:find("[%c: ]") then
    misuse("bad header name " .. tostring(k), 3)
  end
  v = tostring(v)
  if v:find("[\r\n%z]") then misuse("header " .. k .. ": value holds CR, LF or NUL", 3) end
  return v
end

------------------------------------------------------------------------------
-- Responses. A handler fills res (status, headers, body parts); the server
-- writes it when the handler returns, unless res:sse() took the stream.

local Response = {}
Response.__index = Response

function Response:set_status(code)
  if type(code) ~= "number" or code < 100 or code > 999 or code % 1 ~= 0 then
    misuse("bad status " .. tostring(code))
  end
  self.status = code
  return self
end

-- Headers live in res.headers, made on the first res:header: an answer
-- without any (the common case) is written without walking a table.
function Response:header(name, value)
  local h = self.headers
  if not h then
    h = {}
    self.headers = h
  end
  if value == nil then
    check_header(name, "")
    h[name:lower()] = nil
  else
    h[name:lower()] = check_header(name, value)
  end
  return self
end

-- The body: false, one string, or a table of parts once written twice.
function Response:write(data)
  if self._taken then misuse("res:write after res:sse()") end
  data = tostring(data)
  local b = self._body
  if not b then
    self._body = data
  elseif type(b) == "string" then
    self._body = { b, data }
  else
    b[#b + 1] = data
  end
  return self
end

function Response:send(body, status)
  if status then self:set_status(status) end
  if body ~= nil then self:write(body) end
  return self
end

local cjson -- loaded on the first res:json
function Response:json(value, status)
  cjson = cjson or require "cjson"
  self:header("content-type", "application/json")
  return self:send(cjson.encode(value), status)
end

local STATUS_LINES = setmetatable({}, { __index = function(t, code)
  local line = "HTTP/1.1 " .. code .. " " .. (REASONS[code] or "Status") .. "\r\n"
  t[code] = line
  return line
end })

local function head_of(status, headers, extra)
  local out = { STATUS_LINES[status] }
  local n = 1
  for k, v in pairs(headers) do
    out[n + 1], out[n + 2], out[n + 3], out[n + 4] = k, ": ", v, "\r\n"
    n = n + 4
  end
  out[n + 1] = extra
  return concat(out)
end

-- Server-Sent Events: the answer's head now, then one event per send.
-- The connection ends with the handler (the stream has no length).
local SSE = {}
SSE.__index = SSE

function SSE:send(event, data, id)
  local out = {}
  if id ~= nil then out[#out + 1] = "id: " .. tostring(id):gsub("[\r\n]", "") .. "\n" end
  if event ~= nil then out[#out + 1] = "event: " .. tostring(event):gsub("[\r\n]", "") .. "\n" end
  -- each line of data is a data: line; the browser joins them with "\n"
  for line in (tostring(data == nil and "" or data) .. "\n"):gmatch("([^\n]*)\r?\n") do
    out[#out + 1] = "data: " .. line .. "\n"
  end
  out[#out + 1] = "\n"
  return self._s:send(concat(out), self._timeout)
end

function SSE:comment(text)
  return self._s:send(": " .. tostring(text or ""):gsub("[\r\n]", " ") .. "\n\n", self._timeout)
end

function Response:sse()
  if self._taken then misuse("res:sse() called twice") end
  self._taken = true
  local h = self.headers or {}
  h["content-type"] = "text/event-stream"
  h["cache-control"] = h["cache-control"] or "no-cache"
  h["connection"] = "close"
  local ok, err, code = self._s:send(head_of(200, h, "\r\n"), self._timeout)
  if not ok then return nil, err, code end
  return setmetatable({ _s = self._s, _timeout = self._timeout }, SSE)
end

------------------------------------------------------------------------------
-- The server.

local Server = {}
Server.__index = Server

-- route(method, path, handler): method a name ("GET"; a GET route also
-- answers HEAD) or "*"; path exact, or ending in "*" for every path with
-- that prefix (the longest prefix wins).
function Server:route(method, path, handler)
  if type(method) ~= "string" then misuse("route: method must be a string") end
  if type(path) ~= "string" or path:sub(1, 1) ~= "/" then
    misuse("route: path must be a string starting with /")
  end
  if type(handler) ~= "function" then misuse("route: handler must be a function") end
  method = method:upper()
  if path:sub(-1) == "*" then
    local prefix = path:sub(1, -2)
    local r = self._prefix[prefix]
    if not r then
      r = {}
      self._prefix[prefix] = r
      local list = self._prefixes
      list[#list + 1] = prefix
      table.sort(list, function(a, b) return #a > #b end)
    end
    r[method] = handler
  else
    local r = self._exact[path] or {}
    self._exact[path] = r
    r[method] = handler
  end
  return self
end

local function find_route(self, path)
  local r = self._exact[path]
  if r then return r end
  for _, prefix in ipairs(self._prefixes) do
    if path:sub(1, #prefix) == prefix then return self._prefix[prefix] end
  end
end

local function allowed(r)
  local list = {}
  for m in pairs(r) do
    if m ~= "*" then list[#list + 1] = m end
  end
  if r.GET and not r.HEAD then list[#list + 1] = "HEAD" end
  table.sort(list)
  return concat(list, ", ")
end

local function plain(s, status, text, close, extra)
  local h = { ["content-type"] = "text/plain; charset=utf-8",
    ["content-length"] = #text + 1 }
  if close then h.connection = "close" end
  if extra then
    for k, v in pairs(extra) do h[k] = v end
  end
  return s:send(head_of(status, h, "\r\n") .. text .. "\n")
end

-- Writes the handler's answer; false if the connection must end.
local TEXT = "text/plain; charset=utf-8"
local function finish(s, req, res, timeout)
  local body = res._body or ""
  if type(body) == "table" then body = concat(body) end
  local h = res.headers
  local keep = req.keep_alive and not (h and h.connection == "close")
  if not h and keep and req.version == "1.1" and req.method ~= "HEAD" then
    -- one string built in one go: the hot path of a kept-alive connection
    return s:send(STATUS_LINES[res.status] .. "content-type: " .. TEXT .. "\r\ncontent-length: "
      .. #body .. "\r\n\r\n" .. body, timeout) and true
  end
  h = h or {}
  if not h["content-type"] then h["content-type"] = TEXT end
  h["content-length"] = #body
  if not keep then
    h.connection = "close"
  elseif req.version == "1.0" then
    h.connection = "keep-alive"
  end
  local head = head_of(res.status, h, "\r\n")
  if req.method == "HEAD" then body = "" end
  return s:send(head .. body, timeout) and keep
end

local function dispatch(self, s, req, res)
  local r = find_route(self, req.path)
  if not r then
    return plain(s, 404, "not found", not req.keep_alive) and req.keep_alive
  end
  local handler = r[req.method] or (req.method == "HEAD" and r.GET) or r["*"]
  if not handler then
    return plain(s, 405, "method not allowed", not req.keep_alive, { allow = allowed(r) })
      and req.keep_alive
  end
  res.status, res.headers, res._body = 200, nil, false
  local ok, err = xpcall(handler, debug.traceback, req, res)
  if not ok then
    log.error("acoro.http: ", req.method, " ", req.path, ": ", tostring(err))
    if res._taken then return false end
    return plain(s, 500, "internal server error", true) and false
  end
  if res._taken then return false end
  return finish(s, req, res, self.timeout)
end

-- The request's headers: names lower-cased by the parser; a header sent
-- twice is one value, comma-separated (RFC 9110, 5.3).
local function headers_of(out)
  local n = tonumber(out.nspans)
  local h = new_table(0, n)
  local spans, text = out.spans, out.hdrs
  for i = 0, n - 1 do
    local sp = spans[i]
    local k = ffi_string(text + sp.name, sp.name_len)
    local v = ffi_string(text + sp.value, sp.value_len)
    local old = h[k]
    h[k] = old and old .. ", " .. v or v
  end
  return h
end

-- Fills req with the request the parser just finished.
local function fill_request(req, out)
  local target = ffi_string(out.url, out.url_len)
  local path = target
  if out.path ~= out.url or out.path_len ~= out.url_len then
    path = ffi_string(out.path, out.path_len)
  end
  local qs = out.query_len == 0 and "" or ffi_string(out.query, out.query_len)
  req.method, req.target, req.path, req.query_string = METHODS[out.method], target, path, qs
  req.query = qs == "" and {} or parse_query(qs)
  req.headers = headers_of(out)
  req.body = out.body_len == 0 and "" or ffi_string(out.body, out.body_len)
  req.version = out.minor == 0 and "1.0" or "1.1"
  req.keep_alive = out.keep_alive ~= 0
end

-- One connection: requests until the client closes, errs, stays silent
-- past the timeout (per request, from its first wait: a client sending a
-- byte at a time gains nothing), or asks to close. The reads wait without
-- a timeout of their own: the server's sweeper closes a connection whose
-- request is overdue (one timer per server, not one per read). The req and
-- res tables are the connection's, filled anew for each request: two tables
-- less per request to collect (docs/http.md: they belong to the handler's
-- call).
local function serve_conn(self, s)
  local p = C.acoro_http_new(self.max_header, self.max_body)
  if p == nil then error("acoro.http: out of memory") end
  p = ffi.gc(p, C.acoro_http_free)
  local out = out_t()
  local timeout, conns = self.timeout, self._conns
  local buf = ""
  local req = { method = false, target = false, path = false, query_string = false,
    query = false, headers = false, body = false, version = false, keep_alive = false,
    remote = s }
  local res = setmetatable({ status = 200, headers = false, _s = s, _timeout = timeout,
    _body = false }, Response)
  while true do
    local deadline = now() + timeout
    conns[s] = deadline
    local state
    while true do
      if buf ~= "" then
        state = C.acoro_http_execute(p, buf, #buf, out)
        local n = tonumber(out.consumed)
        buf = n == #buf and "" or buf:sub(n + 1)
        if state >= DONE then break end
        if state == CONTINUE and not s:send("HTTP/1.1 100 Continue\r\n\r\n", timeout) then
          return
        end
      end
      if now() >= deadline then return end
      local data = s:recv(65536)
      if not data then return end -- closed (by the client, or the sweeper) or reset
      buf = data
    end
    conns[s] = false -- the handler's time is its own
    if state ~= DONE then
      if state == NOMEM then error("acoro.http: out of memory") end
      plain(s, out.status, ffi_string(out.why), true)
      return
    end
    fill_request(req, out)
    if not dispatch(self, s, req, res) then return end
  end
end

local function run_conn(self, s, source)
  self._conns[s] = false
  self.active = self.active + 1
  local ok, err = pcall(serve_conn, self, s)
  if not ok then log.error("acoro.http: connection: ", tostring(err)) end
  self._conns[s] = nil
  self.active = self.active - 1
  if source then
    local n = self._per_source[source] - 1
    self._per_source[source] = n > 0 and n or nil
  end
  s:close()
end

-- admit(s) -> true, its source (when counted) | false: one address may hold
-- at most max_per_source connections, so that a single client cannot take
-- every place of max_conns (nor the process's descriptors).
local function admit(self, s)
  if self.active >= self.max_conns then return false end
  if self.max_per_source == 0 then return true end
  local source = s:getpeername()
  if not source then return false end
  local n = self._per_source[source] or 0
  if n >= self.max_per_source then return false end
  self._per_source[source] = n + 1
  return true, source
end

-- The sweeper: closes the connections whose request is overdue, every
-- quarter of the timeout (at most every second, at least every 10 ms), so
-- a slow client is closed between timeout and timeout plus that period.
local function sweep(self)
  local conns = self._conns
  local every = math.max(0.01, math.min(1, self.timeout / 4))
  while not self._closed do
    acoro.receive(every) -- close() wakes it
    local t = now()
    for s, deadline in pairs(conns) do
      if deadline and deadline <= t then
        conns[s] = false
        s:close()
      end
    end
  end
end

-- serve(): the accept loop, in the calling coroutine, until close().
function Server:serve()
  local listener = self._listener
  if not self._sweeper then
    self._sweeper = acoro.spawn({ name = "acoro.http sweeper", daemon = true }, sweep, self)
  end
  while not self._closed do
    local s, err = listener:accept()
    if s then
      self.accepted = self.accepted + 1
      local ok, source = admit(self, s)
      if not ok then
        self.refused = self.refused + 1
        s:close()
      else
        s:setnodelay()
        acoro.spawn(run_conn, self, s, source)
      end
    elseif self._closed then
      break
    else
      log.warn("acoro.http: accept: ", tostring(err))
      acoro.sleep(0.01) -- out of descriptors: let connections end
    end
  end
end

function Server:start()
  self._acceptor = acoro.spawn(function() self:serve() end)
  return self
end

-- close(): stops accepting and closes every connection.
function Server:close()
  if self._closed then return end
  self._closed = true
  self._listener:close()
  if self._sweeper then self._sweeper:send("stop") end
  for s in pairs(self._conns) do s:close() end
end

-- http.server(opts) -> server | nil, err, code (the listen failed).
-- opts: host ("127.0.0.1"), port (0: any free port; srv.port is the bound
-- one), tls ({cert=, key=}), max_header (8192 bytes: the target, names and
-- values), max_body (1 MB), timeout (30 s per request, and idle
-- keep-alive), max_conns (4096), backlog (1024), max_per_source (0: no
-- bound; else the connections one address may hold at once).
function http.server(opts)
  if opts ~= nil and type(opts) ~= "table" then misuse("server: opts must be a table") end
  opts = opts or {}
  local self = setmetatable({ _exact = {}, _prefix = {}, _prefixes = {}, _conns = {},
    _per_source = {}, active = 0, accepted = 0, refused = 0 }, Server)
  for k, v in pairs(DEFAULTS) do
    local o = opts[k]
    if o ~= nil and k ~= "host" and (type(o) ~= "number" or o ~= o or o < 0) then
      misuse("server: opts." .. k .. " must be a non-negative number")
    end
    self[k] = o == nil and v or o
  end
  local listener, err, code = acoro.tcp.listen(self.host, self.port,
    { tls = opts.tls, backlog = self.backlog })
  if not listener then return nil, err, code end
  self._listener = listener
  local _, port = listener:getsockname()
  self.port = port
  return self
end

return http

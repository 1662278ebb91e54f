-- What someone who reaches the web monitor's port (or any acoro.http server's)
-- must not make it do: answer a page of another site rebound to 127.0.0.1,
-- terminate a job from another origin, hold every connection or event stream
-- of the process, or read a header a proxy in front would take otherwise.
-- Real sockets of 127.0.0.1, raw requests; every wait bounded, no timing
-- asserted.

local acoro = require "acoro"
local http = require "acoro.http"
local httpd = require "acoro.discoro.httpd"
local cjson = require "cjson"

local T = 20

local function fake_source()
  local src = { terminated = {} }
  function src._monitor_state()
    return { name = "fake", submitted = 1, running = 1, done = 0, failed = 0, requeued = 0, nodes = {},
      servers = { { location = "h:2", node = "h:1", jobs = { { id = 7, fn = "f", args = { n = 0 } } } } } }
  end
  function src._monitor_terminate(_, id)
    src.terminated[#src.terminated + 1] = id
    return true
  end
  return src
end

-- One request on a fresh connection: everything until the server closes.
local function raw(port, data)
  local c = assert(acoro.tcp.connect("127.0.0.1", port, { timeout = T }))
  assert(c:send(data))
  local got = c:read(nil, T) or ""
  c:close()
  return got
end

local function status_of(answer) return tonumber(answer:match("^HTTP/1%.1 (%d+)")) end

local function get(port, path, host)
  return raw(port, "GET " .. path .. " HTTP/1.1\r\n" .. (host and "Host: " .. host .. "\r\n" or "")
    .. "Connection: close\r\n\r\n")
end

-- until(cond): waits for cond() (state another coroutine changes), bounded.
local function wait_until(cond, what)
  for _ = 1, T * 100 do
    if cond() then return end
    acoro.sleep(0.01)
  end
  error("not reached: " .. what, 2)
end

local function run(fn)
  acoro.run(function()
    local src = fake_source()
    local mon = assert(httpd._new(src, { port = 0 }))
    local ok, err = pcall(fn, mon, src)
    mon:close()
    assert(ok, err)
  end)
end

describe("web monitor under attack", function()
  it("on loopback answers only a loopback Host (DNS rebinding)", function()
    run(function(mon)
      local p = mon.port
      assert.equal(403, status_of(get(p, "/api/status", "evil.example:" .. p)))
      assert.equal(403, status_of(get(p, "/", "evil.example")))
      assert.equal(403, status_of(get(p, "/api/status", "127.0.0.1.evil.example:" .. p)))
      assert.equal(403, status_of(get(p, "/api/status", "")))
      local body = get(p, "/api/status", "evil.example:" .. p)
      assert.is_nil(body:find("csrf", 1, true))
      assert.equal(200, status_of(get(p, "/api/status", "127.0.0.1:" .. p)))
      assert.equal(200, status_of(get(p, "/api/status", "LocalHost:" .. p)))
      assert.equal(200, status_of(get(p, "/api/status", "[::1]:" .. p)))
      -- no Host at all (HTTP/1.0 tools): no browser's
      assert.equal(200, status_of(raw(p, "GET /api/status HTTP/1.0\r\n\r\n")))
    end)
  end)

  it("terminate refuses a request another origin posted, even with the CSRF token", function()
    run(function(mon, src)
      local p = mon.port
      local host = "127.0.0.1:" .. p
      local st = cjson.decode(get(p, "/api/status", host):match("\r\n\r\n(.*)$"))
      local function post(origin)
        local body = '{"job": 7}'
        return raw(p, "POST /api/terminate HTTP/1.1\r\nHost: " .. host .. "\r\nConnection: close\r\n"
          .. (origin and "Origin: " .. origin .. "\r\n" or "") .. "X-CSRF-Token: " .. st.csrf
          .. "\r\nContent-Type: application/json\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body)
      end
      assert.equal(403, status_of(post("http://evil.example")))
      assert.equal(403, status_of(post("null")))
      assert.same({}, src.terminated)
      assert.equal(200, status_of(post("http://" .. host)))
      assert.equal(200, status_of(post(nil)))
      assert.same({ 7, 7 }, src.terminated)
    end)
  end)

  it("one address holds a bounded number of connections (the process keeps its descriptors)", function()
    run(function(mon)
      local p = mon.port
      local idle = {}
      -- idle connections, never a byte sent, until the server refuses more
      for i = 1, 200 do
        local c = assert(acoro.tcp.connect("127.0.0.1", p, { timeout = T }))
        idle[i] = c
        wait_until(function() return mon.server.active + (mon.server.refused or 0) == i end, "connection " .. i)
        if (mon.server.refused or 0) > 0 then break end
      end
      assert.equal(1, mon.server.refused)
      assert.is_true(mon.server.active < 200)
      -- the refused one was closed at once, without an answer
      local last = idle[#idle]
      assert.equal("", last:read(nil, T) or "")
      for _, c in ipairs(idle) do c:close() end
      wait_until(function() return mon.server.active == 0 end, "all closed")
      assert.equal(200, status_of(get(p, "/api/status", "127.0.0.1:" .. p)))
    end)
  end)

  it("holds a bounded number of event streams; past it 503", function()
    run(function(mon)
      local p = mon.port
      local streams = {}
      local refused
      for i = 1, 100 do
        local c = assert(acoro.tcp.connect("127.0.0.1", p, { timeout = T }))
        streams[i] = c
        assert(c:send("GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"))
        local line = assert(c:readline(nil, T))
        if line:match("^HTTP/1%.1 503") then
          refused = i
          break
        end
        assert.matches("^HTTP/1%.1 200", line)
      end
      assert.is_number(refused)
      assert.is_true(refused > 1 and refused < 100)
      for _, c in ipairs(streams) do c:close() end
    end)
  end)
end)

describe("acoro.http under attack", function()
  local function with_server(opts, fn)
    acoro.run(function()
      local srv = assert(http.server(opts))
      srv:route("*", "/*", function(req, res) res:send(req.method .. " " .. req.path .. "\n") end)
      srv:start()
      local ok, err = pcall(fn, srv)
      srv:close()
      assert(ok, err)
    end)
  end

  it("refuses whitespace between a header name and its colon (a smuggled request)", function()
    with_server({ port = 0 }, function(srv)
      local got = raw(srv.port, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n"
        .. "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
      assert.equal(400, status_of(got))
      assert.is_nil(got:find("smuggled", 1, true))
      assert.matches("whitespace in a header name", got)
    end)
  end)

  it("refuses Content-Length with Transfer-Encoding, and two Content-Lengths", function()
    with_server({ port = 0 }, function(srv)
      local got = raw(srv.port, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
        .. "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
      assert.equal(400, status_of(got))
      assert.is_nil(got:find("smuggled", 1, true))
      got = raw(srv.port, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 30\r\n\r\n"
        .. "abcdGET /smuggled HTTP/1.1\r\n\r\n")
      assert.equal(400, status_of(got))
      assert.is_nil(got:find("smuggled", 1, true))
    end)
  end)

  it("max_per_source closes a client's connection past its bound at once", function()
    with_server({ port = 0, max_per_source = 3 }, function(srv)
      local held = {}
      for i = 1, 3 do
        held[i] = assert(acoro.tcp.connect("127.0.0.1", srv.port, { timeout = T }))
        wait_until(function() return srv.active == i end, "connection " .. i)
      end
      assert.equal("", raw(srv.port, "GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
      assert.equal(1, srv.refused)
      held[1]:close()
      wait_until(function() return srv.active == 2 end, "one closed")
      assert.equal(200, status_of(raw(srv.port, "GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")))
      for _, c in ipairs(held) do c:close() end
    end)
  end)
end)

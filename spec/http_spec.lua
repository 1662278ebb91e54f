-- acoro.http (lua/acoro/http.lua, bindings/lhttp.c) on real sockets of 127.0.0.1,
-- driven by curl and by raw acoro TCP clients: routes, keep-alive, the clear
-- refusals (400/404/405/413/431), slow clients closed after the timeout, 1,000
-- concurrent keep-alive connections, TLS and Server-Sent Events. Every wait is
-- bounded; nothing is asserted on timings.

local ffi = require "ffi"
local acoro = require "acoro"
local http = require "acoro.http"
local cjson = require "cjson"
local net = require "net_support"
local support = require "support"

local T = 20

-- curl runs without this process's sanitizer preloads (tools/test --asan).
local function tool_env()
  local env = {}
  for _, k in ipairs({ "PATH", "HOME", "TMPDIR", "LANG" }) do env[k] = os.getenv(k) end
  return env
end

local function curl(...)
  local cmd = { "curl", "-sS", "--max-time", tostring(T), ... }
  cmd.stderr, cmd.env = "pipe", tool_env()
  local p = assert(acoro.process.spawn(cmd))
  local out, err, code = p:communicate(nil, T + 5)
  return out, err, code
end

local function server(opts, setup)
  local srv = assert(http.server(opts))
  srv:route("GET", "/hello", function(req, res)
    res:send("hello " .. tostring(req.query.name or "you") .. "\n")
  end)
  srv:route("POST", "/echo", function(req, res)
    res:json({ body = req.body, method = req.method, path = req.path, query = req.query,
      agent = req.headers["user-agent"] ~= nil, header = req.headers["x-test"] })
  end)
  srv:route("GET", "/files/*", function(req, res) res:send(req.path) end)
  srv:route("GET", "/fail", function() error("handler bug") end)
  if setup then setup(srv) end
  return srv:start()
end

local function url(srv, path) return ("http://127.0.0.1:%d%s"):format(srv.port, path) end

-- A raw client: sends data, reads until the server closes (or T).
local function raw(srv, data)
  local c = assert(acoro.tcp.connect("127.0.0.1", srv.port, { timeout = T }))
  assert(c:send(data))
  local got = c:read(nil, T) or ""
  c:close()
  return got
end

-- A raw client that reads until the server ends the connection: the bytes
-- and how reading ended (nil: the server closed; "timeout": it did not).
local function raw_to_close(srv, data)
  local c = assert(acoro.tcp.connect("127.0.0.1", srv.port, { timeout = T }))
  assert(c:send(data))
  local got, why = c:read(nil, T)
  c:close()
  return got, why
end

-- The descriptor limit of this process, raised towards `need` if the hard
-- limit lets it: the soft limit after.
pcall(ffi.cdef, "struct acoro_spec_rlimit { unsigned long cur, max; };" ..
  "int getrlimit(int, struct acoro_spec_rlimit *); int setrlimit(int, const struct acoro_spec_rlimit *);")
local RLIMIT_NOFILE = 7 -- Linux
local function raise_fd_limit(need)
  local rl = ffi.new("struct acoro_spec_rlimit")
  if ffi.C.getrlimit(RLIMIT_NOFILE, rl) ~= 0 then return 0 end
  if rl.cur < need then
    rl.cur = rl.max < need and rl.max or need
    ffi.C.setrlimit(RLIMIT_NOFILE, rl)
    ffi.C.getrlimit(RLIMIT_NOFILE, rl)
  end
  return tonumber(rl.cur)
end

describe("acoro.http", function()
  it("serves routes: query, headers, JSON bodies, prefixes, HEAD", function()
    acoro.run(function()
      local srv = server()
      assert.equal("hello a b\n", curl(url(srv, "/hello?name=a%20b")))
      local out = curl("-H", "X-Test: yes", "-d", "k=v", url(srv, "/echo?x=1&x=2&flag"))
      local j = cjson.decode(out)
      assert.same({ body = "k=v", method = "POST", path = "/echo", agent = true, header = "yes",
        query = { x = { "1", "2" }, flag = true } }, j)
      assert.equal("/files/a/b c", curl(url(srv, "/files/a/b%20c")))
      -- a header sent twice is one value; names lower-cased
      out = raw(srv, "POST /echo HTTP/1.1\r\nHost: a\r\nX-TEST: 1\r\nx-test: 2\r\n" ..
        "Content-Length: 2\r\nConnection: close\r\n\r\nhi")
      j = cjson.decode(out:match("\r\n\r\n(.*)$"))
      assert.equal("1, 2", j.header)
      assert.equal("hi", j.body)
      local head = curl("-I", url(srv, "/hello"))
      assert.matches("^HTTP/1.1 200 OK\r\n", head)
      assert.matches("content%-length: 10\r\n", head)
      srv:close()
    end)
  end)

  it("keeps a connection alive across requests", function()
    acoro.run(function()
      local kept = {}
      local srv = server(nil, function(s)
        s:route("GET", "/teapot", function(req, res)
          kept.path, kept.headers = req.path, req.headers
          res:header("X-Tea", "green")
          res:send("tea\n", 418)
        end)
      end)
      local out, err = curl("-v", url(srv, "/hello"), url(srv, "/hello?name=2"))
      assert.equal("hello you\nhello 2\n", out)
      assert.matches("Re%-using existing connection", err)
      assert.equal(1, srv.accepted)
      -- pipelined: two requests in one write, two answers in order
      local got = raw(srv, "GET /hello?name=p1 HTTP/1.1\r\nHost: a\r\n\r\n" ..
        "GET /hello?name=p2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
      assert.matches("hello p1\n.*hello p2\n$", got)
      -- the next request on the connection starts from a clean answer: no
      -- header, status or body of the one before
      got = raw(srv, "GET /teapot HTTP/1.1\r\nHost: a\r\n\r\n" ..
        "GET /hello?name=p3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
      local first, second = got:match("^(.-\r\n\r\ntea\n)(.*)$")
      assert.matches("^HTTP/1.1 418 .*x%-tea: green\r\n", first)
      assert.matches("^HTTP/1.1 200 OK\r\n", second)
      assert.not_matches("x%-tea", second)
      assert.matches("\r\n\r\nhello p3\n$", second)
      assert.equal("/teapot", kept.path) -- what the first handler kept is its own
      assert.equal("a", kept.headers.host)
      srv:close()
    end)
  end)

  it("answers 404, 405 with Allow, 400 to garbage, 500 when a handler fails", function()
    acoro.run(function()
      local srv = server()
      assert.equal("404", curl("-o", "/dev/null", "-w", "%{http_code}", url(srv, "/nope")))
      local out = curl("-i", "-X", "DELETE", url(srv, "/hello"))
      assert.matches("^HTTP/1.1 405 ", out)
      assert.matches("allow: GET, HEAD\r\n", out)
      assert.matches("^HTTP/1.1 400 Bad Request\r\n", raw(srv, "GARBAGE\r\n\r\n"))
      assert.matches("^HTTP/1.1 400 ", raw(srv, "GET / HTTP/1.1\r\nBad Header\r\n\r\n"))
      local log = require "acoro.log"
      local lines = {}
      log.set_writer(function(_, msg) lines[#lines + 1] = msg end)
      assert.equal("500", curl("-o", "/dev/null", "-w", "%{http_code}", url(srv, "/fail")))
      log.set_writer(nil)
      assert.matches("handler bug", table.concat(lines, "\n"))
      srv:close()
    end)
  end)

  it("refuses an oversize header with 431 and an oversize body with 413", function()
    acoro.run(function()
      local srv = server({ max_header = 1024, max_body = 1000 })
      local big = ("a"):rep(2000)
      assert.equal("431", curl("-o", "/dev/null", "-w", "%{http_code}", "-H", "X-Big: " .. big,
        url(srv, "/hello")))
      assert.equal("431", curl("-o", "/dev/null", "-w", "%{http_code}", url(srv, "/hello?q=" .. big)))
      assert.equal("413", curl("-o", "/dev/null", "-w", "%{http_code}", "--data-binary", big,
        url(srv, "/echo")))
      -- chunked: no length up front, refused once the body passes the limit
      assert.matches("^HTTP/1.1 413 ", raw(srv, "POST /echo HTTP/1.1\r\nHost: a\r\n" ..
        "Transfer-Encoding: chunked\r\n\r\n7d0\r\n" .. big .. "\r\n0\r\n\r\n"))
      -- the refusal is the last answer: the server then closes the connection
      -- (raw: curl hides whether it closed)
      local got, why = raw_to_close(srv, "GET /hello HTTP/1.1\r\nHost: a\r\nX-Big: " .. big ..
        "\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
      assert.is_nil(why)
      assert.matches("^HTTP/1.1 431 [^\n]*\r\n", got)
      assert.matches("\r\nconnection: close\r\n", got)
      assert.equal(1, select(2, got:gsub("HTTP/1.1 ", ""))) -- the second request unanswered
      got, why = raw_to_close(srv, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n")
      assert.is_nil(why)
      assert.matches("^HTTP/1.1 413 [^\n]*\r\n", got)
      assert.matches("\r\nconnection: close\r\n", got)
      -- after a served request on the same connection too
      got, why = raw_to_close(srv, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n" ..
        "GET /hello?q=" .. big .. " HTTP/1.1\r\nHost: a\r\n\r\n")
      assert.is_nil(why)
      assert.matches("^HTTP/1.1 200 .*\r\n\r\nhello you\nHTTP/1.1 431 ", got)
      -- at the limit: served
      local out = curl("--data-binary", ("b"):rep(1000), url(srv, "/echo"))
      assert.equal(1000, #cjson.decode(out).body)
      srv:close()
    end)
  end)

  it("closes a slow client (slowloris) after the timeout", function()
    acoro.run(function()
      local srv = server({ timeout = 0.5 })
      local c = assert(acoro.tcp.connect("127.0.0.1", srv.port, { timeout = T }))
      local request = "GET /hello HTTP/1.1\r\nHost: a\r\n" .. ("X-Slow: 1\r\n"):rep(20) .. "\r\n"
      local sent = 0
      local sender = acoro.spawn(function()
        for i = 1, #request do
          if not c:is_open() or not c:send(request:sub(i, i), T) then return end
          sent = i
          acoro.sleep(0.05) -- 0.05 s a byte: the header needs 12 s
        end
      end)
      -- the server says nothing and closes: the read ends (eof or reset)
      local data, why = c:recv(nil, T)
      assert.is_nil(data)
      assert.is_not.equal("timeout", why)
      assert.is_true(sent < #request)
      c:close()
      sender:join(T)
      -- a kept-alive connection left idle after its answer: closed too
      c = assert(acoro.tcp.connect("127.0.0.1", srv.port, { timeout = T }))
      assert(c:send("GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"))
      local got, why2 = c:read(nil, T)
      assert.is_nil(why2)
      assert.matches("^HTTP/1.1 200 .*hello you\n$", got)
      c:close()
      srv:close()
    end)
  end)

  it("serves 1,000 concurrent keep-alive connections", function()
    local N = 1000
    -- both ends live in this process: two descriptors a connection
    local limit = raise_fd_limit(2 * N + 200)
    if limit < 2 * N + 200 then
      return pending(("the descriptor limit is %d (ulimit -n): 1,000 connections need %d"):format(
        limit, 2 * N + 200))
    end
    acoro.run(function()
      local srv = server()
      local done, max_active = 0, 0
      local main, clients = acoro.self(), {}
      for i = 1, N do
        clients[i] = acoro.spawn(function()
          local c = assert(acoro.tcp.connect("127.0.0.1", srv.port, { timeout = T }))
          local ok = 0
          for r = 1, 2 do
            c:send(("GET /hello?name=%d-%d HTTP/1.1\r\nHost: a\r\n\r\n"):format(i, r))
            local status = c:readline(nil, T)
            local len
            repeat
              local line = c:readline(nil, T)
              len = len or tonumber(line and line:match("^content%-length: (%d+)"))
            until line == "\r\n" or line == nil
            local body = len and c:recvall(len, T)
            if status == "HTTP/1.1 200 OK\r\n" and body == ("hello %d-%d\n"):format(i, r) then
              ok = ok + 1
            end
          end
          done = done + 1
          if srv.active > max_active then max_active = srv.active end
          if done == N then main:send("all") end
          acoro.receive(T) -- keep the connection open until every one was served
          c:close()
          assert.equal(2, ok)
        end)
      end
      assert.equal("all", acoro.receive(T * 3))
      for i = 1, N do clients[i]:send("close") end
      assert.equal(N, srv.accepted)
      assert.equal(N, max_active)
      srv:close()
    end)
  end)

  it("serves over TLS", function()
    local certs = net.certs()
    finally(net.cleanup_certs)
    acoro.run(function()
      local srv = server({ tls = { cert = certs["server.pem"], key = certs["server.key"] } })
      local out, err = curl("--cacert", certs["ca.pem"],
        ("https://localhost:%d/hello?name=tls"):format(srv.port))
      assert.equal("hello tls\n", out, err)
      srv:close()
    end)
  end)

  it("streams Server-Sent Events to curl -N", function()
    acoro.run(function()
      local srv = server(nil, function(s)
        s:route("GET", "/events", function(_, res)
          local sse = assert(res:sse())
          for i = 1, 3 do assert(sse:send("tick", "n=" .. i .. "\nline2", i)) end
        end)
      end)
      local out = curl("-N", "-i", url(srv, "/events"))
      assert.matches("content%-type: text/event%-stream\r\n", out)
      assert.matches("id: 1\nevent: tick\ndata: n=1\ndata: line2\n\n", out, 1, true)
      assert.matches("id: 3\nevent: tick\ndata: n=3\ndata: line2\n\n", out, 1, true)
      srv:close()
    end)
  end)

  it("refuses misuse and header values that would split the answer", function()
    acoro.run(function()
      local srv = server(nil, function(s)
        s:route("GET", "/split", function(_, res) res:header("X-A", "a\r\nSet-Cookie: x=1") end)
      end)
      assert.has_error(function() srv:route("GET", "nope", function() end) end)
      assert.has_error(function() http.server({ max_body = "big" }) end)
      local log = require "acoro.log"
      log.set_writer(function() end)
      assert.equal("500", curl("-o", "/dev/null", "-w", "%{http_code}", url(srv, "/split")))
      log.set_writer(nil)
      srv:close()
    end)
  end)

  it("bench/w4h_http.lua answers Pong! on kept-alive connections", function()
    acoro.run(function()
      local p = assert(acoro.process.spawn({ support.bin, support.root .. "/bench/w4h_http.lua",
        stderr = "null" }))
      local line = p.stdout:readline(nil, T)
      local port = assert(tonumber(line and line:match("^PORT=(%d+)")), line)
      local out, err = curl("-v", ("http://127.0.0.1:%d/"):format(port),
        ("http://127.0.0.1:%d/"):format(port))
      p:kill()
      p:wait(T)
      p:close()
      assert.equal("Pong!Pong!", out)
      assert.matches("Re%-using existing connection", err)
    end)
  end)
end)

-- acoro.discoro.httpd, the web monitor's server side, with real processes on
-- 127.0.0.1: an acoro-node with 2 servers and a client that serves monitors
-- of its computation (a token one and an HTTP Basic one), driven by curl:
-- auth on every URL, the JSON totals, /metrics parsed strictly, terminating a
-- job (POST and CSRF), a job argument that is markup, two SSE clients each
-- getting every change, a node killed mid-run shown closed, acoro-node --http.
-- The pages themselves are the browser specs'; here placeholders stand in.

local acoro = require "acoro"
local cjson = require "cjson"
local support = require "support"
local net = require "net_support"
local ns = require "node_support"

local q = support.shell_quote
local NODE_BIN = support.bin:gsub("acoro$", "acoro-node")
local T = 20
local TOKEN, USER, PASSWORD = "t0k-en", "ann", "pa:ss word"

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p " .. q(d)) == 0)
  return d
end

-- Placeholder pages: the real ones are another part's; these show which
-- file was served.
local ASSETS = tmpdir()
for name, body in pairs({ ["index.html"] = "<!doctype html><title>index placeholder</title>\n",
  ["app.js"] = "// app.js placeholder\n", ["app.css"] = "/* app.css placeholder */\n" }) do
  local f = assert(io.open(ASSETS .. "/" .. name, "wb"))
  f:write(body)
  f:close()
end

local function start_node(dest, extra, env)
  local cmd = ("%s --cpus 2 --listen 127.0.0.1:0 --no-discover --secret-file %s --dest-path %s %s")
    :format(q(NODE_BIN), q(ns.secret), q(dest), extra or "")
  local c = ns.track(net.spawn(env and ("env " .. env .. " " .. cmd) or cmd))
  local loc, pid = ns.expect_all(c, { "^acoro%-node listening (127%.0%.0%.1:%d+)$", "ready %(pid (%d+)%)" })
  return c, loc, pid
end

-- The client: a computation on the node of arg[1], two monitors (token,
-- Basic; pages from arg[2]), then commands on stdin, a line each.
local CLIENT = ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
local main = acoro.self()
local status = acoro.spawn(function()
  local up = 0
  while true do
    local m = acoro.receive()
    if not acoro.is_exit(m) then
      if m.status == "ServerInitialized" then
        up = up + 1
        if up == 2 then main:send("up") end
      elseif m.status == "JobCreated" and m.fn == "hang" then
        say("created", m.job)
      elseif m.status == "NodeClosed" then
        say("node closed")
      end
    end
  end
end)
status:set_daemon()
local comp = discoro.Computation({ peers = { arg[1] }, status = status, retries = tonumber(arg[3]),
  progress = false, code = [=[
function sq(x) return x * x end
function hang(s) acoro.sleep(60) return s end
]=] })
assert(comp:schedule())
assert(acoro.receive(30) == "up")
local tok = assert(discoro.httpd(comp, { port = 0, auth = { token = "]] .. TOKEN .. [[" }, assets = arg[2],
  interval = 0.1 }))
local basic = assert(discoro.httpd(comp, { port = 0, auth = { user = "]] .. USER .. [[",
  password = "]] .. PASSWORD .. [[" }, assets = arg[2] }))
local watcher = acoro.spawn(function()
  while true do
    local m = acoro.receive()
    if acoro.is_exit(m) then say("exit", m.reason) end
  end
end)
watcher:set_daemon()
say("monitors", tok.port, basic.port)
while true do
  local line = acoro.stdin:readline()
  if not line then break end
  local cmd, a = line:match("^(%S+)%s*(.-)%s*$")
  if cmd == "batch" then
    local list = {}
    for i = 1, tonumber(a) do list[i] = i end
    local r, e = comp:run_results("sq", list)
    say("batch", #r, next(e) == nil)
  elseif cmd == "hang" then
    acoro.spawn(function() say("hang", comp:submit({ monitor = watcher }, "hang", a)) end)
  elseif cmd == "quit" then
    break
  end
end
tok:close()
basic:close()
comp:close()
say("done")
]]

-- Starts a node and the client (`retries`, default 0); returns the client, a
-- writer to its stdin, the monitors' base URLs, the node's pid.
local function start_all(retries)
  local dest = tmpdir()
  local _, loc, pid = start_node(dest)
  local fifo = net.fifo()
  local path = support.write_temp(CLIENT)
  local cli = ns.track(net.spawn(("%s --listen 127.0.0.1:0 --no-discover --secret-file %s %s %s %s %d")
    :format(q(support.bin), q(ns.secret), q(path), q(loc), q(ASSETS), retries or 0), fifo))
  local w = assert(io.open(fifo, "w")) -- opens once the child's shell opened it
  w:setvbuf("line")
  local tp, bp = cli:expect("^monitors (%d+) (%d+)$")
  return cli, w, "http://127.0.0.1:" .. tp, "http://127.0.0.1:" .. bp, pid, dest
end

-- curl runs without this process's sanitizer preloads (tools/test --asan).
local function tool_env()
  local env = {}
  for _, k in ipairs({ "PATH", "HOME", "TMPDIR", "LANG" }) do env[k] = os.getenv(k) end
  return env
end

-- curl(args...) -> body; with "-i" first, the head too.
local function curl(...)
  local cmd = { "curl", "-sS", "--max-time", tostring(T), ... }
  cmd.stderr, cmd.env = "pipe", tool_env()
  local p = assert(acoro.process.spawn(cmd))
  local out = p:communicate(nil, T + 5)
  return out
end

local function code(...)
  return curl("-o", "/dev/null", "-w", "%{http_code}", ...)
end

local BEARER = "Authorization: Bearer " .. TOKEN

local function status(base)
  local body = curl("-H", BEARER, base .. "/api/status")
  return cjson.decode(body), body
end

-- Strict Prometheus text format 0.0.4: every line a HELP or TYPE comment or
-- a sample of a family whose TYPE came first; label values escaped. Returns
-- {["name{labels}"] = value}.
local function parse_metrics(text)
  assert.equal("\n", text:sub(-1), "the text ends with a newline")
  local typed, samples, n = {}, {}, 0
  for line in text:gmatch("([^\n]*)\n") do
    n = n + 1
    local help = line:match("^# HELP ([%a_:][%w_:]*) .+$")
    local tname, kind = line:match("^# TYPE ([%a_:][%w_:]*) (%a+)$")
    if tname then
      assert.is_nil(typed[tname], "one TYPE per family: " .. line)
      assert.truthy(({ counter = 1, gauge = 1, histogram = 1, summary = 1, untyped = 1 })[kind], line)
      typed[tname] = kind
    elseif not help then
      local name, rest = line:match("^([%a_:][%w_:]*)(.*)$")
      assert.truthy(name, "not a sample: " .. line)
      assert.truthy(typed[name], "a sample before its TYPE: " .. line)
      local labels, i = {}, 1
      if rest:sub(1, 1) == "{" then
        i = 2
        while rest:sub(i, i) ~= "}" do
          local lname, after = rest:match("^([%a_][%w_]*)=\"()", i)
          assert.truthy(lname, "bad label in: " .. line)
          i = after
          local v = {}
          while true do
            local c = rest:sub(i, i)
            assert.truthy(c ~= "" and c ~= "\n", "unterminated label value: " .. line)
            if c == "\\" then
              local e = rest:sub(i + 1, i + 1)
              assert.truthy(e == "\\" or e == '"' or e == "n", "bad escape in: " .. line)
              v[#v + 1] = e == "n" and "\n" or e
              i = i + 2
            elseif c == '"' then
              i = i + 1
              break
            else
              v[#v + 1] = c
              i = i + 1
            end
          end
          labels[#labels + 1] = lname .. "=" .. table.concat(v)
          if rest:sub(i, i) == "," then i = i + 1 end
        end
        i = i + 1
      end
      local value = rest:sub(i):match("^ (%S+)$")
      assert.truthy(value, "no value in: " .. line)
      local num = tonumber(value)
      assert.truthy(num or value == "NaN" or value == "+Inf" or value == "-Inf", "bad value: " .. line)
      samples[name .. "{" .. table.concat(labels, ",") .. "}"] = num
    end
  end
  assert.truthy(n > 0)
  return samples
end

-- An SSE client (curl -N): events read one at a time, {event=, data=}.
local function sse_client(url)
  local cmd = { "curl", "-sS", "-N", "--max-time", tostring(3 * T), "-H", BEARER, url }
  cmd.stderr, cmd.env = "pipe", tool_env()
  local p = assert(acoro.process.spawn(cmd))
  local c = { p = p }
  function c.next()
    local ev = {}
    while true do
      local line = p.stdout:readline(nil, T)
      assert.truthy(line, "the event stream ended")
      line = line:gsub("\r?\n$", "")
      if line == "" then
        if ev.event then return ev end
      elseif line:sub(1, 1) ~= ":" then
        local k, v = line:match("^(%a+): ?(.*)$")
        if k == "data" then ev.data = (ev.data and ev.data .. "\n" or "") .. v else ev[k] = v end
      end
    end
  end
  -- the next status event for which ok(state) holds (the others skipped)
  function c.until_status(ok)
    for _ = 1, 1000 do
      local ev = c.next()
      if ev.event == "status" then
        local st = cjson.decode(ev.data)
        if ok(st) then return st end
      end
    end
    error("no status event matched")
  end
  function c.close()
    p:kill()
    p:wait(T)
  end
  return c
end

local function running_job(st, fn)
  for _, s in ipairs(st.servers) do
    for _, j in ipairs(s.jobs) do
      if j.fn == fn then return j, s end
    end
  end
end

describe("discoro web monitor (acoro.discoro.httpd)", function()
  after_each(ns.stop_all)

  it("answers 401 without auth on every URL, 200 with a Bearer token, the cookie of ?token=, HTTP Basic",
    function()
      local cli, w, tok, basic = start_all()
      acoro.run(function()
        local urls = { "/", "/node/127.0.0.1:1", "/server/127.0.0.1%3A2", "/static/app.js", "/static/app.css",
          "/api/status", "/metrics", "/api/terminate", "/api/events", "/nothing/here" }
        local jar = os.tmpname()
        for _, u in ipairs(urls) do
          assert.equal("401", code(tok .. u), u)
          assert.equal("401", code("-H", "Authorization: Bearer wrong", tok .. u), u)
          assert.equal("401", code("-H", "Cookie: acoro_monitor=" .. TOKEN .. "x", tok .. u), u)
          assert.equal("401", code(basic .. u), u)
          assert.equal("401", code("-u", USER .. ":wrong", basic .. u), u)
          assert.equal("401", code("-H", BEARER, basic .. u), u)
          -- the events stream stays open: its head is what counts here
          local limit = u == "/api/events" and { "--max-time", "2" } or { "--max-time", tostring(T) }
          local want = ({ ["/api/terminate"] = "405", ["/nothing/here"] = "404" })[u] or "200"
          assert.equal(want, code(limit[1], limit[2], "-H", BEARER, tok .. u), u)
          assert.equal(want, code(limit[1], limit[2], "-u", USER .. ":" .. PASSWORD, basic .. u), u)
          -- ?token= once: 302 to the URL without it, the cookie set; then the cookie is enough
          local sep = u:find("?", 1, true) and "&" or "?"
          local head = curl("-i", "-c", jar, tok .. u .. sep .. "token=" .. TOKEN .. "&x=1")
          assert.matches("^HTTP/1.1 302", head, u)
          assert.equal("/" .. u:gsub("^/", "") .. "?x=1", head:match("\r\nlocation: ([^\r]*)\r\n"), u)
          assert.equal("acoro_monitor=" .. TOKEN .. "; HttpOnly; SameSite=Strict; Path=/",
            head:match("\r\nset%-cookie: ([^\r]*)\r\n"), u)
          assert.equal(want, code(limit[1], limit[2], "-b", jar, tok .. u), u)
          assert.equal("401", code(tok .. u .. sep .. "token=wrong"), u)
        end
        os.remove(jar)
        local head = curl("-i", basic .. "/api/status")
        assert.matches('\r\nwww%-authenticate: Basic realm="acoro"\r\n', head)
        -- the pages, with their types; the page forbids what it does not load
        head = curl("-i", "-H", BEARER, tok .. "/server/127.0.0.1%3A2")
        assert.matches("\r\ncontent%-type: text/html; charset=utf%-8\r\n", head)
        assert.matches("\r\ncontent%-security%-policy: default%-src 'self';[^\r]*frame%-ancestors 'none'", head)
        assert.matches("index placeholder", head)
        head = curl("-i", "-H", BEARER, tok .. "/static/app.js")
        assert.matches("\r\ncontent%-type: text/javascript; charset=utf%-8\r\n", head)
        assert.matches("\r\ncache%-control: no%-cache\r\n", head)
        assert.matches("app.js placeholder", head)
        assert.matches("\r\ncontent%-type: text/css; charset=utf%-8\r\n", curl("-i", "-H", BEARER,
          tok .. "/static/app.css"))
        -- HEAD of the event stream: its head, no stream held open
        assert.matches("^HTTP/1.1 200 OK\r\n.*content%-type: text/event%-stream\r\n",
          curl("-I", "-H", BEARER, tok .. "/api/events"))
        -- an open redirect is not made of a target starting with //
        head = curl("-i", "--path-as-is", tok .. "//evil.example/x?token=" .. TOKEN)
        assert.equal("/evil.example/x", head:match("\r\nlocation: ([^\r]*)\r\n"))
        head = curl("-i", "--path-as-is", tok .. "/\\evil.example/x?token=" .. TOKEN)
        assert.equal("/%5Cevil.example/x", head:match("\r\nlocation: ([^\r]*)\r\n"))
      end)
      w:write("quit\n")
      cli:expect("^done$")
      w:close()
    end)

  it("totals, /metrics equal to the API, a markup argument escaped, terminate with POST and the CSRF token",
    function()
      local cli, w, tok = start_all()
      w:write("batch 50\n")
      assert.equal("50 true", cli:expect("^batch (.*)$"))
      w:write("hang <script>alert(1)</script>\n")
      local id = tonumber(cli:expect("^created (%d+)$"))
      acoro.run(function()
        local st, body = status(tok)
        assert.same({ submitted = 51, running = 1, done = 50, failed = 0, requeued = 0 }, st.jobs)
        assert.equal("computation", st.name)
        assert.equal(1, #st.nodes)
        local n = st.nodes[1]
        assert.equal("up", n.status)
        assert.equal(2, n.servers)
        assert.equal(1, n.jobs)
        assert.equal(50, n.done)
        assert.equal("number", type(n.avail.memory))
        assert.equal(2, #st.servers)
        assert.equal(50, st.servers[1].done + st.servers[2].done)
        -- the argument: text in the JSON, never markup in the answer
        local job = running_job(st, "hang")
        assert.equal(id, job.id)
        assert.equal('"<script>alert(1)</script>"', job.args)
        assert.is_nil(body:find("<", 1, true))
        assert.truthy(body:find("\\u003cscript\\u003ealert(1)\\u003c/script\\u003e", 1, true))
        assert.equal("string", type(st.csrf))
        assert.equal("number", type(st.version))
        -- /metrics: every line valid, its counts the API's
        local m = parse_metrics(curl("-H", BEARER, tok .. "/metrics"))
        for k, v in pairs(st.jobs) do assert.equal(v, m['acoro_discoro_jobs{state=' .. k .. '}'], k) end
        assert.equal(1, m["acoro_discoro_nodes{status=up}"])
        assert.equal(2, m["acoro_discoro_servers{status=up}"])
        assert.equal(n.avail.memory, m["acoro_discoro_node_memory_available_bytes{node=" .. n.location
          .. ",name=" .. n.name .. "}"])
        assert.equal(1, m["acoro_discoro_node_jobs_running{node=" .. n.location .. ",name=" .. n.name .. "}"])
        assert.equal("number", type(m["acoro_discoro_jobs_per_second{}"]))
        -- terminate: POST only, with the CSRF token
        local url = tok .. "/api/terminate"
        local data = cjson.encode({ job = id })
        assert.equal("405", code("-H", BEARER, url))
        assert.equal("401", code("-X", "POST", "-d", data, url))
        assert.equal("403", code("-H", BEARER, "-X", "POST", "-d", data, url))
        assert.equal("403", code("-H", BEARER, "-H", "X-CSRF-Token: " .. st.csrf:rep(2), "-d", data, url))
        assert.equal("400", code("-H", BEARER, "-H", "X-CSRF-Token: " .. st.csrf, "-d", "{", url))
        assert.equal("404", code("-H", BEARER, "-H", "X-CSRF-Token: " .. st.csrf, "-d", '{"job": 999}', url))
        assert.same({ ok = true }, cjson.decode(curl("-H", BEARER, "-H", "X-CSRF-Token: " .. st.csrf,
          "-H", "Content-Type: application/json", "-d", data, url)))
        assert.equal("404", code("-H", BEARER, "-H", "X-CSRF-Token: " .. st.csrf, "-d", data, url))
        st = status(tok)
        -- failed, not re-queued
        assert.same({ submitted = 51, running = 0, done = 50, failed = 1, requeued = 0 }, st.jobs)
        assert.is_nil(running_job(st, "hang"))
      end)
      -- the job's monitor got "terminated", its caller the same error
      local exit, hang = ns.expect_all(cli, { "^exit (%S+)$", "^hang (.*)$" })
      assert.equal("terminated", exit)
      assert.equal("nil terminated", hang)
      w:write("batch 5\n")
      assert.equal("5 true", cli:expect("^batch (.*)$"))
      acoro.run(function()
        local st = status(tok)
        assert.same({ submitted = 56, running = 0, done = 55, failed = 1, requeued = 0 }, st.jobs)
      end)
      w:write("quit\n")
      cli:expect("^done$")
      w:close()
    end)

  it("SSE: a snapshot with history, then two clients each get every change and the samples", function()
    local cli, w, tok = start_all()
    acoro.run(function()
      local a, b = sse_client(tok .. "/api/events"), sse_client(tok .. "/api/events")
      for _, c in ipairs({ a, b }) do
        local ev = c.next()
        assert.equal("snapshot", ev.event)
        local snap = cjson.decode(ev.data)
        assert.equal(0, snap.jobs.submitted)
        assert.equal("table", type(snap.history))
        assert.truthy(#snap.history >= 1)
        local s = snap.history[#snap.history]
        assert.same({ "cpu", "done", "rate", "t" }, (function()
          local k = {}
          for x in pairs(s) do k[#k + 1] = x end
          table.sort(k)
          return k
        end)())
      end
      w:write("hang x\n")
      local seen = {}
      for _, c in ipairs({ a, b }) do
        local st = c.until_status(function(st) return st.jobs.running == 1 end)
        seen[#seen + 1] = st.version
        assert.equal("x", (running_job(st, "hang").args:match('^"(.*)"$')))
      end
      local st = status(tok)
      local job = running_job(st, "hang")
      assert.same({ ok = true }, cjson.decode(curl("-H", BEARER, "-H", "X-CSRF-Token: " .. st.csrf, "-d",
        cjson.encode({ job = job.id }), tok .. "/api/terminate")))
      for i, c in ipairs({ a, b }) do
        local after = c.until_status(function(s) return s.jobs.failed == 1 end)
        assert.equal(0, after.jobs.running)
        assert.truthy(after.version > seen[i])
      end
      -- samples: each client gets them (one a second)
      for _, c in ipairs({ a, b }) do
        local got
        for _ = 1, 100 do
          local ev = c.next()
          if ev.event == "sample" then
            got = cjson.decode(ev.data)
            break
          end
        end
        assert.truthy(got, "no sample event")
        assert.equal(0, got.done)
        assert.equal("number", type(got.t))
        assert.equal("number", type(got.rate))
      end
      a.close()
      b.close()
    end)
    assert.equal("terminated", cli:expect("^exit (%S+)$"))
    w:write("quit\n")
    cli:expect("^done$")
    w:close()
  end)

  it("shows a node killed mid-run as closed, its servers too; its job re-queued once, then failed", function()
    local cli, w, tok, _, pid = start_all(1)
    w:write("hang y\n")
    cli:expect("^created %d+$")
    assert.equal(0, os.execute("kill -KILL " .. pid))
    local closed, hang = ns.expect_all(cli, { "^(node closed)$", "^hang (.*)$" })
    assert.equal("node closed", closed)
    assert.equal("nil unreachable", hang)
    acoro.run(function()
      local st = status(tok)
      assert.equal(1, #st.nodes)
      assert.equal("closed", st.nodes[1].status)
      assert.equal(2, #st.servers)
      for _, s in ipairs(st.servers) do assert.equal("closed", s.status) end
      assert.same({ submitted = 1, running = 0, done = 0, failed = 1, requeued = 1 }, st.jobs)
      local m = parse_metrics(curl("-H", BEARER, tok .. "/metrics"))
      assert.equal(1, m["acoro_discoro_nodes{status=closed}"])
      assert.equal(0, m["acoro_discoro_nodes{status=up}"])
      assert.equal(2, m["acoro_discoro_servers{status=closed}"])
    end)
    w:write("quit\n")
    cli:expect("^done$")
    w:close()
  end)

  it("acoro-node --http serves the node's own monitor (token from ACORO_MONITOR_TOKEN)", function()
    local dest = tmpdir()
    local cmd = ("%s --cpus 2 --listen 127.0.0.1:0 --no-discover --secret-file %s --dest-path %s --http 127.0.0.1:0")
      :format(q(NODE_BIN), q(ns.secret), q(dest))
    local node = ns.track(net.spawn("env ACORO_MONITOR_TOKEN=" .. TOKEN .. " " .. cmd))
    local url, loc = ns.expect_all(node, { "^acoro%-node monitor (http://127%.0%.0%.1:%d+/)$",
      "^acoro%-node listening (127%.0%.0%.1:%d+)$" })
    local cli = ns.start(ns.PRELUDE .. [[
local discoro = require "acoro.discoro"
local main = acoro.self()
local status = acoro.spawn(function()
  local up = 0
  while true do
    local m = acoro.receive()
    if m.status == "ServerInitialized" then
      up = up + 1
      if up == 2 then main:send("up") end
    end
  end
end)
status:set_daemon()
local comp = discoro.Computation({ peers = { arg[1] }, status = status, name = "seen-from-node",
  code = "function sq(x) return x * x end" })
assert(comp:schedule())
assert(acoro.receive(30) == "up")
say("up")
acoro.receive(60) -- until the spec stops it
comp:close()
]], nil, nil, q(loc))
    cli:expect("^up$")
    acoro.run(function()
      assert.equal("401", code(url .. "api/status"))
      local st = cjson.decode(curl("-H", BEARER, url .. "api/status"))
      assert.equal(1, #st.nodes)
      assert.equal(loc, st.nodes[1].location)
      assert.equal("up", st.nodes[1].status)
      assert.equal(2, st.nodes[1].servers)
      assert.equal(2, #st.servers)
      for _, s in ipairs(st.servers) do
        assert.equal(loc, s.node)
        assert.equal("up", s.status)
      end
      assert.equal(1, #st.computations)
      assert.equal("seen-from-node", st.computations[1].name)
      parse_metrics(curl("-H", BEARER, url .. "metrics"))
    end)
  end)

  it("in one process: label values escaped in /metrics, an empty list is a JSON list", function()
    local httpd = require "acoro.discoro.httpd"
    assert.equal(package.searchpath("acoro.discoro.httpd", package.path):gsub("%.lua$", "") .. "/", httpd.assets)
    acoro.run(function()
      local name = 'a "quoted"\\ name\nwith a newline'
      local src = { _monitor_state = function()
        return { name = "fake", submitted = 0, running = 0, done = 0, failed = 0, requeued = 0,
          nodes = { { location = "h:1", name = name, status = "up", avail = { cpu = 50 } } }, servers = {} }
      end }
      local mon = assert(httpd._new(src, { port = 0 }))
      local base = "http://127.0.0.1:" .. mon.port
      local m = parse_metrics(curl(base .. "/metrics"))
      assert.equal(50, m["acoro_discoro_node_cpu_idle_percent{node=h:1,name=" .. name .. "}"])
      local body = curl(base .. "/api/status")
      assert.truthy(body:find('"servers":[]', 1, true))
      assert.equal(name, cjson.decode(body).nodes[1].name)
      -- loopback without auth: open
      assert.equal("200", code(base .. "/api/status"))
      mon:close()
    end)
  end)

  it("serves over TLS: the ?token= cookie is Secure there", function()
    local certs = net.certs()
    finally(net.cleanup_certs)
    local httpd = require "acoro.discoro.httpd"
    acoro.run(function()
      local src = { _monitor_state = function()
        return { name = "tls", submitted = 3, running = 0, done = 3, failed = 0, requeued = 0, nodes = {},
          servers = {} }
      end }
      local mon = assert(httpd._new(src, { port = 0, auth = { token = TOKEN },
        tls = { cert = certs["server.pem"], key = certs["server.key"] } }))
      assert.matches("^https://127%.0%.0%.1:%d+/$", mon.url)
      local base = ("https://localhost:%d"):format(mon.port)
      local st = cjson.decode(curl("--cacert", certs["ca.pem"], "-H", BEARER, base .. "/api/status"))
      assert.equal("tls", st.name)
      assert.equal(3, st.jobs.done)
      assert.equal("401", code("--cacert", certs["ca.pem"], base .. "/api/status"))
      local head = curl("-i", "--cacert", certs["ca.pem"], base .. "/metrics?token=" .. TOKEN)
      assert.equal("acoro_monitor=" .. TOKEN .. "; HttpOnly; SameSite=Strict; Path=/; Secure",
        head:match("\r\nset%-cookie: ([^\r]*)\r\n"))
      mon:close()
    end)
  end)

  it("keeps Unix times when clock_gettime was declared before with another struct", function()
    -- regression: the monitor's own declaration was ignored and its call raised
    local out, err, rc = support.run_script([[
local ffi = require "ffi"
ffi.cdef "typedef struct { long a; long b; } other_ts; int clock_gettime(int clk, other_ts *ts);"
local acoro = require "acoro"
local httpd = require "acoro.discoro.httpd"
local src = { _monitor_state = function()
  return { name = "x", submitted = 0, running = 0, done = 0, failed = 0, requeued = 0, nodes = {}, servers = {} }
end }
local mon = assert(httpd._new(src, { port = 0 }))
local st = mon:refresh()
print(type(st.time), math.abs(st.time - os.time()) < 5, type(mon.history[1].t))
mon:close()
]])
    assert.equal(0, rc, err)
    assert.equal("number\ttrue\tnumber\n", out)
  end)

  it("without auth on a host that is not loopback, makes a token and logs it once", function()
    local httpd = require "acoro.discoro.httpd"
    assert.is_true(httpd._is_loopback("127.0.0.1"))
    assert.is_true(httpd._is_loopback("127.1.2.3"))
    assert.is_true(httpd._is_loopback("::1"))
    assert.is_false(httpd._is_loopback("0.0.0.0"))
    assert.is_false(httpd._is_loopback("10.0.0.1"))
    assert.is_false(httpd._is_loopback("127.0.0.1.example.com"))
    -- the decision is taken on the host's name; the listen stays on loopback here
    local real = httpd._is_loopback
    httpd._is_loopback = function() return false end
    local lines = {}
    acoro.run(function()
      acoro.log.set_writer(function(level, msg) lines[#lines + 1] = level .. " " .. msg end)
      local src = { _monitor_state = function()
        return { name = "fake", submitted = 0, running = 0, done = 0, failed = 0, requeued = 0, nodes = {},
          servers = {} }
      end }
      local ok, mon = pcall(httpd._new, src, { port = 0 })
      httpd._is_loopback = real
      assert(ok, mon)
      assert.matches("^%x+$", mon.token)
      assert.equal(32, #mon.token)
      local base = "http://127.0.0.1:" .. mon.port
      assert.equal("401", code(base .. "/api/status"))
      assert.equal("200", code("-H", "Authorization: Bearer " .. mon.token, base .. "/api/status"))
      mon:close()
      acoro.log.set_writer(nil)
    end)
    httpd._is_loopback = real
    local said = {}
    for _, l in ipairs(lines) do
      if l:find("acoro.discoro.httpd", 1, true) then said[#said + 1] = l end
    end
    assert.equal(1, #said)
    assert.matches("^warn acoro%.discoro%.httpd: serving 127%.0%.0%.1 with no auth given: open "
      .. "http://127%.0%.0%.1:%d+/%?token=%x+$", said[1])
  end)
end)

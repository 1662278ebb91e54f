-- Smoke test of the I/O benchmarks' programs (bench/ref/ref_server.c,
-- bench/w4_http.lua, bench/w5_echo.lua) with tiny counts: they start, answer
-- correctly and end. No timing is measured or asserted here (bench/run does that).

local support = require "spec.support"

local q = support.shell_quote
local build = os.getenv("ACORO_BUILD") or "build"
local ref = support.root .. "/" .. build .. "/bench_ref"
local acoro = support.bin

local function have_ref()
  local f = io.open(ref, "rb")
  if f then f:close() end
  return f ~= nil
end

-- Starts `server` (a shell command that prints "PORT=n" once listening) in
-- the background, waits for its port (at most 30 s), runs `client` (a shell
-- command in which $PORT is the port), stops the server. Returns the
-- client's stdout, its exit code and the server's stderr.
local function with_server(server, client)
  local base = os.tmpname()
  local script = table.concat({
    "cd " .. q(support.root),
    "timeout -k 5 120 " .. server .. " >" .. q(base .. ".srv") .. " 2>" .. q(base .. ".err") .. " &",
    "pid=$!",
    "i=0",
    -- waits for the event (the PORT line), bounded in count; the file may not
    -- be there yet (the background shell makes it)
    "while ! grep -qs '^PORT=' " .. q(base .. ".srv") .. " && kill -0 $pid 2>/dev/null && [ $i -lt 300 ]; do",
    "  sleep 0.1; i=$((i + 1))",
    "done",
    "PORT=$(sed -n 's/^PORT=//p' " .. q(base .. ".srv") .. ")",
    "if [ -n \"$PORT\" ]; then timeout -k 5 60 " .. client .. "; rc=$?; else rc=99; fi",
    "kill $pid 2>/dev/null; wait $pid 2>/dev/null",
    "echo \"rc=$rc\"",
  }, "\n")
  local p = assert(io.popen(script, "r"))
  local out = p:read("*a")
  p:close()
  local f = io.open(base .. ".err", "rb")
  local err = f and f:read("*a") or ""
  if f then f:close() end
  for _, s in ipairs({ base, base .. ".srv", base .. ".err" }) do os.remove(s) end
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  return out:gsub("rc=%d+%s*$", ""), rc, err
end

-- An HTTP client in acoro: sends `n` requests on one connection (keep) or
-- one (close) and prints the status line and body of each answer.
local HTTP_CLIENT = [[
local acoro = require "acoro"
local port, mode, n, tls = tonumber(arg[1]), arg[2], tonumber(arg[3]), arg[4] == "tls"
local s = assert(acoro.tcp.connect("127.0.0.1", port,
  { timeout = 20, tls = tls and { verify = false } or nil }))
local req = "GET / HTTP/1.1\r\nHost: x\r\n" ..
  (mode == "close" and "Connection: close\r\n" or "") .. "\r\n"
for _ = 1, n do assert(s:send(req)) end
if mode == "close" then
  io.write((assert(s:read(nil, 20))))
  return
end
for _ = 1, n do
  io.write(assert(s:readline(nil, 20)))
  repeat local h = assert(s:readline(nil, 20)) until h == "\r\n"
  io.write(assert(s:recvall(5, 20)), "\n")
end
s:close()
]]

local PONG_10 = "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nPong!"
local PONG_11 = "HTTP/1.1 200 OK\r\nPong!\nHTTP/1.1 200 OK\r\nPong!\nHTTP/1.1 200 OK\r\nPong!\n"

describe("bench/ref (bench_ref) and the acoro I/O benchmarks", function()
  local client

  setup(function() client = support.write_temp(HTTP_CLIENT) end)
  teardown(function() support.cleanup() end)

  it("the reference echo server answers the reference W5 client", function()
    if not have_ref() then return pending(ref .. " not built") end
    local out, rc, err = with_server(q(ref) .. " echo 0", q(ref) .. " client $PORT 3 50")
    assert.equal(0, rc, out .. err)
    assert.truthy(out:match("^W5 rts=150 secs=[%d.]+ rts_per_s=%d+\n$"), out)
  end)

  it("bench_ref w5 runs the echo server and the client in one process", function()
    if not have_ref() then return pending(ref .. " not built") end
    local p = assert(io.popen("timeout -k 5 60 " .. q(ref) .. " w5 5 20; echo rc=$?"))
    local out = p:read("*a")
    p:close()
    assert.truthy(out:match("^W5 rts=100 secs=[%d.]+ rts_per_s=%d+\nrc=0\n$"), out)
  end)

  it("w5_echo.lua runs server and clients in one process", function()
    local out, err, code = support.run_cli(q("bench/w5_echo.lua") .. " 5 20")
    assert.equal(0, code, err)
    assert.truthy(out:match("^W5 rts=100 secs=[%d.]+ rts_per_s=%d+\n$"), out)
  end)

  it("w5_echo.lua's client drives the reference server, its server the reference client", function()
    if not have_ref() then return pending(ref .. " not built") end
    local out, rc, err = with_server(q(ref) .. " echo 0",
      q(acoro) .. " bench/w5_echo.lua client $PORT 4 25")
    assert.equal(0, rc, out .. err)
    assert.truthy(out:match("^W5 rts=100 "), out)
    out, rc, err = with_server(q(acoro) .. " bench/w5_echo.lua server 0", q(ref) .. " client $PORT 4 25 100")
    assert.equal(0, rc, out .. err)
    assert.truthy(out:match("^W5 rts=100 "), out)
  end)

  for _, server in ipairs({ "ref", "acoro" }) do
    local function cmd(mode)
      if server == "ref" then return q(ref) .. (mode == "close" and " http 0" or " httpk 0") end
      return q(acoro) .. " bench/w4_http.lua " .. mode .. " 0"
    end

    it(server .. ": HTTP close answers one request with HTTP/1.0 Pong! and closes", function()
      if server == "ref" and not have_ref() then return pending(ref .. " not built") end
      local out, rc, err = with_server(cmd("close"), q(acoro) .. " " .. q(client) .. " $PORT close 1")
      assert.equal(0, rc, out .. err)
      assert.equal(PONG_10, out)
    end)

    it(server .. ": HTTP keep-alive answers each of 3 pipelined requests", function()
      if server == "ref" and not have_ref() then return pending(ref .. " not built") end
      local out, rc, err = with_server(cmd("keep"), q(acoro) .. " " .. q(client) .. " $PORT keep 3")
      assert.equal(0, rc, out .. err)
      assert.equal(PONG_11, out)
    end)
  end

  it("w4_http.lua --tls serves keep-alive over TLS", function()
    local dir = os.tmpname()
    os.remove(dir)
    local made = os.execute("mkdir " .. q(dir) .. " && openssl req -x509 -newkey rsa:2048 -nodes -days 2"
      .. " -subj /CN=localhost -keyout " .. q(dir .. "/key.pem") .. " -out " .. q(dir .. "/cert.pem")
      .. " >/dev/null 2>&1")
    if made ~= 0 and made ~= true then
      os.execute("rm -rf " .. q(dir))
      return pending("openssl could not make a certificate")
    end
    local out, rc, err = with_server(
      q(acoro) .. " bench/w4_http.lua keep --tls " .. q(dir .. "/cert.pem") .. " " .. q(dir .. "/key.pem"),
      q(acoro) .. " " .. q(client) .. " $PORT keep 3 tls")
    os.execute("rm -rf " .. q(dir))
    assert.equal(0, rc, out .. err)
    assert.equal(PONG_11, out)
  end)
end)

describe("the W6/W6s floor (bench_ref_remote)", function()
  local remote = support.root .. "/" .. build .. "/bench_ref_remote"

  it("exchanges round trips and streams frames that the server counts", function()
    local f = io.open(remote, "rb")
    if not f then
      pending("bench_ref_remote not built")
      return
    end
    f:close()
    local out, rc, err = with_server(q(remote) .. " server 0",
      q(remote) .. " ping $PORT 200 && " .. q(remote) .. " stream $PORT 5000")
    assert.equal(0, rc, err) -- the stream client fails if the server's count differs
    assert.truthy(out:match("W6 rts=200 secs=%S+ rts_per_s=%d+ median_us=%S+\n"), out)
    assert.truthy(out:match("W6s msgs=5000 secs=%S+ msgs_per_s=%d+\n"), out)
  end)
end)

describe("bench/w6_remote.lua (W6/W6s between two acoro nodes)", function()
  it("does round trips and a stream the server counts", function()
    local out, rc, err = with_server(q(acoro) .. " bench/w6_remote.lua server",
      q(acoro) .. " bench/w6_remote.lua ping $PORT 200 && " .. q(acoro)
      .. " bench/w6_remote.lua stream $PORT 5000")
    assert.equal(0, rc, err) -- the stream client fails if the server's count differs
    assert.truthy(out:match("W6 rts=200 secs=%S+ rts_per_s=%d+ median_us=%S+\n"), out)
    assert.truthy(out:match("W6s msgs=5000 secs=%S+ msgs_per_s=%d+\n"), out)
  end)
end)

describe("bench/run w6 (acoro, the floor, and Erlang where erl is installed)", function()
  it("prints the remote rows with tiny counts, and the Erlang ones or a note that skips them", function()
    local remote = support.root .. "/" .. build .. "/bench_ref_remote"
    local f = io.open(remote, "rb")
    if not f then return pending(remote .. " not built") end
    f:close()
    local w = assert(io.popen("command -v erl >/dev/null 2>&1 && command -v erlc >/dev/null 2>&1 && echo yes"))
    local has_erl = w:read("*a"):match("yes") ~= nil
    w:close()
    local p = assert(io.popen(("cd %s && ACORO=%s REF_REMOTE=%s W6_N=200 W6S_N=5000 "
      .. "timeout -k 5 120 bench/run -n 1 w6 2>&1; echo rc=$?"):format(q(support.root), q(acoro), q(remote))))
    local out = p:read("*a")
    p:close()
    assert.truthy(out:match("rc=0\n$"), out)
    assert.truthy(out:match("\nW6 ping%-pong +%S+k rt/s"), out)
    assert.truthy(out:match("\nW6s stream +%S+M msg/s"), out)
    if has_erl then
      assert.truthy(out:match("\nW6 vs Erlang +%S+k rt/s, %d+ us +%S+k rt/s, %d+ us +%S+x rate"), out)
      assert.truthy(out:match("\nW6s vs Erlang +%S+M msg/s +%S+M msg/s +%S+x rate"), out)
    else
      assert.truthy(out:match("W6 and W6s on Erlang distribution skipped: erl not installed"), out)
    end
  end)
end)

describe("bench/file_read.lua (FR) and its plain-io floor", function()
  it("both read the same file whole and in chunks, and bench/run fr prints the rows", function()
    local path = support.write_temp(string.rep("0123456789abcdef", 40000) .. "tail", ".bin")
    for _, cmd in ipairs({ q(acoro), "luajit" }) do
      local p = assert(io.popen(("cd %s && timeout -k 5 60 %s bench/%sfile_read.lua %s 2 2>&1; echo rc=$?")
        :format(q(support.root), cmd, cmd == "luajit" and "floor/" or "", q(path))))
      local out = p:read("*a")
      p:close()
      assert.truthy(out:match("^FR bytes=640004 all_secs=%S+ chunk_secs=%S+\nrc=0\n$"), out)
    end
    local p = assert(io.popen(("cd %s && ACORO=%s FR_MB=1 timeout -k 5 120 bench/run -n 1 fr 2>&1; echo rc=$?")
      :format(q(support.root), q(acoro))))
    local out = p:read("*a")
    p:close()
    assert.truthy(out:match("rc=0\n$"), out)
    assert.truthy(out:match('\nFR read%("a"%) +%S+ ms / 1 MB +%S+ ms %(plain io%) +%S+x'), out)
    assert.truthy(out:match("\nFR read%(4 MB%) +%S+ ms / 1 MB"), out)
  end)
end)

describe("bench/liveness.lua (LV) and bench/handshake_attacks.lua (HS)", function()
  it("run once each under bench/run and print their rows", function()
    local p = assert(io.popen(("cd %s && ACORO=%s BENCH_TIMEOUT=60 timeout -k 5 150 bench/run -n 1 lv hs 2>&1;"
      .. " echo rc=$?"):format(q(support.root), q(acoro))))
    local out = p:read("*a")
    p:close()
    assert.truthy(out:match("rc=0\n$"), out)
    assert.truthy(out:match("LV liveness +frozen: Exit %S+ s +offline %S+ s +killed: Exit %S+ s"), out)
    assert.truthy(out:match("\nHS handshake +refused: reflect %S+ s +relay %S+ s, guess %S+ s "
      .. "+lock%-out: peer in %S+ s, %d+/100"), out)
    assert.truthy(out:match("storm: 2000 pings in %S+ s +%-> %d+ connects"), out)
  end)
end)

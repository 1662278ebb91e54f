-- The examples in examples/, run through the CLI, checked by what they print.

local support = require "spec.support"

local function run_example(name, args)
  return support.run_cli(support.shell_quote("examples/" .. name) .. " " .. (args or ""))
end

describe("examples/tut_coros.lua", function()
  local function check_verbose(count, args)
    local out, err, code = run_example("tut_coros.lua", args)
    assert.equal(0, code, err)
    local lines = support.lines(out)
    assert.equal(count, #lines, out)
    local seen, last = {}, -1
    for _, line in ipairs(lines) do
      local i, t = line:match("^(%d+): slept (%d+%.%d+) s$")
      assert.truthy(i, "bad line: " .. line)
      i, t = tonumber(i), tonumber(t)
      assert.is_nil(seen[i], "duplicate coroutine " .. i)
      seen[i] = true
      assert.is_true(i >= 1 and i <= count)
      assert.is_true(t >= last, "sleep times not in wake-up order: " .. out)
      assert.is_true(t < 5)
      last = t
    end
  end

  it("with the default count prints 10 lines in wake-up order", function()
    check_verbose(10)
  end)

  it("with a count of 100 prints one line per coroutine", function()
    check_verbose(100, "100")
  end)

  it("with 100000 coroutines prints only a summary", function()
    local out, err, code = run_example("tut_coros.lua", "100000")
    assert.equal(0, code, err)
    assert.equal("100000 coroutines done\n", out)
  end)
end)

describe("examples/tut_client_server.lua", function()
  it("the server prints the 30 messages of 10 clients, then the program ends", function()
    local out, err, code = run_example("tut_client_server.lua")
    assert.equal(0, code, err)
    local lines = support.lines(out)
    assert.equal(30, #lines, out)
    local seen, next_seq = {}, {}
    for _, line in ipairs(lines) do
      local c, m = line:match("^server received: client (%d+), message (%d+)$")
      assert.truthy(c, "bad line: " .. line)
      c, m = tonumber(c), tonumber(m)
      assert.is_nil(seen[line], "duplicate: " .. line)
      seen[line] = true
      -- each client's messages arrive in the order it sent them
      assert.equal((next_seq[c] or 1), m, out)
      next_seq[c] = m + 1
    end
    for c = 1, 10 do assert.equal(4, next_seq[c]) end
  end)
end)

describe("examples/categories.lua", function()
  it("prints the even numbers first, then the odd ones, each in arrival order", function()
    local out, err, code = run_example("categories.lua")
    assert.equal(0, code, err)
    assert.equal(table.concat({
      "even: 2", "even: 4", "even: 10", "even: 6", "even: 8",
      "odd: 7", "odd: 9", "odd: 1", "odd: 3", "odd: 5", "",
    }, "\n"), out)
  end)
end)

describe("examples/perf.lua", function()
  local function check(n, args)
    local out, err, code = run_example("perf.lua", args)
    assert.equal(0, code, err)
    local lines = support.lines(out)
    assert.equal(3, #lines, out)
    for k, what in ipairs({ "created", "messaged", "finished" }) do
      local count, s, us = lines[k]:match("^" .. what ..
        " (%d+) coroutines in (%d+%.%d+) s %((%d+%.%d+) us each%)$")
      assert.truthy(count, "bad line: " .. lines[k])
      assert.equal(n, tonumber(count))
      assert.is_number(tonumber(s))
      assert.is_number(tonumber(us))
    end
  end

  it("runs with the default n and prints three timing lines", function()
    check(10000)
  end)

  it("takes n from its argument", function()
    check(1000, "1000")
  end)
end)

describe("examples/tut_channel.lua", function()
  local function check(count, args)
    local out, err, code = run_example("tut_channel.lua", args)
    assert.equal(0, code, err)
    local lines = support.lines(out)
    assert.equal(count + 2, #lines, out)
    local sum, prod = 0, 1
    for i = 1, count do
      local r = tonumber(lines[i]:match("^sent (%d+%.%d+)$"))
      assert.truthy(r, "bad line: " .. lines[i])
      assert.is_true(r >= 0.5 and r <= 3, lines[i])
      sum, prod = sum + r, prod * r
    end
    -- both subscribers saw every number: their results match what was sent
    -- (to the printed precision); the sum's subscriber subscribed first
    local s = tonumber(lines[count + 1]:match("^sum: (%d+%.%d+)$"))
    local p = tonumber(lines[count + 2]:match("^prod: (%d+%.%d+)$"))
    assert.truthy(s, out)
    assert.truthy(p, out)
    assert.is_true(math.abs(s - sum) < 1e-5 * count, out)
    assert.is_true(math.abs(p - prod) / prod < 1e-5 * count, out)
  end

  it("prints the 4 numbers sent, then their sum and product", function()
    check(4)
  end)

  it("takes the count from its argument", function()
    check(10, "10")
  end)
end)

describe("examples/bounded_buffer.lua", function()
  local function check(n, capacity, args)
    local out, err, code = run_example("bounded_buffer.lua", args)
    assert.equal(0, code, err)
    local lines = support.lines(out)
    assert.equal(n + 3, #lines, out)
    local per = { 0, 0 }
    for i = 1, n do
      local c, item = lines[i]:match("^consumer (%d) took (%d+)$")
      assert.truthy(c, "bad line: " .. lines[i])
      assert.equal(i, tonumber(item)) -- the items come out in the order they went in
      per[tonumber(c)] = per[tonumber(c)] + 1
    end
    assert.equal(("consumer 1: %d items"):format(per[1]), lines[n + 1])
    assert.equal(("consumer 2: %d items"):format(per[2]), lines[n + 2])
    assert.equal(("consumed %d items in order, sum %d, buffer peak %d of %d"):format(
      n, n * (n + 1) / 2, capacity, capacity), lines[n + 3])
  end

  it("consumes 20 items in order, the buffer filling up to its 4 slots", function()
    check(20, 4)
  end)

  it("takes the item count and the capacity from its arguments", function()
    check(1000, 3, "1000 3")
  end)
end)

describe("examples/hotswap.lua", function()
  local commands = "send 2\nserver 3\nbad\nsend 1\nserver\nquit\n"
  local expected = {
    "server1: running",
    "server1: processing message 1",
    "server1: processing message 2",
    "server1: replaced by server2",
    "server2: running",
    "server2: processing message 3",
    "server2: processing message 4",
    "server2: processing message 5",
    "server2: refusing to be replaced by an unknown function",
    "server2: processing message 6",
    "server2: replaced by server3",
    "server3: running",
    "server3: done",
  }

  it("swaps the server on command, loses no queued message, refuses a bad function", function()
    local out, err, code = support.run_cli(support.shell_quote("examples/hotswap.lua"), commands)
    assert.equal(0, code, err)
    assert.same(expected, support.lines(out))
  end)

  it("reads its commands from a pipe asynchronously (stdin is a stream)", function()
    -- the commands come in two parts with a pause between: the main coroutine
    -- waits for the second part in acoro.stdin:readline while the server runs
    local first, rest = commands:match("^(send 2\n)(.*)$")
    local cmd = string.format("cd %s && (printf %s; sleep 0.2; printf %s) | timeout -k 5 60 %s %s",
      support.shell_quote(support.root), support.shell_quote(first), support.shell_quote(rest),
      support.shell_quote(support.bin), support.shell_quote("examples/hotswap.lua"))
    local p = assert(io.popen(cmd, "r"))
    local out = p:read("*a")
    local ok = p:close()
    assert.truthy(ok, out)
    assert.same(expected, support.lines(out))
  end)
end)

describe("examples/udp.lua", function()
  it("the server prints one line per client datagram", function()
    local out, err, code = run_example("udp.lua", "25")
    assert.equal(0, code, err)
    local lines = support.lines(out)
    assert.equal(25, #lines, out)
    local seen = {}
    for _, line in ipairs(lines) do
      local i, port = line:match('^Received "client (%d+)" from 127%.0%.0%.1:(%d+)$')
      assert.truthy(i, "bad line: " .. line)
      assert.is_true(tonumber(port) > 0)
      assert.is_nil(seen[i], "duplicate: " .. line)
      seen[i] = true
    end
    for i = 1, 25 do assert.truthy(seen[tostring(i)], "client " .. i .. " missing") end
  end)
end)

local function shell(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("*a")
  p:close()
  return out
end

describe("examples/pipe_csum.lua", function()
  local function check(path)
    local out, err, code = run_example("pipe_csum.lua", path and support.shell_quote(path))
    assert.equal(0, code, err)
    local want = shell("sha1sum " .. support.shell_quote(path or "examples/pipe_csum.lua")):match("^(%x+)")
    assert.equal(40, #want)
    assert.equal("communicate sha1sum: " .. want .. "\n" .. "     feeder openssl: " .. want .. "\n", out)
  end

  it("prints the file's SHA-1 twice, both as sha1sum says", function()
    check(nil)
  end)

  it("works for a file of several megabytes", function()
    local path = support.write_temp(string.rep("acoro pipes\n", 300000), ".txt")
    check(path)
    support.cleanup()
  end)
end)

describe("examples/pipe_grep.lua", function()
  it("counts the matching lines as grep | wc -l does", function()
    local path = support.write_temp(("line one\nacoro two\nthree\nacoro four\n"):rep(1000), ".txt")
    for _, pattern in ipairs({ "acoro", "three", "nothing-matches" }) do
      local out, err, code = run_example("pipe_grep.lua", pattern .. " " .. support.shell_quote(path))
      assert.equal(0, code, err)
      local want = tonumber(shell("grep -- " .. pattern .. " " .. support.shell_quote(path) .. " | wc -l"))
      assert.equal(("%d lines of %s match %s\n"):format(want, path, pattern), out)
    end
    support.cleanup()
  end)
end)

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

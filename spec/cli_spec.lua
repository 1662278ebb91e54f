-- The `acoro` command line: script arguments, -e, -v, -h, exit codes, error reports and
-- deadlock. Each case runs build/acoro (or $ACORO_BIN) as a child with a 60 s limit.

local support = require "spec.support"

local run_cli, run_script, q = support.run_cli, support.run_script, support.shell_quote

describe("acoro CLI", function()
  after_each(support.cleanup)

  it("runs a script with its arguments in arg, as lua does", function()
    local path = support.write_temp([[
      print(arg[0])
      print(#arg)
      for i = 1, #arg do print(i, arg[i]) end
      print(type(arg[-1]))
    ]])
    local out, err, code = run_cli(q(path) .. " a " .. q("b c") .. " ''")
    assert.equal(0, code, err)
    assert.equal(table.concat({ path, "3", "1\ta", "2\tb c", "3\t", "string" }, "\n") .. "\n", out)
  end)

  it("passes the arguments as the script's varargs too", function()
    local out, err, code = run_script("print(select('#', ...), ...)", "x y")
    assert.equal(0, code, err)
    assert.equal("2\tx\ty\n", out)
  end)

  it("runs the script as the main coroutine, with require 'acoro' available", function()
    local out, err, code = run_script([[
      local acoro = require "acoro"
      acoro.sleep(0.01)
      print(acoro.self().name, acoro.self():status())
    ]])
    assert.equal(0, code, err)
    assert.equal("main\trunning\n", out)
  end)

  it("exits 0 after every non-daemon coroutine ended, not just main", function()
    local out, err, code = run_script([[
      local acoro = require "acoro"
      acoro.spawn(function() acoro.sleep(0.05); print("child done") end)
      local d = acoro.spawn(function() acoro.receive(); print("never") end)
      d:set_daemon()
      print("main done")
    ]])
    assert.equal(0, code, err)
    assert.equal("main done\nchild done\n", out)
  end)

  it("reads the script's stdin", function()
    local out, err, code = run_script("print((io.read('*l')):upper())", "", "hello\n")
    assert.equal(0, code, err)
    assert.equal("HELLO\n", out)
  end)

  it("-e runs code", function()
    local out, err, code = run_cli("-e " .. q("print(1 + 1)"))
    assert.equal(0, code, err)
    assert.equal("2\n", out)
  end)

  it("-e code runs as the main coroutine", function()
    local out, err, code = run_cli("-e " ..
      q("local acoro = require 'acoro'; acoro.sleep(0.01); print(acoro.self().name)"))
    assert.equal(0, code, err)
    assert.equal("main\n", out)
  end)

  it("-e with an error exits 1 with the error on stderr", function()
    local out, err, code = run_cli("-e " .. q("error('spec: boom in -e')"))
    assert.equal(1, code)
    assert.equal("", out)
    assert.truthy(err:find("spec: boom in -e", 1, true))
  end)

  it("-v prints the version", function()
    local out, err, code = run_cli("-v")
    assert.equal(0, code, err)
    assert.truthy(out:match("^acoro %d+%.%d+%.%d+"), out)
  end)

  it("-h prints usage mentioning the options", function()
    local out, err, code = run_cli("-h")
    assert.equal(0, code, err)
    local text = out .. err
    assert.truthy(text:lower():find("usage", 1, true), text)
    assert.truthy(text:find("-e", 1, true), text)
    assert.truthy(text:find("-v", 1, true), text)
  end)

  it("exits 1 with the error and a traceback on stderr when main raises", function()
    local out, err, code = run_script([[
      print("before")
      local function inner() error("spec: main failed") end
      inner()
    ]])
    assert.equal(1, code)
    assert.equal("before\n", out)
    assert.truthy(err:find("spec: main failed", 1, true), err)
    assert.truthy(err:find("stack traceback", 1, true), err)
    assert.truthy(err:find("inner", 1, true), err)
  end)

  it("exits 1 when main raises a non-string error", function()
    local _, err, code = run_script("error({ code = 1 })")
    assert.equal(1, code)
    assert.matches("^acoro: table: 0x%x+\n", err) -- what it can say of a table
  end)

  it("logs an uncaught error in another coroutine with its name and a traceback; exit 0",
    function()
      local out, err, code = run_script([[
        local acoro = require "acoro"
        local co = acoro.spawn(function()
          acoro.sleep(0.01)
          error("spec: worker failed")
        end)
        assert(co:register("worker"))
        print(co.id)
      ]])
      assert.equal(0, code, err)
      local id = out:match("^(%d+)\n$")
      assert.truthy(id, out)
      local head = "acoro: coroutine coro:worker/" .. id .. " failed: "
      local at = err:find(head, 1, true)
      assert.truthy(at, err)
      assert.truthy(err:find("spec: worker failed", at, true), err)
      assert.truthy(err:find("traceback", at, true), err)
    end)

  it("logs an unnamed failing coroutine as coro:-/<id>", function()
    local out, err, code = run_script([[
      local acoro = require "acoro"
      print(acoro.spawn(function() error("spec: anonymous failure") end).id)
    ]])
    assert.equal(0, code, err)
    local id = out:match("^(%d+)\n$")
    assert.truthy(id, out)
    assert.truthy(err:find("acoro: coroutine coro:-/" .. id .. " failed: ", 1, true), err)
  end)

  it("reports a deadlock and exits non-zero", function()
    local out, err, code = run_script([[
      local acoro = require "acoro"
      print("waiting")
      acoro.receive()
    ]])
    assert.are_not.equal(0, code)
    assert.are_not.equal(124, code) -- not killed by the time limit
    assert.equal("waiting\n", out)
    assert.truthy(err:find("acoro: deadlock", 1, true), err)
  end)

  it("exits non-zero for a missing script", function()
    local _, err, code = run_cli(q(support.root .. "/spec/no-such-script.lua"))
    assert.are_not.equal(0, code)
    assert.truthy(err:find("acoro: cannot open " .. support.root .. "/spec/no-such-script.lua", 1, true), err)
  end)
end)

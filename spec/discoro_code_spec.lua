-- acoro.discoro's code shipping, in this process: client functions become
-- their source text, upvalues other than loaded modules and bytecode are
-- refused, a syntax error stops schedule() with its line, and the code a
-- server loads runs in a global environment of its own.

local acoro = require "acoro"
local discoro = require "acoro.discoro"
local code = require "acoro.discoro.code"

local function square(x) return x * x end

local function uses_module(x)
  return acoro.now() > 0 and x
end

local function helper(x) return x + 1 end

local function uses_helper(x) return helper(x) * 2 end

local function recursive(n)
  if n <= 1 then return 1 end
  return n * recursive(n - 1)
end

describe("discoro code", function()
  it("a client function travels as its source, under its name", function()
    local src, names = code.build({ square })
    assert.equal("square", names[square])
    local env = assert(code.load_env(src, "t"))
    assert.equal(49, env.square(7))
  end)

  it("an upvalue that is a loaded module is required again on the server; a recursive one is kept", function()
    local src = code.build({ uses_module, recursive })
    assert.matches('local acoro = require%("acoro"%)', src)
    local env = assert(code.load_env(src, "t"))
    assert.equal(5, env.uses_module(5))
    assert.equal(120, env.recursive(5))
  end)

  it("an upvalue that is a function shipped under its own name is that function on the server", function()
    local src = code.build({ uses_helper, helper })
    local env = assert(code.load_env(src, "t"))
    assert.equal(8, env.uses_helper(3))
    local ok, err = pcall(code.build, { uses_helper })
    assert.is_false(ok)
    assert.matches("has upvalue 'helper'", err)
  end)

  it("an upvalue that is not a module is refused, naming it and the function", function()
    local k = 3
    local function times_k(x) return x * k end
    local ok, err = pcall(function()
      local comp = discoro.Computation({ code = { times_k } })
      return comp
    end)
    assert.is_false(ok)
    assert.matches("function times_k %(spec/discoro_code_spec.lua:%d+%) has upvalue 'k'", err)
    assert.matches("^spec/discoro_code_spec.lua:%d+:", err) -- blames the caller
  end)

  it("bytecode is refused as code, in a file, and when a server loads it", function()
    local dumped = string.dump(function() return 1 end)
    local ok, err = pcall(discoro.Computation, { code = dumped })
    assert.is_false(ok)
    assert.matches("bytecode is refused", err)
    local path = os.tmpname() .. ".lua"
    local f = assert(io.open(path, "wb"))
    f:write(dumped)
    f:close()
    ok, err = pcall(discoro.Computation, { code = path })
    os.remove(path)
    assert.is_false(ok)
    assert.matches("is bytecode", err)
    local env, why = code.load_env(dumped, "x")
    assert.is_nil(env)
    assert.equal("bytecode is refused", why)
  end)

  it("a relative file name that goes up is refused", function()
    local ok, err = pcall(discoro.Computation, { code = "x = 1", files = { "data/../../etc/passwd" } })
    assert.is_false(ok)
    assert.matches("files%[1%] %(data/%.%./%.%./etc/passwd%) goes up with '%.%.'", err)
  end)

  it("a syntax error: schedule() returns nil and the error with its line", function()
    local comp = discoro.Computation({ code = "function ok() end\nfunction bad( return end\n", name = "mycode" })
    local res, err = acoro.run(function() return comp:schedule() end)
    assert.is_nil(res)
    assert.matches("^mycode:2:", err)
  end)

  it("each computation's globals are its own", function()
    local a = assert(code.load_env("x = 1\nfunction get() return x end", "a"))
    local b = assert(code.load_env("function get() return x end", "b"))
    assert.equal(1, a.get())
    assert.is_nil(b.get())
    assert.is_nil(rawget(_G, "x"))
    assert.equal(string, a.string)
  end)
end)

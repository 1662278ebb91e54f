-- acoro.pool (lua/acoro/pool.lua, bindings/lpool.c, core/pool.c): results
-- and their copying, errors raised in the caller, arguments that cannot be
-- copied, 200 jobs at once while other coroutines run, a waiter terminated
-- before its job ends, and the pool's size (in a child process: libuv fixes
-- the size when the pool first starts).

local acoro = require "acoro"
local support = require "spec.support"

-- For a worker: waits (bounded, 30 s) until the file `path` exists. The
-- job then ends when the spec says so, not after some amount of time.
local function wait_for_file(path)
  local ffi = require "ffi"
  pcall(ffi.cdef, "int usleep(unsigned int);")
  for _ = 1, 3000 do
    local f = io.open(path, "r")
    if f then
      f:close()
      return true
    end
    ffi.C.usleep(10000)
  end
  return false
end

local function touch(path)
  local f = assert(io.open(path, "w"))
  f:close()
end

describe("acoro.pool.run", function()
  it("returns the function's results, copied (nested tables included)", function()
    acoro.run(function()
      local a, b, c, d, e = acoro.pool.run(function(x, t)
        return x * 2, t.name .. "!", { list = { 1, 2, 3 }, [10] = true, nested = { deep = { "z" } } }, nil, false
      end, 21, { name = "job" })
      assert.equal(42, a)
      assert.equal("job!", b)
      assert.same({ list = { 1, 2, 3 }, [10] = true, nested = { deep = { "z" } } }, c)
      assert.is_nil(d)
      assert.is_false(e)
      assert.equal(0, select("#", acoro.pool.run(function() end)))
      -- binary strings, nil holes in the arguments, numbers kept exactly
      local s = string.char(0, 1, 255) .. "x"
      local r1, r2, r3 = acoro.pool.run(function(p, q, r) return p, q, r end, s, nil, 0.1 + 0.2)
      assert.equal(s, r1)
      assert.is_nil(r2)
      assert.equal(0.1 + 0.2, r3)
      -- a table argument is a copy: changes in the worker do not come back
      local t = { n = 1 }
      local n = acoro.pool.run(function(u) u.n = 99 return u.n end, t)
      assert.equal(99, n)
      assert.equal(1, t.n)
    end)
  end)

  it("the worker has the standard libraries and can require modules", function()
    acoro.run(function()
      local v = acoro.pool.run(function()
        local bit = require "bit"
        return bit.bxor(5, 3) .. string.format("%03d", 7) .. math.floor(2.5) .. type(io.open)
      end)
      assert.equal("60072function", v)
    end)
  end)

  it("a job requires what the submitter can: package.path and cpath as at submit time", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. support.shell_quote(dir)) == 0)
    local name = "spec_pool_mod_" .. dir:match("([%w_]+)$")
    local f = assert(io.open(dir .. "/" .. name .. ".lua", "w"))
    f:write('return { answer = 42, from = "the temp dir" }\n')
    f:close()
    local path, cpath = package.path, package.cpath
    local ok, err = pcall(acoro.run, function()
      package.path = dir .. "/?.lua;" .. path
      package.cpath = cpath .. ";" .. dir .. "/?.so"
      local answer, from, wpath, wcpath = acoro.pool.run(function(mod)
        local m = require(mod)
        return m.answer, m.from, package.path, package.cpath
      end, name)
      assert.equal(42, answer)
      assert.equal("the temp dir", from)
      assert.equal(package.path, wpath)
      assert.equal(package.cpath, wcpath)
      package.path = path -- a later job follows the submitter's paths of its own time
      local job = acoro.pool.submit(function() return package.path end)
      assert.equal(path, job:result(30))
    end)
    package.path, package.cpath = path, cpath
    os.execute("rm -rf " .. support.shell_quote(dir))
    assert(ok, err)
  end)

  it("an error inside is raised in the caller with its message", function()
    acoro.run(function()
      local ok, err = pcall(acoro.pool.run, function() error("boom in the pool") end)
      assert.is_false(ok)
      assert.matches("boom in the pool", err)
      ok, err = pcall(acoro.pool.run, function() error({ code = 7 }) end)
      assert.is_false(ok)
      assert.matches("error object is a table", err)
      ok, err = pcall(acoro.pool.run, function() return nil + 1 end)
      assert.is_false(ok)
      assert.matches("arithmetic", err)
      -- the worker state survives an error: the next job runs
      assert.equal(3, acoro.pool.run(function() return 1 + 2 end))
    end)
  end)

  it("refuses what cannot be copied, naming the argument or the result", function()
    acoro.run(function()
      local function msg(...)
        local ok, err = pcall(acoro.pool.run, ...)
        assert.is_false(ok)
        return err
      end
      local id = function(...) return ... end
      assert.matches("argument 2: a function cannot be copied", msg(id, 1, print))
      assert.matches("argument 1%[\"a\"%]%[2%]: a userdata", msg(id, { a = { 1, io.stdout } }))
      assert.matches("argument 1%[3%]: a thread", msg(id, { 1, 2, coroutine.create(id) }))
      assert.matches("a table as a key", msg(id, { [{}] = 1 }))
      local cyc = {}
      cyc.self = cyc
      assert.matches("nested too deep", msg(id, cyc))
      assert.matches("result 2: a function", msg(function() return 1, print end))
      assert.matches("upvalues %(id%)", msg(function() return id end))
      assert.matches("a C function", msg(print))
      assert.matches("expected a function", msg("code"))
    end)
  end)

  it("200 jobs at once complete while other coroutines keep running", function()
    acoro.run(function()
      -- The ticker is always ready: if a job held the engine thread until it was
      -- done, the ticker could not run while its coroutine waited for it.
      local ticks, done, overlapped = 0, false, 0
      local ticker = acoro.spawn(function()
        while not done do
          ticks = ticks + 1
          acoro.yield()
        end
      end)
      local workers = {}
      for i = 1, 200 do
        workers[i] = acoro.spawn(function()
          local before = ticks
          local n, s = acoro.pool.run(function(n)
            local s = 0
            for k = 1, 20000 do s = s + (k * n) % 7 end
            return n, s
          end, i)
          if ticks > before then overlapped = overlapped + 1 end
          return n, s
        end)
      end
      for i = 1, 200 do
        local ok, n, s = workers[i]:join(60)
        assert.is_true(ok)
        assert.equal(i, n)
        local want = 0
        for k = 1, 20000 do want = want + (k * i) % 7 end
        assert.equal(want, s)
      end
      done = true
      ticker:join(10)
      assert.equal(200, overlapped) -- the ticker ran while each job ran
    end)
  end)

  it("a coroutine terminated while it waits does not crash when the job ends", function()
    local go, flag = os.tmpname(), os.tmpname()
    os.remove(go)
    os.remove(flag)
    acoro.run(function()
      local waiter = acoro.spawn(function()
        return acoro.pool.run(function(wait, go_path, path)
          load(wait)(go_path)
          local f = io.open(path, "w")
          f:write("done")
          f:close()
          return "late"
        end, string.dump(wait_for_file), go, flag)
      end)
      for _ = 1, 1000 do
        if waiter:status() == "waiting_io" then break end
        acoro.sleep(0.005)
      end
      assert.equal("waiting_io", waiter:status())
      waiter:terminate()
      collectgarbage()
      collectgarbage()
      assert.equal("dead", waiter:status())
      touch(go)
      -- the job ends later; the engine takes its completion in its stride
      local seen = false
      for _ = 1, 2000 do
        if acoro.fs.stat(flag) then
          seen = true
          break
        end
        acoro.sleep(0.005)
      end
      assert.is_true(seen)
      assert.equal(5, acoro.pool.run(function() return 5 end))
    end)
    os.remove(flag)
    os.remove(go)
  end)

  it("submit and job:result with a timeout", function()
    local go = os.tmpname()
    os.remove(go)
    acoro.run(function()
      local job = acoro.pool.submit(function(wait, path)
        load(wait)(path)
        return "finally"
      end, string.dump(wait_for_file), go)
      local r, err, code = job:result(0.05)
      assert.is_nil(r)
      assert.equal("timeout", err)
      assert.equal("ETIMEDOUT", code)
      touch(go)
      assert.equal("finally", job:result(30))
      assert.equal("finally", job:result())
    end)
    os.remove(go)
  end)

  it("outside a coroutine run raises", function()
    assert.has_error(function() acoro.pool.run(function() end) end)
  end)
end)

describe("acoro.pool.size", function()
  it("gets and sets the size before the pool starts, and raises after", function()
    local out, err, code = support.run_script([[
      local acoro = require "acoro"
      print(acoro.pool.size())
      print(acoro.pool.size(3))
      print(acoro.pool.size())
      print(acoro.pool.run(function() return "ran" end))
      local ok, e = pcall(acoro.pool.size, 5)
      print(ok, (e:match("too late")))
      print(pcall(acoro.pool.size, 0))
    ]])
    assert.equal(0, code, err)
    local lines = support.lines(out)
    assert.matches("^%d+$", lines[1])
    assert.equal("3", lines[2])
    assert.equal("3", lines[3])
    assert.equal("ran", lines[4])
    assert.equal("false\ttoo late", lines[5])
    assert.matches("^false", lines[6])
  end)
end)

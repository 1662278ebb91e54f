-- The specs' strict acoro.run (spec/helper.lua, spec/strict_run.lua): a coroutine that
-- fails while it runs fails the spec, unless the spec said it expects that failure.

local acoro = require "acoro"
local support = require "support"

describe("the specs' acoro.run", function()
  -- The failures here are made on purpose, some unexpected by design: their log lines
  -- are part of the test, not its output.
  local prev_writer
  before_each(function() prev_writer = acoro.log.set_writer(function() end) end)
  after_each(function() acoro.log.set_writer(prev_writer) end)

  it("raises the assertion that failed inside a spawned coroutine", function()
    local ok, err = pcall(acoro.run, function()
      local co = acoro.spawn(function() assert.equal(1, 2) end)
      co:join(5) -- the result is not looked at: the failure must not be lost
      return "main ended"
    end)
    assert.is_false(ok)
    assert.matches("Expected objects to be equal", tostring(err.message or err))
  end)

  it("raises a string error with the coroutine, the message and its traceback", function()
    local ok, err = pcall(acoro.run, function()
      acoro.spawn(function() error("spec: lost") end)
      acoro.yield()
      acoro.yield()
    end)
    assert.is_false(ok)
    assert.matches("^coroutine coro:%-/%d+ failed: .*spec: lost\nstack traceback:", err)
  end)

  it("lets the failures a spec expects pass, and no others", function()
    support.expect_failures("spec: expected")
    assert.equal("done", acoro.run(function()
      assert.same({ false, "spec: expected" },
        { acoro.spawn(function() error("spec: expected", 0) end):join(5) })
      return "done"
    end))
    support.expect_failures("spec: expected")
    local ok, err = pcall(acoro.run, function()
      acoro.spawn(function() error("spec: expected", 0) end):join(5)
      acoro.spawn(function() error("spec: another", 0) end):join(5)
    end)
    assert.is_false(ok)
    assert.matches("failed: spec: another", err, 1, true)
  end)

  it("expects failures for the next run only", function()
    support.expect_failures()
    acoro.run(function() acoro.spawn(function() error("spec: expected", 0) end):join(5) end)
    assert.has_error(function()
      acoro.run(function() acoro.spawn(function() error("spec: now lost", 0) end):join(5) end)
    end)
  end)
end)

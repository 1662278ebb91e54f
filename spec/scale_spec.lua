-- Scale: 100,000 coroutines each receive one message and exit. Correctness only: no
-- timing assertions (benchmarks live in bench/).

local acoro = require "acoro"

local N = 100000

describe("many coroutines", function()
  it("100,000 coroutines each receive one message and exit", function()
    local got = {}
    local reported = 0
    acoro.run(function()
      local me = acoro.self()
      local cos = {}
      for i = 1, N do
        cos[i] = acoro.spawn(function(expect)
          local m = acoro.receive(60, "timeout")
          got[expect] = m
          me:send(expect)
        end, i)
      end
      acoro.yield() -- let them all block in receive
      for i = 1, N do
        assert(cos[i]:send(i))
      end
      local seen = {}
      for _ = 1, N do
        local i = acoro.receive(60, "timeout")
        assert(type(i) == "number", "missing reply")
        assert(not seen[i], "duplicate reply")
        seen[i] = true
        reported = reported + 1
      end
      for i = 1, N do
        assert(cos[i]:status() == "dead", "coroutine still alive")
      end
      -- ids were unique
      local ids = {}
      for i = 1, N do
        local id = cos[i].id
        assert(not ids[id], "duplicate id")
        ids[id] = true
      end
    end)
    assert.equal(N, reported)
    local wrong = 0
    for i = 1, N do
      if got[i] ~= i then wrong = wrong + 1 end
    end
    assert.equal(0, wrong)
  end)

  it("100,000 coroutines spawned and joined one batch after another", function()
    local total = 0
    acoro.run(function()
      for _ = 1, 10 do
        local batch = {}
        for i = 1, N / 10 do batch[i] = acoro.spawn(function(x) return x * 2 end, i) end
        for i = 1, N / 10 do
          local ok, v = batch[i]:join(60)
          assert(ok and v == i * 2, "bad join result")
          total = total + 1
        end
      end
    end)
    assert.equal(N, total)
  end)
end)

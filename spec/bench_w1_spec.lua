-- bench/run w1 runs end to end with a tiny count (no timing asserted here:
-- bench/run measures): the in-script W1 row and the whole-process row, each
-- against the bare-LuaJIT floor.

local support = require "support"

local q = support.shell_quote

describe("bench/run w1", function()
  it("prints the W1 spawn row and the W1 process row", function()
    local p = assert(io.popen(("cd %s && ACORO=%s W1_N=2000 timeout -k 5 120 bench/run -n 1 w1 2>&1; echo rc=$?")
      :format(q(support.root), q(support.bin))))
    local out = p:read("*a")
    p:close()
    assert.truthy(out:match("rc=0\n$"), out)
    assert.truthy(out:match("\nW1 spawn +%S+ us/co +%-?%d+ B/co +%S+ us/co +%-?%d+ B/co +%S+x time +%S+x mem\n"), out)
    assert.truthy(out:match("\nW1 process +%d+ ms cpu +%d+ ms wall +%d+ ms cpu +%d+ ms wall +%S+x cpu\n"), out)
  end)
end)

-- bench/run w7 runs end to end with a tiny count (no timing asserted here:
-- bench/run measures): acoro-node with 2 servers, bench/w7_discoro.lua, and
-- Dask where python3-distributed is installed or a note that skips it.

local support = require "support"

local q = support.shell_quote

describe("bench/run w7 (acoro.discoro, and Dask where it is installed)", function()
  it("prints the W7 row, and the Dask figures or a note that skips them", function()
    local w = assert(io.popen("{ python3 -c 'import distributed' || /usr/bin/python3 -c 'import distributed'; }"
      .. " >/dev/null 2>&1 && echo yes"))
    local has_dask = w:read("*a"):match("yes") ~= nil
    w:close()
    local p = assert(io.popen(("cd %s && ACORO=%s W7_N=200 timeout -k 5 200 bench/run -n 1 w7 2>&1; echo rc=$?")
      :format(q(support.root), q(support.bin))))
    local out = p:read("*a")
    p:close()
    assert.truthy(out:match("rc=0\n$"), out)
    if has_dask then
      assert.truthy(out:match("\nW7 discoro +%S+k jobs/s, %d+ us one +%S+k jobs/s, %d+ us one"
        .. " +%S+x rate, %d+x faster one job"), out)
    else
      assert.truthy(out:match("\nW7 discoro +%S+k jobs/s, %d+ us one +skipped"), out)
      assert.truthy(out:match("W7 on Dask skipped: python3%-distributed not installed"), out)
    end
  end)
end)

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

-- bench/run lost, lat and didle run end to end with short jobs and a 1 s idle
-- window (no timing asserted: bench/run measures).
describe("bench/run lost, lat, didle (acoro.discoro's failures, latency, idle cost)", function()
  it("prints the LOST killed and frozen, LAT and DIDLE rows", function()
    local p = assert(io.popen(("cd %s && ACORO=%s LOST_JOB_S=0.2 DIDLE_S=1 timeout -k 5 200"
      .. " bench/run -n 1 lost lat didle 2>&1; echo rc=$?"):format(q(support.root), q(support.bin))))
    local out = p:read("*a")
    p:close()
    assert.truthy(out:match("rc=0\n$"), out)
    assert.truthy(out:match("LOST killed +last result: job %+ [%d.]+ s +no loss: job %+ [%d.]+ s"
      .. " +re%-queued [%d.]+ s after"), out)
    assert.truthy(out:match("\nLOST frozen +last result: job %+ [%d.]+ s +no loss"), out)
    assert.truthy(out:match("\nLAT one job +run_result [%d.]+ us +W6 round trip [%d.]+ us +[%d.]+x W6"), out)
    assert.truthy(out:match("\nDIDLE node +[%d.]+ %% CPU, [%d.]+ MB %(3 procs%) +client [%d.]+ %% CPU"), out)
  end)
end)

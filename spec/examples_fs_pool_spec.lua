-- The file and thread-pool examples (examples/socket_afile.lua,
-- examples/pool_hash.lua), run through the CLI and checked by what they do.

local support = require "spec.support"
local q = support.shell_quote

local function sha1(path)
  local p = assert(io.popen("sha1sum " .. q(path)))
  local out = p:read("*a")
  p:close()
  return out:match("^(%x+)")
end

describe("examples/socket_afile.lua", function()
  it("copies a 3 MB file over a socket into an async file: same sha1", function()
    local parts = {}
    for i = 1, 3 * 1024 * 16 do
      parts[i] = string.char(i % 256, (i * 7) % 256) .. string.rep(string.char((i * 13) % 256), 62)
    end
    local input = support.write_temp(table.concat(parts), ".bin")
    local output = support.write_temp("", ".out")
    local out, err, code = support.run_cli(q("examples/socket_afile.lua") .. " " .. q(input) .. " " .. q(output))
    assert.equal(0, code, err)
    local size = 3 * 1024 * 1024
    assert.equal(("client: sent %d bytes of %s\nclient: server says ok %d\nserver: wrote %d bytes to %s\n")
      :format(size, input, size, size, output), out)
    assert.matches("^%x+$", sha1(input)) -- a digest, not two failures alike
    assert.equal(sha1(input), sha1(output))
    support.cleanup()
  end)

  it("with no arguments copies itself", function()
    local out, err, code = support.run_cli(q("examples/socket_afile.lua"))
    assert.equal(0, code, err)
    local output = out:match("server: wrote %d+ bytes to (%S+)")
    assert.truthy(output, out)
    assert.equal(sha1(support.root .. "/examples/socket_afile.lua"), sha1(output))
    os.remove(output)
  end)
end)

describe("examples/pool_hash.lua", function()
  -- The same hash as the example's job, computed here.
  local function hash(seed, rounds)
    local parts = {}
    for i = 1, 1000 do parts[i] = string.char((seed * 31 + i * 7) % 256) end
    local data = table.concat(parts)
    local h = 0
    for _ = 1, rounds do
      for i = 1, #data do h = (h * 31 + data:byte(i)) % 4294967296 end
    end
    return string.format("%08x", h)
  end

  it("prints each job's hash in order, then that the engine ticked", function()
    local out, err, code = support.run_cli(q("examples/pool_hash.lua") .. " 12 300")
    assert.equal(0, code, err)
    local lines = support.lines(out)
    assert.equal(13, #lines, out)
    for i = 1, 12 do
      assert.equal(("job %d: %s"):format(i, hash(i, 300)), lines[i])
    end
    assert.equal("12 jobs done on the pool; the engine ticked meanwhile: yes", lines[13])
  end)
end)

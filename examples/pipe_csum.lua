-- pipe_csum.lua: asyncoro's pipe_csum.py in acoro: the SHA-1 of a file
-- computed by system programs fed through asynchronous pipes, two ways:
-- communicate() with sha1sum, and a writer coroutine streaming the file
-- into `openssl dgst -sha1` while a reader coroutine collects its output.
--   acoro examples/pipe_csum.lua [file]   (default: this script)
local acoro = require "acoro"

local path = arg and arg[1] or arg[0]

local function read_file(p)
  local f = assert(io.open(p, "rb"))
  local data = f:read("*a")
  f:close()
  return data
end

local function hex_of(out)
  return out and out:match("(%x+)%s+%-?%s*$") or out and out:match("= *(%x+)")
end

-- 1. communicate: the whole input in, stdout and stderr out together.
local function with_communicate()
  local p = assert(acoro.process.spawn { "sha1sum" })
  local out = assert(p:communicate(read_file(path)))
  print("communicate sha1sum: " .. hex_of(out))
end

-- 2. a feeder coroutine writes the file in chunks, a reader coroutine reads
-- the result until EOF.
local function with_feeder()
  local p = assert(acoro.process.spawn { "openssl", "dgst", "-sha1" })
  local writer = acoro.spawn(function()
    local f = assert(io.open(path, "rb"))
    while true do
      local chunk = f:read(8192)
      if not chunk then break end
      assert(p.stdin:send(chunk))
    end
    f:close()
    p.stdin:close()
  end)
  local reader = acoro.spawn(function()
    return p.stdout:read()
  end)
  local _, out = reader:join()
  writer:join()
  p:wait()
  print("     feeder openssl: " .. hex_of(out))
end

acoro.spawn(with_communicate):join()
acoro.spawn(with_feeder):join()

-- pipe_grep.lua: asyncoro's pipe_grep.py in acoro: chained pipes, the
-- output of `grep PATTERN FILE` going straight into `wc -l`, whose answer
-- is read asynchronously.
--   acoro examples/pipe_grep.lua [pattern [file]]   (default: "acoro", this script)
local acoro = require "acoro"

local pattern = arg and arg[1] or "acoro"
local path = arg and arg[2] or arg[0]

local grep = assert(acoro.process.spawn { "grep", "--", pattern, path, stdin = "null" })
local wc = assert(acoro.process.spawn { "wc", "-l", stdin = grep.stdout })
grep.stdout:close() -- wc has it now
local count = assert(wc.stdout:read(nil, 60))
grep:wait(60)
wc:wait(60)
print(("%d lines of %s match %s"):format(tonumber(count), path, pattern))

-- The API fuzzer (spec/fuzz/api_fuzz.lua): every public function and method
-- of acoro called with random arguments and random selves, a few thousand
-- calls per seed, for a fixed list of seeds. Each seed runs in a child
-- process under a time limit, so that a crash (a segfault, a sanitizer
-- abort), a hang or a call that overran a short timeout fails this spec
-- with the seed and the last calls made, instead of taking busted down.
-- Half the seeds run under the acoro command, half under plain luajit, where
-- a fifth of the calls come before acoro.run (outside the engine).
local support = require "support"

local SEEDS = { 1, 2, 3, 5, 8, 13, 21, 34 }
local CALLS = 3000
local LIMIT = 60 -- seconds for one seed; a seed takes about 1 s (2 s under ASan)

local q = support.shell_quote

local function run(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("*a")
  p:close()
  return out
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

-- Runs the fuzzer for one seed in dir: stdout, stderr, exit status (124:
-- the time limit killed it).
local function fuzz(seed, dir, plain)
  local build = os.getenv("ACORO_BUILD") or "build"
  if build:sub(1, 1) ~= "/" then build = support.root .. "/" .. build end
  local prog, env = q(support.bin), ""
  if plain then
    prog = "luajit"
    env = ("env LUA_PATH=%s LUA_CPATH=%s"):format(
      q(build .. "/share/lua/5.1/?.lua;" .. build .. "/share/lua/5.1/?/init.lua;;"),
      q(build .. "/lib/lua/5.1/?.so;;"))
  end
  local status = run(("cd %s && %s timeout -k 5 %d %s spec/fuzz/api_fuzz.lua %d %d %s"
    .. " </dev/null >%s 2>%s; echo $?"):format(q(support.root), env, LIMIT, prog, seed, CALLS,
    q(dir), q(dir .. "/out"), q(dir .. "/err")))
  return read(dir .. "/out"), read(dir .. "/err"), tonumber(status:match("(%d+)%s*$"))
end

describe("api fuzz", function()
  it("survives random arguments and selves in every public call, seed after seed", function()
    local total = 0
    for i, seed in ipairs(SEEDS) do
      local dir = run("mktemp -d"):gsub("%s+$", "")
      assert.is_true(dir ~= "" and dir:sub(1, 1) == "/", "mktemp -d failed")
      local plain = i % 2 == 0
      local out, err, code = fuzz(seed, dir, plain)
      local calls = out:match("api_fuzz seed=%d+ calls=(%d+)")
      if code ~= 0 or not calls then
        local trace = run("tail -n 30 " .. q(dir .. "/trace") .. " 2>/dev/null")
        run("rm -rf " .. q(dir))
        error(("api fuzz seed %d (%s): %s (exit %s)\nstderr (end): %s\nlast calls:\n%s"):format(seed,
          plain and "luajit" or "acoro", code == 124 and "hang" or code and code >= 128 and "crash"
            or code == 4 and "a short timeout was not kept" or "failure", tostring(code),
          err:sub(-2000), trace), 0)
      end
      run("rm -rf " .. q(dir))
      total = total + tonumber(calls) -- (a passing run prints nothing; a failing seed says all above)
    end
    assert.are.equal(#SEEDS * CALLS, total)
  end)
end)

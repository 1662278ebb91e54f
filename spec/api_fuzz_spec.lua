-- The API fuzzer (spec/fuzz/api_fuzz.lua): every public function and method
-- of acoro called with random arguments and random selves, a few thousand
-- calls per seed, for a fixed list of seeds. Each seed runs in a child
-- process under a time limit, so that a crash (a segfault, a sanitizer
-- abort), a hang or a call that overran a short timeout fails this spec
-- with the seed and the last calls made, instead of taking busted down.
local support = require "support"

local SEEDS = { 1, 2, 3, 5, 8, 13, 21, 34 }
local CALLS = 3000
local LIMIT = 60 -- seconds for one seed; a seed takes about 2 s (10 s under ASan)

local function run(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("*a")
  p:close()
  return out
end

describe("api fuzz", function()
  it("survives random arguments and selves in every public call, seed after seed", function()
    local total = 0
    for _, seed in ipairs(SEEDS) do
      local dir = run("mktemp -d"):gsub("%s+$", "")
      assert.is_true(dir ~= "" and dir:sub(1, 1) == "/", "mktemp -d failed")
      local out, err, code = support.run_cli(("spec/fuzz/api_fuzz.lua %d %d %s")
        :format(seed, CALLS, support.shell_quote(dir)), "", LIMIT)
      local calls = out:match("api_fuzz seed=%d+ calls=(%d+)")
      if code ~= 0 or not calls then
        local trace = run("tail -n 30 " .. support.shell_quote(dir .. "/trace") .. " 2>/dev/null")
        run("rm -rf " .. support.shell_quote(dir))
        error(("api fuzz seed %d: %s (exit %s)\nstderr (end): %s\nlast calls:\n%s"):format(seed,
          code == 124 and "hang" or code and code >= 128 and "crash"
            or code == 4 and "a short timeout was not kept" or "failure", tostring(code),
          err:sub(-2000), trace), 0)
      end
      run("rm -rf " .. support.shell_quote(dir))
      total = total + tonumber(calls)
      print(("api fuzz: seed %d: %s"):format(seed, out:match("api_fuzz (seed=.-)\n") or calls))
    end
    print(("api fuzz: %d calls in all"):format(total))
    assert.are.equal(#SEEDS * CALLS, total)
  end)
end)

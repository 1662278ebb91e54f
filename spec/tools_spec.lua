-- The test tooling itself: tools/busted-summary reads busted's summary line in every
-- form (tools/test counts with it), and the C test list names every TEST().

local support = require "support"

local function summary(text)
  local path = support.write_temp(text, ".txt")
  local p = assert(io.popen("tools/busted-summary " .. support.shell_quote(path)))
  local out = p:read("*a")
  p:close()
  return (out:gsub("\n$", ""))
end

describe("tools/busted-summary", function()
  after_each(support.cleanup)

  it("reads the singular and the plural of every count", function()
    local cases = {
      { "1 success / 0 failures / 0 errors / 0 pending : 0.01 seconds", "1 0 0 0" },
      { "0 successes / 1 failure / 1 error / 1 pending : 0.01 seconds", "0 1 1 1" },
      { "12 successes / 2 failures / 3 errors / 4 pending : 1.5 seconds", "12 2 3 4" },
      { "1 success / 1 failure / 1 error / 0 pending : 0.2 seconds", "1 1 1 0" },
    }
    for _, c in ipairs(cases) do
      assert.equal(c[2], summary("++-\n" .. c[1] .. "\n"))
    end
  end)

  it("reads the line in colour and takes the last summary", function()
    local line = "\27[32m3\27[0m successes / \27[31m0\27[0m failures / \27[35m1\27[0m error / "
      .. "\27[33m0\27[0m pending : \27[1m0.3\27[0m seconds\n"
    assert.equal("3 0 1 0", summary("1 success / 0 failures / 0 errors / 0 pending : 0 seconds\n" .. line))
  end)

  it("prints nothing when busted died before its summary", function()
    assert.equal("", summary("+++\nSegmentation fault\n"))
  end)
end)

describe("cmake/check_tests.cmake", function()
  after_each(support.cleanup)

  local function check(runner, tests)
    local r = support.write_temp(runner, ".c")
    local t = support.write_temp(tests, ".c")
    local p = assert(io.popen(("cmake -DRUNNER=%s -DTESTS=%s -P cmake/check_tests.cmake 2>&1; echo rc=$?")
      :format(support.shell_quote(r), support.shell_quote(t))))
    local out = p:read("*a")
    p:close()
    return out
  end

  it("fails the build on a TEST() missing from runner.c's list, naming it", function()
    local out = check("#define TEST_LIST(XX) \\\n  XX(one)\n", "TEST(one) {\n}\nTEST(two) {\n}\n")
    assert.matches("TEST_LIST lacks these TEST%(%)s.*two", out)
    assert.not_matches("rc=0", out)
  end)

  it("passes a list that names every TEST(), and refuses a name listed twice", function()
    assert.matches("^rc=0", check("  XX(one) XX(two)\n", "TEST(one) {}\nTEST(two) {}\n"))
    assert.matches("listed twice", check("  XX(one) XX(one)\n", "TEST(one) {}\n"))
  end)

  it("holds for the repository's own list", function()
    local p = assert(io.popen("ls spec/c/test-*.c"))
    local files = {}
    for f in p:lines() do files[#files + 1] = f end
    p:close()
    local q = assert(io.popen(("cmake -DRUNNER=spec/c/runner.c -DTESTS=%s -P cmake/check_tests.cmake 2>&1; echo rc=$?")
      :format(support.shell_quote(table.concat(files, ";")))))
    assert.matches("^rc=0", q:read("*a"))
    q:close()
  end)
end)

-- The API document and the code cannot drift: every call the contract names
-- exists, as a function of the module or a method of coroutine handles.
local acoro = require "acoro"
local support = require "support"

local function read(path)
  local f = assert(io.open(support.root .. "/" .. path))
  local s = f:read("*a")
  f:close()
  return s
end

describe("docs/from-asyncoro.md", function()
  it("maps asyncoro's names to acoro functions that exist", function()
    local doc = read("docs/from-asyncoro.md")
    local n = 0
    for name in doc:gmatch("acoro%.([%w_]+)%(") do
      n = n + 1
      assert.are.equal("function", type(acoro[name]), "acoro." .. name)
    end
    assert.is_true(n > 20)
    assert.truthy(doc:find("CategorizeMessages", 1, true))
    assert.truthy(read("README.md"):find("docs/from-asyncoro.md", 1, true))
  end)
end)

describe("docs/lua-api-notes.md", function()
  local doc = read("docs/lua-api-notes.md")

  it("names only module functions that exist", function()
    local n = 0
    for name in doc:gmatch("acoro%.([%w_]+)%(") do
      n = n + 1
      assert.are.equal("function", type(acoro[name]), "acoro." .. name)
    end
    assert.is_true(n > 10)
  end)

  it("names only coroutine methods that exist", function()
    local n = 0
    acoro.run(function()
      local co = acoro.self()
      for name in doc:gmatch("co:([%w_]+)%(") do
        n = n + 1
        assert.are.equal("function", type(co[name]), "co:" .. name)
      end
    end)
    assert.is_true(n > 10)
  end)

  it("names only fields that exist", function()
    acoro.run(function()
      local co = acoro.self()
      for _, field in ipairs({ "id", "name" }) do
        assert.is_not_nil(doc:find("co." .. field, 1, true))
        assert.is_not_nil(co[field])
      end
    end)
  end)
end)

-- acoro-node --user gives a computation's directory to the servers' user
-- (acoro.discoro.user.give): what the node wrote there changes hands, and
-- nothing outside the tree does, whatever the user's code left in it (a
-- link, a hard link to a file elsewhere, its own directory). As root only.

local acoro = require "acoro"
local users = require "acoro.discoro.user"

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function sh(cmd) assert(os.execute(cmd) == 0, cmd) end

local function owner(path)
  local p = assert(io.popen("stat -c %U " .. q(path)))
  local u = p:read("*l")
  p:close()
  return u
end

local function running_as_root()
  local p = io.popen("id -u")
  local id = p:read("*l")
  p:close()
  return id == "0"
end

describe("acoro.discoro.user.give", function()
  local top
  after_each(function()
    if top then os.execute("rm -rf " .. q(top)) end
    top = nil
  end)

  it("gives the node's files in the tree, never a file outside it (links, hard links)", function()
    if not running_as_root() then return pending("needs root (it gives files to nobody)") end
    top = os.tmpname()
    os.remove(top)
    sh("mkdir -p " .. q(top .. "/comp/sub") .. " " .. q(top .. "/comp/theirs") .. " " .. q(top .. "/outside"))
    local comp, out = top .. "/comp", top .. "/outside"
    sh("echo a > " .. q(comp .. "/sent.txt") .. " && echo b > " .. q(comp .. "/sub/inner.txt"))
    sh("echo o > " .. q(out .. "/linked") .. " && echo h > " .. q(out .. "/hard"))
    -- what the user's code could have left: a link out, a second name of a
    -- file elsewhere, a directory of its own with a file the node wrote in it
    sh("ln -s " .. q(out .. "/linked") .. " " .. q(comp .. "/link"))
    sh("ln -s " .. q(out) .. " " .. q(comp .. "/dirlink"))
    sh("ln " .. q(out .. "/hard") .. " " .. q(comp .. "/hard"))
    sh("echo x > " .. q(comp .. "/theirs/x.txt") .. " && chown nobody " .. q(comp .. "/theirs"))
    local u = assert(users.lookup("nobody"))
    local ok, why
    -- as the node calls it: in a coroutine of its engine
    acoro.run(function() ok, why = users.give(comp, u) end)
    assert.is_true(ok, why)
    for _, p in ipairs({ "", "/sent.txt", "/sub", "/sub/inner.txt", "/theirs", "/theirs/x.txt" }) do
      assert.equal("nobody", owner(comp .. p), p)
    end
    for _, p in ipairs({ "/outside", "/outside/linked", "/outside/hard" }) do
      assert.equal("root", owner(top .. p), p)
    end
    assert.equal("root", owner(comp .. "/link")) -- the link itself too
    -- the directory to give must be one, not a link to one
    acoro.run(function() ok, why = users.give(comp .. "/dirlink", u) end)
    assert.is_nil(ok)
    assert.matches("^cannot give .*/dirlink to nobody: ", why)
    assert.equal("root", owner(out))
  end)
end)

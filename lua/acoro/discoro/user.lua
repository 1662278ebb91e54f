-- acoro.discoro.user: acoro-node's --user, on the daemon's side. The node
-- runs as root; each server it starts becomes the user itself (the acoro
-- CLI's --user: groups, gid, uid, before the computation's code can run),
-- and the computation's directory and the files sent into it are given to
-- that user here, so that its servers can work in it.
local ffi = require "ffi"
local acoro = require "acoro"

local M = {}

-- one declaration a call: another module may have made any of them
for _, decl in ipairs({
  [[struct passwd { char *pw_name; char *pw_passwd; unsigned int pw_uid; unsigned int pw_gid;
    char *pw_gecos; char *pw_dir; char *pw_shell; };]],
  "struct passwd *getpwnam(const char *name);",
}) do pcall(ffi.cdef, decl) end

-- lookup(name) -> {name=, uid=, gid=} | nil, why: only when this process
-- runs as root (anyone else cannot give its servers to another user).
function M.lookup(name)
  local me = acoro.fs.getuid()
  if me ~= 0 then
    return nil, ("--user needs the node to run as root (it runs as uid %d): a node started as the"
      .. " user it would drop to needs no --user"):format(me)
  end
  local pw = ffi.C.getpwnam(name)
  if pw == nil then return nil, "--user: no user " .. name end
  return { name = name, uid = tonumber(pw.pw_uid), gid = tonumber(pw.pw_gid) }
end

-- Gives the directory path, and what this process (root) owns under it, to
-- the user: the files the node wrote there. Its servers may already run code
-- as the user in that tree (node_setup's, or another computation's of the
-- same user), so the walk is made in C on descriptors that never follow a
-- link, and a file with another name elsewhere (a hard link) stays as it
-- is: a chown by path could be led out of the tree. true | nil, why.
function M.give(path, u)
  local ok, err = require("acoro.core").process.give_tree(path, u.uid, u.gid)
  if not ok then return nil, ("cannot give %s to %s: %s"):format(path, u.name, tostring(err)) end
  return true
end

return M

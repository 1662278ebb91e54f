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
  "int lchown(const char *path, unsigned int owner, unsigned int group);",
  "char *strerror(int errnum);",
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

-- Gives path and everything under it to the user, never following a
-- symbolic link (lchown; a link's target is left alone). true | nil, why.
function M.give(path, u)
  if ffi.C.lchown(path, u.uid, u.gid) ~= 0 then
    return nil, ("cannot give %s to %s: %s"):format(path, u.name, ffi.string(ffi.C.strerror(ffi.errno())))
  end
  local st = acoro.fs.lstat(path)
  if st and st.type == "directory" then
    for _, name in ipairs(acoro.fs.readdir(path) or {}) do
      local ok, why = M.give(path .. "/" .. name, u)
      if not ok then return nil, why end
    end
  end
  return true
end

return M

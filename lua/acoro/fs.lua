-- acoro.fs: files and file-system calls that suspend only the calling
-- coroutine. The C half (bindings/lfs.c, core/fs.c) runs each call on
-- libuv's thread pool as an operation; this file waits for it ("start; park
-- until done; read the result"). Every call that waits takes an optional
-- timeout as its last argument: a request already running on the pool
-- cannot be stopped, so on timeout the call returns nil, "timeout",
-- "ETIMEDOUT" and the request finishes (and frees itself) later.
--
-- Errors: misuse (wrong types, a bad mode, a closed file) raises; expected
-- failures return nil, "ENOENT: no such file or directory", "ENOENT".
local fs = {}

local cfs, park, check, now, K_TIMEOUT
local type, error, tostring = type, error, tostring

local File = {}
local DEFAULT_MAX_LINE = 1024 * 1024
local file_mt

-- NaN passes every comparison's "else" branch (NaN < min is false), so it
-- is refused by name: as a timeout it would wait for ever or fail deep in
-- the engine with a misleading "invalid argument".
local argcheck = require "acoro.check"
local check_number = argcheck.number

-- A time libuv can set (it casts to time_t): finite, within +-1e15 s.
local function check_time(v, what, name)
  if type(v) ~= "number" or not (v >= -1e15 and v <= 1e15) then
    error(("acoro: %s: %s must be a finite number of seconds, got %s"):format(what, name, tostring(v)), 3)
  end
end

local function check_path(p, what, name, level)
  if type(p) ~= "string" then
    error(("acoro: %s: %s must be a string, got %s"):format(what, name or "path", type(p)),
      level or 3)
  end
end

local function check_open(f, what)
  if not f:is_open() then error(("acoro: %s: the file is closed"):format(what), 3) end
end

local function deadline_of(timeout, what)
  check_number(timeout, what, "timeout")
  return timeout and now() + timeout
end

-- The start of every call on one path: the caller must be a coroutine that
-- may wait, path a string (an error blames the caller's caller), timeout a
-- number or nil. Returns the deadline.
local function path_call(what, path, timeout)
  check(what)
  check_path(path, what, nil, 4)
  return deadline_of(timeout, what)
end

local left = require("acoro.io").left
local I = require "acoro.internal"

-- Waits for an operation: true once done, false if the deadline came first.
local function await(op, deadline)
  while true do
    local done, err, code = op:_wait(left(deadline))
    if done then return true end
    if code == "EWAITING" then argcheck.misuse("acoro: file: " .. err) end
    if park() == K_TIMEOUT then return false end
  end
end

-- Waits and returns the operation's result (or nil, "timeout").
local function finish(deadline, op, err, code)
  if not op then return nil, err, code end
  if not await(op, deadline) then return nil, "timeout", "ETIMEDOUT" end
  return op:_result()
end

------------------------------------------------------------------------------
-- Paths.

-- acoro.fs.open(path [, mode [, timeout]]) -> file | nil, err, code
-- An x after w ("wx", "wbx", "w+x") creates a new file (0600) and fails
-- with EEXIST if the name is taken, even by a symbolic link.
local function valid_mode(m)
  if type(m) ~= "string" then return false end
  if m:match("^[rwa]%+?b?$") or m:match("^[rwa]b%+$") then return true end
  return (m:match("^w%+?b?x$") or m:match("^wb%+x$")) ~= nil
end

function fs.open(path, mode, timeout)
  local deadline = path_call("fs.open", path, timeout)
  if mode == nil then mode = "r" end
  if not valid_mode(mode) then
    error(("acoro: fs.open: invalid mode %s (r, w, a, r+, w+, a+, with b allowed; x after w)")
      :format(tostring(mode)), 2)
  end
  return finish(deadline, cfs.open(path, mode))
end

function fs.stat(path, timeout)
  local deadline = path_call("fs.stat", path, timeout)
  return finish(deadline, cfs.stat(path))
end

-- acoro.fs.lstat(path [, timeout]): as stat, of a symbolic link itself
-- (type "link").
function fs.lstat(path, timeout)
  local deadline = path_call("fs.lstat", path, timeout)
  return finish(deadline, cfs.lstat(path))
end

-- acoro.fs.chmod(path, mode [, timeout]); mode a number, e.g. tonumber("644", 8).
function fs.chmod(path, mode, timeout)
  local deadline = path_call("fs.chmod", path, timeout)
  if type(mode) ~= "number" or not (mode >= 0 and mode <= 4095) or mode % 1 ~= 0 then
    error("acoro: fs.chmod: mode must be a whole number in 0..07777, got " .. tostring(mode), 2)
  end
  return finish(deadline, cfs.chmod(path, mode))
end

-- acoro.fs.utime(path, atime, mtime [, timeout]): times in seconds since
-- the epoch (fractions kept as far as the file system does).
function fs.utime(path, atime, mtime, timeout)
  local deadline = path_call("fs.utime", path, timeout)
  check_time(atime, "fs.utime", "atime")
  check_time(mtime, "fs.utime", "mtime")
  return finish(deadline, cfs.utime(path, atime, mtime))
end

-- acoro.fs.opendir(path [, timeout]) -> dir | nil, err, code: the
-- directory opened as a file, for the *at methods (see "Under a
-- directory" below).
function fs.opendir(path, timeout)
  local deadline = path_call("fs.opendir", path, timeout)
  return finish(deadline, cfs.opendir(path))
end

-- acoro.fs.statfs(path [, timeout]) -> {avail=, total=}: bytes free to
-- this user and the size of the file system holding path.
function fs.statfs(path, timeout)
  local deadline = path_call("fs.statfs", path, timeout)
  return finish(deadline, cfs.statfs(path))
end

function fs.unlink(path, timeout)
  local deadline = path_call("fs.unlink", path, timeout)
  return finish(deadline, cfs.unlink(path))
end

function fs.rename(from, to, timeout)
  check("fs.rename")
  check_path(from, "fs.rename", "from")
  check_path(to, "fs.rename", "to")
  local deadline = deadline_of(timeout, "fs.rename")
  return finish(deadline, cfs.rename(from, to))
end

-- acoro.fs.mkdir(path [, mode [, timeout]]); mode defaults to 0777 (octal,
-- less the umask): pass a number, e.g. tonumber("755", 8).
function fs.mkdir(path, mode, timeout)
  local deadline = path_call("fs.mkdir", path, timeout)
  check_number(mode, "fs.mkdir", "mode", 0)
  return finish(deadline, cfs.mkdir(path, mode))
end

function fs.rmdir(path, timeout)
  local deadline = path_call("fs.rmdir", path, timeout)
  return finish(deadline, cfs.rmdir(path))
end

-- acoro.fs.readdir(path [, timeout]) -> {names...} (sorted; no "." or "..")
function fs.readdir(path, timeout)
  local deadline = path_call("fs.readdir", path, timeout)
  local names, err, code = finish(deadline, cfs.readdir(path))
  if names then table.sort(names) end
  return names, err, code
end

------------------------------------------------------------------------------
-- Reading. fill waits until `want` bytes are buffered or reading ended:
-- true, or false on timeout, or nil, err, code when a read failed.

local function fill(f, want, deadline, all)
  while f:_buffered() < want and not f:_status() do
    local op = f:_fill(want - f:_buffered(), all)
    if not await(op, deadline) then return false end
    local ok, err, code = op:_result()
    if not ok then return nil, err, code end
  end
  return true
end

-- What ended reading: "eof", or message, code.
local function status(f)
  local r, code = f:_status()
  return r or "eof", code
end

-- The next line (its "\n" included, at most max bytes), or nil and why
-- there is none; then nothing is taken: an unfinished line, or the start of
-- one too long, stays buffered. The rule of streams' (io.lua).
local function next_line(f, max, deadline)
  local scanned = 0
  while true do
    local line = f:_take_line(max, scanned)
    if line then return line end
    local have = f:_buffered()
    if have > max then return argcheck.line_too_long(max) end
    if f:_status() then return nil, status(f) end
    scanned = have
    local ok, err, code = fill(f, have + 1, deadline)
    if ok == false then return nil, "timeout", "ETIMEDOUT" end
    if ok == nil and f:_buffered() == 0 then return nil, err, code end
  end
end

-- f:readline([max [, timeout]]) -> the line with its "\n" (the last line
-- may lack it) | nil, "eof" | nil, "line over the N-byte limit", "EMSGSIZE"
-- (max, 1 MB by default; nothing taken) | nil, err, code.
function File:readline(max, timeout)
  check("readline")
  check_open(self, "readline")
  check_number(max, "readline", "max", 1)
  local line, r, code = next_line(self, max or DEFAULT_MAX_LINE, deadline_of(timeout, "readline"))
  if line then return line end
  if code == "EMSGSIZE" or code == "ETIMEDOUT" then return nil, r, code end
  local have = self:_buffered() -- the last line, without its "\n"
  if have > 0 then return self:_take(have) end
  return nil, r, code
end

-- Everything to the end of the file: on a regular file one pool job (one
-- fstat, one buffer, reads to EOF) and one string, so that read("a") costs
-- about what io's does.
local function read_all(f, deadline)
  while not f:_status() do
    local ok, err, code = fill(f, f:_buffered() + 1, deadline, true)
    if ok == false then return nil, "timeout", "ETIMEDOUT" end
    if ok == nil then return nil, err, code end
  end
  local r, code = f:_status()
  if r ~= "eof" then return nil, r, code end
  return f:_take(f:_buffered())
end

-- f:read([fmt [, timeout]]) as Lua's file:read with one format: a byte
-- count (nil at the end of the file), "a" (everything; "" at the end),
-- "l" (a line without its "\n"; nil at the end), "L" (with it).
function File:read(fmt, timeout)
  check("read")
  check_open(self, "read")
  if fmt == nil then fmt = "l" end
  if type(fmt) == "string" then fmt = fmt:gsub("^%*", "") end
  if fmt == "a" then
    return read_all(self, deadline_of(timeout, "read"))
  elseif fmt == "l" or fmt == "L" then
    local line, err, code = self:readline(nil, timeout)
    if not line then
      if err == "eof" then return nil end
      return nil, err, code
    end
    if fmt == "l" and line:byte(-1) == 10 then line = line:sub(1, -2) end
    return line
  elseif type(fmt) ~= "number" or fmt ~= fmt or fmt < 0 then
    error("acoro: read: expected a byte count, \"a\", \"l\" or \"L\", got " .. tostring(fmt), 2)
  end
  local deadline = deadline_of(timeout, "read")
  local ok, err, code = fill(self, fmt, deadline)
  if ok == false then return nil, "timeout", "ETIMEDOUT" end
  local have = self:_buffered()
  if have == 0 then
    if fmt == 0 and not self:_status() then return "" end
    if ok == nil then return nil, err, code end
    local r, c = self:_status()
    if r == "eof" then return nil end
    return nil, r, c
  end
  return self:_take(fmt)
end

-- f:recv([max [, timeout]]) -> up to max bytes (64 KB) | nil, "eof"
-- (the stream method, for acoro.stdin over a file).
function File:recv(max, timeout)
  check("recv")
  check_open(self, "recv")
  check_number(max, "recv", "max", 1)
  local ok, err, code = fill(self, 1, deadline_of(timeout, "recv"))
  if ok == false then return nil, "timeout", "ETIMEDOUT" end
  if self:_buffered() > 0 then return self:_take(max or 65536) end
  if ok == nil then return nil, err, code end
  return nil, status(self)
end

-- for line in f:lines([max [, timeout]]) do ... end: lines without their
-- "\n"; as s:lines, a line over max, a timeout or a read error raises.
function File:lines(max, timeout)
  check_open(self, "lines")
  check_number(max, "lines", "max", 1)
  check_number(timeout, "lines", "timeout")
  return function()
    local line, err, code = self:readline(max, timeout)
    if not line then
      if err == "eof" then return nil end
      argcheck.lines_failed("f:lines", err, code)
    end
    if line:byte(-1) == 10 then line = line:sub(1, -2) end
    return line
  end
end

------------------------------------------------------------------------------
-- Writing, seeking, closing.

local function write(f, data, timeout, what)
  check(what)
  if not f:is_open() then error(("acoro: %s: the file is closed"):format(what), 3) end
  if type(data) ~= "string" then
    if type(data) ~= "number" then
      error(("acoro: %s: expected a string, got %s"):format(what, type(data)), 3)
    end
    data = tostring(data)
  end
  local deadline = deadline_of(timeout, what)
  return finish(deadline, f:_write(data))
end

-- f:write(data [, timeout]) -> f | nil, err, code (once written).
function File:write(data, timeout)
  local n, err, code = write(self, data, timeout, "write")
  if not n then return nil, err, code end
  return self
end

-- f:send(data [, timeout]) -> #data | nil, err, code (the stream method).
function File:send(data, timeout)
  return write(self, data, timeout, "send")
end

-- Writes are on the disk's side once write returned: nothing to flush.
function File:flush()
  if not self:is_open() then error("acoro: flush: the file is closed", 2) end
  return self
end

local WHENCE = { set = 0, cur = 1, ["end"] = 2 }

-- f:seek([whence [, offset [, timeout]]]) -> position | nil, err, code
function File:seek(whence, offset, timeout)
  check("seek")
  check_open(self, "seek")
  local w = WHENCE[whence or "cur"]
  if not w then error("acoro: seek: whence must be \"set\", \"cur\" or \"end\", got " .. tostring(whence), 2) end
  check_number(offset, "seek", "offset")
  local deadline = deadline_of(timeout, "seek")
  if w == 1 and (offset or 0) == 0 then return self:_tell() end
  return finish(deadline, self:_seek(w, offset or 0))
end

-- f:chmod(mode [, timeout]), f:utime(atime, mtime [, timeout]),
-- f:stat([timeout]): as fs.chmod, fs.utime and fs.stat, on the open file
-- itself (its descriptor), whatever its name has become meanwhile.
function File:chmod(mode, timeout)
  check("chmod")
  check_open(self, "chmod")
  if type(mode) ~= "number" or not (mode >= 0 and mode <= 4095) or mode % 1 ~= 0 then
    error("acoro: chmod: mode must be a whole number in 0..07777, got " .. tostring(mode), 2)
  end
  local deadline = deadline_of(timeout, "chmod")
  return finish(deadline, self:_chmod(mode))
end

function File:utime(atime, mtime, timeout)
  check("utime")
  check_open(self, "utime")
  check_time(atime, "utime", "atime")
  check_time(mtime, "utime", "mtime")
  local deadline = deadline_of(timeout, "utime")
  return finish(deadline, self:_utime(atime, mtime))
end

function File:stat(timeout)
  check("stat")
  check_open(self, "stat")
  local deadline = deadline_of(timeout, "stat")
  return finish(deadline, self:_stat())
end

------------------------------------------------------------------------------
-- Under a directory (a file from fs.opendir or d:openat(name, "d")): calls
-- on one name in it that never follow a symbolic link at that name
-- (openat with O_NOFOLLOW, fstatat with AT_SYMLINK_NOFOLLOW, renameat,
-- unlinkat), so that a directory other users may write is used without
-- the races of paths: walk down with d:openat(name, "d") (a link there
-- gives ELOOP or ENOTDIR) and act on names in the last one. A name is one
-- component, not "", "." or "..", without "/" (else it raises).

local function check_name(name, what, arg)
  if type(name) ~= "string" or name == "" or name == "." or name == ".."
    or name:find("/", 1, true) or name:find("\0", 1, true) then
    error(("acoro: %s: %s must be one file name (no \"/\", not \".\" or \"..\"), got %s")
      :format(what, arg or "name", type(name) == "string" and ("%q"):format(name) or type(name)), 3)
  end
end

-- d:openat(name [, mode [, timeout]]) -> file: mode as fs.open's ("x"
-- included), or "d" for a subdirectory (to walk down with).
function File:openat(name, mode, timeout)
  check("openat")
  check_open(self, "openat")
  check_name(name, "openat")
  if mode == nil then mode = "r" end
  if mode ~= "d" and not valid_mode(mode) then
    error(("acoro: openat: invalid mode %s (as fs.open's, or \"d\")"):format(tostring(mode)), 2)
  end
  local deadline = deadline_of(timeout, "openat")
  return finish(deadline, self:_openat(name, mode))
end

-- d:mkdirat(name [, mode [, timeout]]) -> true (mode as fs.mkdir's)
function File:mkdirat(name, mode, timeout)
  check("mkdirat")
  check_open(self, "mkdirat")
  check_name(name, "mkdirat")
  check_number(mode, "mkdirat", "mode", 0)
  local deadline = deadline_of(timeout, "mkdirat")
  return finish(deadline, self:_mkdirat(name, mode))
end

-- d:lstatat(name [, timeout]) -> as fs.lstat's
function File:lstatat(name, timeout)
  check("lstatat")
  check_open(self, "lstatat")
  check_name(name, "lstatat")
  local deadline = deadline_of(timeout, "lstatat")
  return finish(deadline, self:_lstatat(name))
end

-- d:renameat(from, to [, timeout]) -> true: both names in d; a link at
-- `to` is replaced (never followed).
function File:renameat(from, to, timeout)
  check("renameat")
  check_open(self, "renameat")
  check_name(from, "renameat", "from")
  check_name(to, "renameat", "to")
  local deadline = deadline_of(timeout, "renameat")
  return finish(deadline, self:_renameat(from, to))
end

-- d:unlinkat(name [, timeout]), d:rmdirat(name [, timeout]) -> true
function File:unlinkat(name, timeout)
  check("unlinkat")
  check_open(self, "unlinkat")
  check_name(name, "unlinkat")
  local deadline = deadline_of(timeout, "unlinkat")
  return finish(deadline, self:_unlinkat(name, false))
end

function File:rmdirat(name, timeout)
  check("rmdirat")
  check_open(self, "rmdirat")
  check_name(name, "rmdirat")
  local deadline = deadline_of(timeout, "rmdirat")
  return finish(deadline, self:_unlinkat(name, true))
end

-- f:close([timeout]) -> true | nil, err, code. A second close raises.
function File:close(timeout)
  check("close")
  check_open(self, "close")
  local deadline = deadline_of(timeout, "close")
  return finish(deadline, self:_close())
end

-- acoro.stdin (stdout, stderr) when it is a regular file (acoro.io).
function I.fs_from_fd(fd)
  return cfs.from_fd(fd)
end

-- acoro.fs.sha256() -> h: h:update(s) (returns h), h:hex() once at the end.
function fs.sha256() return cfs.sha256() end

-- n random bytes (OpenSSL's CSPRNG) as 2n hex digits | nil, err: names
-- nobody can predict (acoro.files' temporary files).
function I.fs_random_hex(n)
  local b, err = cfs.random(n)
  if not b then return nil, err end
  return (b:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

-- This process's real user id.
function fs.getuid() return cfs.getuid() end

function fs.is_file(x)
  return getmetatable(x) == file_mt
end

function fs.init(m, c)
  cfs = c
  park, check, now, K_TIMEOUT = I.io_park, I.io_check, m.now, I.TIMEOUT
  file_mt = c.file_mt
  for k, f in pairs(File) do file_mt.__index[k] = f end
  m.fs = fs
  return fs
end

return fs

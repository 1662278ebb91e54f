-- acoro.files: files between nodes. acoro.send_file
-- streams a regular file to a peer's dest_path in chunks over the node's
-- links (paced by the busy limit and by the receiver's acknowledgements);
-- acoro.del_file removes one there. Built over the distribution's extension table
-- (D) and acoro.fs (every disk call on libuv's thread pool).
--
-- Protocol (operations file_* of acoro.dist.protocol; S = sender, R = receiver):
--   S->R {BEGIN, req, skey, dir, name, size, mtime, mode, overwrite, sha256,
--         timeout}: R checks the path, max_file_size and what is there, then
--         answers (D.answer) {true, tid} | "identical" | an error string.
--   S->R {DATA, tid, bytes}: in order (one link keeps its order).
--   R->S {ACK, skey, bytes written | false, why}: after each write, or once
--         with false when R gave the transfer up.
--   S->R {END, req, tid}: R checks size and hash, sets mode and mtime,
--         renames the temporary file into place and answers true | error.
--   S->R {ABORT, tid}: S gave up; R removes its temporary file.
--   S->R {DEL, req, dir, name}: answered true | error.
-- R writes into a temporary file in the destination directory (".NAME.PID-
-- RANDOM.acoro-part", RANDOM 128 bits from a CSPRNG, created with
-- O_EXCL|O_NOFOLLOW: a local user who can write there can neither predict
-- the name nor have R open a link planted at it), sets its mode and mtime
-- on the descriptor, and renames it only once it is complete and verified,
-- so a failed transfer leaves no partial file. R reaches the directory
-- through directory handles opened one in the other from dest_path (never
-- through a link) and creates, checks, renames and removes in the last
-- one: a directory swapped for a link between a check and a use cannot
-- lead anything outside dest_path, as paths would. R range-checks
-- all a peer announces before anything touches the disk, and answers a
-- refusal with its reason (and logs it). A receiving process that was
-- killed cannot remove its own: the next transfer into that directory
-- removes the temporary files of processes that no longer run (the PID in
-- the name; the check is this host's, as the default dest_path is).
local I = require "acoro.internal"
local check = require "acoro.check" -- check.fail: nil, why, code (docs/lua-api-notes.md, Errors)
local logger = require "acoro.log"
local M = {}

local bit = require "bit"
local ffi = require "ffi"

ffi.cdef [[
int getpid(void);
int kill(int pid, int sig);
]]
local ESRCH = 3
local MY_PID = ffi.C.getpid()

-- True when no process `pid` runs on this host (kill(pid, 0) says ESRCH).
local function pid_gone(pid)
  return ffi.C.kill(pid, 0) ~= 0 and ffi.errno() == ESRCH
end

local CHUNK = 256 * 1024   -- bytes per DATA message
local WINDOW = 8           -- chunks S may have unacknowledged (2 MB)
local DEFAULT_TIMEOUT = 60 -- seconds without progress before "timeout"
local MODE_MASK = tonumber("755", 8)

-- What a peer may announce (and send_file may be asked for). A timeout is
-- how long one wait on the other side may take, so an hour is plenty; the
-- size cap stands even where max_file_size is unset (the free space of
-- dest_path's file system is checked too); mtime within +-1e11 s (year
-- 5138) is what every file system here can store.
local MAX_TIMEOUT = 3600
local MAX_SIZE = 2 ^ 42          -- 4 TiB
local MAX_MTIME = 1e11
local NAME_MAX = 255             -- bytes of one path component (NAME_MAX)
local DIR_MAX = 1024             -- bytes of dir
local MAX_RECEIVING = 64         -- transfers from one peer under way at once

function M.init(A, D)
  local fs = A.fs
  local OP = D.OP
  local OP_BEGIN, OP_DATA, OP_ACK, OP_END, OP_ABORT, OP_DEL =
    OP.file_begin, OP.file_data, OP.file_ack, OP.file_end, OP.file_abort, OP.file_del

  local cfg           -- {root=, default=, max=} of the running node, or nil
  local ready         -- {done=, err=, waiters={}}: dest_path prepared (once per node)
  local sends = {}    -- skey -> {peer=, waiter=, acked=, failed=}: our outgoing transfers
  local recvs = {}    -- tid -> receiving transfer (see begin_transfer)
  local gone = {}     -- tid -> {peer=, why=}: given up before the sender's END came
  local next_key = 0

  local function log(...)
    logger.warn("files: ", table.concat({ ... }))
  end

  ----------------------------------------------------------------------------
  -- dest_path and containment.

  local function default_root()
    local tmp = os.getenv("TMPDIR")
    if tmp == nil or tmp == "" then tmp = "/tmp" end
    return (tmp:gsub("/+$", "")) .. "/acoro-" .. tostring(fs.getuid())
  end

  -- Creates the missing directories of an absolute or relative path.
  local function mkdirs(path, mode)
    local st = fs.lstat(path)
    if st then return st end
    local parent = path:match("^(.+)/[^/]+$")
    if parent and parent ~= "" then mkdirs(parent, mode) end
    local ok, err, code = fs.mkdir(path, mode)
    if not ok and code ~= "EEXIST" then return nil, err end
    return fs.lstat(path)
  end

  -- Makes sure dest_path is there: the default one (a per-user directory in
  -- the shared temp dir) is created 0700 and must be a real directory owned
  -- by us (another user could have made it first, or a symlink elsewhere);
  -- a given one is created if missing and must be a directory. Runs once per
  -- node (again after a failure: the user may have fixed it); callers wait
  -- for the one under way. Returns true | nil, err.
  local function prepare()
    if ready and ready.done and ready.err then ready = nil end
    if ready then
      local r, me = ready, I.running()
      r.waiters[me] = true
      D.wait_until(function() return r.done end, A.now() + DEFAULT_TIMEOUT)
      r.waiters[me] = nil
      if not r.done then return nil, "dest_path: timeout" end
      return r.err == nil or nil, r.err
    end
    local r = { waiters = {} }
    ready = r
    local err
    local st, why = mkdirs(cfg.root, tonumber("700", 8))
    if not st then
      err = "dest_path " .. cfg.root .. ": " .. tostring(why)
    elseif cfg.default and (st.type ~= "directory" or st.uid ~= fs.getuid()) then
      err = "dest_path " .. cfg.root .. " is not a directory owned by this user"
    elseif not cfg.default then
      local st2 = fs.stat(cfg.root)
      if not st2 or st2.type ~= "directory" then err = "dest_path " .. cfg.root .. " is not a directory" end
    end
    r.err, r.done = err, true
    for co in pairs(r.waiters) do I.wake(co) end
    if err then log(err) end
    return err == nil or nil, err
  end

  -- dir (relative, "/"-separated) and name -> their components, or nil, err.
  -- Neither may be absolute, hold "..", a NUL byte (C would cut the path
  -- there) or another control character (a name goes into log lines); name
  -- is one component; lengths are bounded (NAME_MAX, DIR_MAX).
  local ESCAPES = "path escapes dest_path"
  local function split(dir, name)
    if dir:find("\0", 1, true) or name:find("\0", 1, true) then return nil, "bad path (NUL byte)" end
    if dir:find("[%c]") or name:find("[%c]") then return nil, "bad path (control character)" end
    if #dir > DIR_MAX then return nil, ("bad path (dir longer than %d bytes)"):format(DIR_MAX) end
    if #name > NAME_MAX then return nil, ("bad file name (longer than %d bytes)"):format(NAME_MAX) end
    if dir:sub(1, 1) == "/" then return nil, ESCAPES end
    local parts = {}
    for comp in dir:gmatch("[^/]+") do
      if comp == ".." then return nil, ESCAPES end
      if #comp > NAME_MAX then return nil, ("bad path (a component longer than %d bytes)"):format(NAME_MAX) end
      if comp ~= "." then parts[#parts + 1] = comp end
    end
    -- (a name like our temporary files' could clobber a transfer under way)
    if name == "" or name == "." or name == ".." or name:find("/", 1, true)
      or name:find("%.acoro%-part$") then
      return nil, "bad file name: " .. name
    end
    return parts
  end

  local function close_all(dirs)
    for i = 1, #dirs do
      if dirs[i]:is_open() then pcall(dirs[i].close, dirs[i]) end
    end
  end

  -- Walks from dest_path down the parts through directory handles, each
  -- opened in the one before (d:openat(name, "d"), which never follows a
  -- symbolic link), creating missing directories when `create`: a link in
  -- the way is refused (it could lead out of dest_path), and a directory
  -- that a local user swaps for a link at any moment cannot lead the walk
  -- or anything done later under the handles elsewhere, as paths would.
  -- Returns the handles (dest_path's first, the directory's last; the
  -- caller closes them), or nil, err.
  local function walk(parts, create)
    local d, err = fs.opendir(cfg.root)
    if not d then return nil, "dest_path " .. cfg.root .. ": " .. tostring(err) end
    local dirs = { d }
    for i = 1, #parts do
      local sub, e, code = d:openat(parts[i], "d")
      if not sub and code == "ENOENT" and create then
        local ok, e2, code2 = d:mkdirat(parts[i], MODE_MASK)
        if ok or code2 == "EEXIST" then
          sub, e, code = d:openat(parts[i], "d")
        else
          e, code = e2, code2
        end
      end
      if not sub then
        local where = table.concat(parts, "/", 1, i)
        local st = (code == "ELOOP" or code == "ENOTDIR") and d:lstatat(parts[i])
        close_all(dirs)
        -- (a directory now: it was a link a moment ago, swapped back)
        if st and (st.type == "link" or st.type == "directory") then
          return nil, ESCAPES .. " (symbolic link " .. where .. ")"
        end
        if code == "ENOTDIR" then return nil, "not a directory: " .. where end
        if code == "ENOENT" then return nil, "no such file" end
        return nil, tostring(e)
      end
      d = sub
      dirs[#dirs + 1] = d
    end
    return dirs
  end

  -- SHA-256 of a file (a path, or a name under the directory handle `dir`,
  -- never through a link), read a chunk at a time: hex | nil, err.
  local function hash_file(path, deadline, dir)
    local f, err
    if dir then f, err = dir:openat(path, "rb") else f, err = fs.open(path, "rb") end
    if not f then return nil, err end
    local h = fs.sha256()
    local ok, why = pcall(function()
      while true do
        local s, e = f:read(CHUNK, deadline and math.max(0, deadline - A.now()))
        if s == nil then return e end
        h:update(s)
      end
    end)
    f:close()
    if not ok then error(why, 0) end
    if why ~= nil then return nil, why end
    return h:hex()
  end

  ----------------------------------------------------------------------------
  -- Receiving.

  local function send_ack(t, written, why)
    if D.peer(t.peer) then D.send_peer(t.peer, D.encode({ OP_ACK, t.skey, written, why })) end
  end

  -- Gives a receiving transfer up (the writer coroutine cleans up).
  local function fail(t, why)
    if t.failed then return end
    t.failed = why
    I.wake(t.writer)
  end

  -- Before the rename: mode and mtime set on the descriptor (never through
  -- the name, which a local user who can write the directory may have
  -- swapped for a link), the file closed, then, in the directory's handle:
  -- the temporary name must still be our file (same inode: else the rename
  -- would put whatever is there now in the file's place), and the final
  -- name no link (rename would replace the link, not write where it
  -- points, but a link in the file's place is refused as at BEGIN).
  -- Returns nil or why not.
  local function finish_file(t)
    local f = t.file
    local m = f:chmod(t.mode, t.idle)
    local u = f:utime(os.time(), t.mtime, t.idle)
    if not (m and u) then return "cannot set mode or modification time" end
    local mine = f:stat(t.idle)
    t.file = nil
    local c, why = f:close(t.idle)
    if not c then return "close failed: " .. tostring(why) end
    if not mine then return "cannot stat the temporary file" end
    local tst = t.dir:lstatat(t.tmp, t.idle)
    if not tst or tst.type ~= "file" or tst.ino ~= mine.ino or tst.dev ~= mine.dev then
      return "the temporary file was replaced (by a local user of the receiver)"
    end
    local st = t.dir:lstatat(t.name, t.idle)
    if st then
      if st.type == "link" then return ESCAPES .. " (symbolic link " .. t.name .. ")" end
      if st.type ~= "file" then return "exists (not a regular file)" end
      if not t.overwrite then return "exists" end
    end
  end

  -- The writer: one daemon coroutine per receiving transfer. It writes the
  -- queued chunks in order, acknowledges each, and at END verifies, sets
  -- mode and mtime, and renames. Whatever ends it, the temporary file goes
  -- unless it was renamed. A transfer idle (nothing new from the sender)
  -- for longer than the sender's timeout plus 10 s is given up.
  local function writer(t)
    local ok, err = pcall(function()
      while not t.failed do
        local idle = A.now() + t.idle
        D.wait_until(function() return t.failed or t.queue[t.qhead] or t.end_req end, idle)
        if t.failed then break end
        local chunk = t.queue[t.qhead]
        if chunk then
          t.queue[t.qhead], t.qhead = nil, t.qhead + 1
          t.queued = t.queued - #chunk
          local w, why = t.file:write(chunk, t.idle)
          if not w then return fail(t, "write failed: " .. tostring(why)) end
          t.sha:update(chunk)
          t.written = t.written + #chunk
          send_ack(t, t.written)
        elseif t.end_req then
          if t.written ~= t.size then return fail(t, ("size mismatch: %d bytes of %d"):format(t.written, t.size)) end
          if t.sha:hex() ~= t.hash then return fail(t, "hash mismatch (did the file change while it was sent?)") end
          local why = finish_file(t)
          if why then return fail(t, why) end
          local r, why2 = t.dir:renameat(t.tmp, t.name, t.idle)
          if not r then return fail(t, "rename failed: " .. tostring(why2)) end
          t.renamed = true
          recvs[t.tid] = nil
          D.answer(t.peer, t.end_req, true)
          return
        else
          return fail(t, "timeout (nothing from the sender)")
        end
      end
    end)
    if not ok then fail(t, tostring(err)) end
    if not t.renamed then
      -- t stays in recvs while this waits for the disk: an END coming now
      -- finds it (t.end_req) and gets the reason
      if t.file then pcall(t.file.close, t.file) end
      pcall(t.dir.unlinkat, t.dir, t.tmp)
      recvs[t.tid] = nil
      if t.end_req then
        D.answer(t.peer, t.end_req, t.failed)
      elseif D.peer(t.peer) then -- its END or ABORT may be on the way: keep why
        gone[t.tid] = { peer = t.peer, why = t.failed }
        send_ack(t, false, t.failed)
      end
    end
  end

  local function whole(v) return type(v) == "number" and v == v and v % 1 == 0 and v > -2 ^ 53 and v < 2 ^ 53 end
  local function show(v) return type(v) == "number" and ("%.17g"):format(v) or type(v) end

  -- A BEGIN's fields, range-checked before anything touches the disk
  -- (m[2], the request, was checked by the caller). Returns nil or why the
  -- transfer is refused: a peer is authenticated but may still be buggy or
  -- hostile, and NaN or 2^53 must not get as far as a file or a deadline.
  local function check_begin(m)
    local skey, dir, name, size, mtime, mode, overwrite, hash, timeout = unpack(m, 3, 11)
    if not whole(skey) then return "bad BEGIN: transfer key " .. show(skey) end
    if type(dir) ~= "string" or type(name) ~= "string" then return "bad BEGIN: dir and name must be strings" end
    if not whole(size) or size < 0 or size > MAX_SIZE then
      return ("bad size %s (a whole number of bytes in 0..%d)"):format(show(size), MAX_SIZE)
    end
    if type(mtime) ~= "number" or not (mtime >= -MAX_MTIME and mtime <= MAX_MTIME) then
      return ("bad mtime %s (seconds since the epoch, finite, within +-%g)"):format(show(mtime), MAX_MTIME)
    end
    if not whole(mode) or mode < 0 or bit.band(mode, bit.bnot(MODE_MASK)) ~= 0 then
      local octal = whole(mode) and mode >= 0 and ("0%o"):format(mode) or show(mode)
      return ("bad mode %s (permission bits within 0755)"):format(octal)
    end
    if type(overwrite) ~= "boolean" then return "bad BEGIN: overwrite must be a boolean" end
    if type(hash) ~= "string" or #hash ~= 64 or hash:find("[^0-9a-f]") then
      return "bad BEGIN: hash must be 64 lowercase hex digits"
    end
    if type(timeout) ~= "number" or not (timeout > 0 and timeout <= MAX_TIMEOUT) then
      return ("bad timeout %s (seconds, in (0, %d])"):format(show(timeout), MAX_TIMEOUT)
    end
  end

  -- Refuses a peer's request: the reason to the peer and to the log. The
  -- log takes at most 20 lines per 10 s (a peer refused in a loop must not
  -- flood it, nor block the engine on a full stderr pipe); the next line
  -- after a quiet spell says how many were left out.
  local quota = { since = -math.huge, lines = 0, dropped = 0 }
  local function refuse(peer, req, what, why)
    local p = D.peer(peer)
    local now = A.now()
    if now - quota.since >= 10 then
      if quota.dropped > 0 then log(quota.dropped, " more refusals not logged") end
      quota.since, quota.lines, quota.dropped = now, 0, 0
    end
    if quota.lines < 20 then
      quota.lines = quota.lines + 1
      log("refused ", what, " from ", p and p.location or "?", ": ", why)
    else
      quota.dropped = quota.dropped + 1
    end
    D.answer(peer, req, why)
  end

  -- Removes the temporary files in the directory d (its path dpath: the
  -- names are read there, then acted on in d) left by receiving processes
  -- that no longer run (killed mid-transfer); once per directory per
  -- process.
  local swept = {}
  local function sweep(d, dpath)
    if swept[dpath] then return end
    swept[dpath] = true
    for _, n in ipairs(fs.readdir(dpath) or {}) do
      local pid = tonumber(n:match("^%..*%.(%d+)%-%x+%.acoro%-part$"))
      if pid and pid ~= MY_PID and pid_gone(pid) then
        local st = d:lstatat(n)
        if st and st.type == "file" then d:unlinkat(n) end
      end
    end
  end

  -- Creates the temporary file in the directory handle d under a fresh
  -- random name, exclusively and without following a link ("wbx"): file,
  -- name | nil, why. A name taken (a 128-bit collision, or someone who read
  -- the directory and raced us) is tried again with another.
  local function create_temp(d, name, idle)
    local why = "?"
    for _ = 1, 4 do
      local r, rerr = I.fs_random_hex(16)
      if not r then return nil, rerr end
      local tmp = (".%s.%d-%s.acoro-part"):format(name:sub(1, 180), MY_PID, r)
      local f, err, code = d:openat(tmp, "wbx", idle)
      if f then return f, tmp end
      why = err
      if code ~= "EEXIST" then break end
    end
    return nil, why
  end

  local function receiving_from(peer)
    local n = 0
    for _, t in pairs(recvs) do
      if t.peer == peer then n = n + 1 end
    end
    return n
  end

  -- BEGIN in the directory handle d (dpath its path, for statfs and
  -- readdir, which only inform): checks what is there, then creates the
  -- temporary file and runs the transfer (the writer) to its end.
  local function begin_in(peer, m, d, dpath)
    local req, skey, _, name, size, mtime, mode, overwrite, hash, timeout = unpack(m, 2, 11)
    local what = ("%q"):format(name)
    local st = d:lstatat(name)
    if st then
      if st.type == "link" then return refuse(peer, req, what, ESCAPES .. " (symbolic link " .. name .. ")") end
      if st.type ~= "file" then return D.answer(peer, req, "exists (not a regular file)") end
      if st.size == size and math.abs(st.mtime - mtime) < 1e-3 then
        -- within the sender's wait for this answer (it allows 50 MB/s)
        local h = hash_file(name, A.now() + timeout + size / 50e6, d)
        if h == hash then return D.answer(peer, req, "identical") end
      end
      if not overwrite then return D.answer(peer, req, "exists") end
    end
    local space = fs.statfs(dpath, timeout)
    if space and size > space.avail then
      return refuse(peer, req, what, ("too large: %d bytes > %d bytes free in dest_path"):format(size, space.avail))
    end
    if receiving_from(peer) >= MAX_RECEIVING then
      return refuse(peer, req, what, ("busy: %d transfers from this peer under way"):format(MAX_RECEIVING))
    end
    if not D.peer(peer) then return end
    next_key = next_key + 1
    local tid = next_key
    sweep(d, dpath)
    local f, tmp = create_temp(d, name, timeout + 10)
    if not f then return refuse(peer, req, what, "cannot create a temporary file: " .. tostring(tmp)) end
    -- (path: only for on_stop, which cannot wait for the pool)
    local t = {
      tid = tid, peer = peer, skey = skey, dir = d, tmp = tmp, path = dpath .. "/" .. tmp,
      name = name, size = size, mtime = mtime, mode = mode, hash = hash, overwrite = overwrite,
      idle = timeout + 10, file = f, sha = fs.sha256(), queue = {}, qhead = 1, qtail = 0,
      queued = 0, received = 0, written = 0,
    }
    t.writer = I.running()
    recvs[tid] = t
    if not D.peer(peer) then fail(t, "unreachable") end
    D.answer(peer, req, { true, tid })
    writer(t)
  end

  -- BEGIN: checks everything before the first byte comes, in a daemon
  -- coroutine (the handler may not wait for the disk). Answers with the
  -- transfer's id, "identical", or why not.
  local function begin_transfer(peer, m)
    local req, _, dir, name, size = unpack(m, 2, 6)
    local bad_field = check_begin(m)
    if bad_field then return refuse(peer, req, "a file", bad_field) end
    local what = ("%q"):format(name)
    local prepared, perr = prepare()
    if not prepared then return D.answer(peer, req, perr) end
    if cfg.max and size > cfg.max then
      return refuse(peer, req, what, ("too large: %d > max_file_size %d"):format(size, cfg.max))
    end
    local parts, err = split(dir, name)
    if not parts then return refuse(peer, req, what, err) end
    local dirs
    dirs, err = walk(parts, true)
    if not dirs then return refuse(peer, req, what, err) end
    local d = table.remove(dirs)
    close_all(dirs)
    local dpath = cfg.root .. (#parts > 0 and "/" .. table.concat(parts, "/") or "")
    local ok, e = pcall(begin_in, peer, m, d, dpath)
    if d:is_open() then pcall(d.close, d) end
    if not ok then error(e, 0) end
  end

  local function spawn_daemon(fn, ...)
    local co = A.spawn(fn, ...)
    co:set_daemon(true)
    return co
  end

  D.on_op(OP_BEGIN, function(peer, m)
    if not cfg then return D.bad(peer, "BEGIN (files): no node options") end
    if not whole(m[2]) then return D.bad(peer, "bad BEGIN (files): no request to answer") end
    spawn_daemon(function()
      local ok, err = pcall(begin_transfer, peer, m)
      if not ok then -- a bug: say it here and to the sender
        log("receiving ", m[5], ": ", tostring(err))
        D.answer(peer, m[2], "receiver failed: " .. tostring(err))
      end
    end)
  end)

  D.on_op(OP_DATA, function(peer, m)
    local t = whole(m[2]) and recvs[m[2]]
    if not t or t.peer ~= peer or t.failed then return end -- given up already
    local s = m[3]
    if type(s) ~= "string" then return fail(t, "bad DATA") end
    t.received = t.received + #s
    if t.received > t.size then
      return fail(t, ("larger than announced: more than %d bytes"):format(t.size))
    end
    if t.queued + #s > 4 * WINDOW * CHUNK then -- the sender ignores the window
      return fail(t, "too much data unacknowledged")
    end
    t.qtail = t.qtail + 1
    t.queue[t.qtail] = s
    t.queued = t.queued + #s
    I.wake(t.writer)
  end)

  D.on_op(OP_END, function(peer, m)
    if not whole(m[2]) or not whole(m[3]) then return D.bad(peer, "bad END (files)") end
    local t = recvs[m[3]]
    if not t or t.peer ~= peer then
      local g = gone[m[3]]
      gone[m[3]] = nil
      return D.answer(peer, m[2], g and g.peer == peer and g.why or "transfer given up")
    end
    t.end_req = m[2]
    I.wake(t.writer)
  end)

  D.on_op(OP_ABORT, function(peer, m)
    if not whole(m[2]) then return D.bad(peer, "bad ABORT (files)") end
    local t = recvs[m[2]]
    if t and t.peer == peer then fail(t, "aborted by the sender") end
    if gone[m[2]] and gone[m[2]].peer == peer then gone[m[2]] = nil end
  end)

  D.on_op(OP_ACK, function(peer, m)
    if not whole(m[2]) then return D.bad(peer, "bad ACK (files)") end
    local s = sends[m[2]]
    if not s or s.peer ~= peer then return end
    if m[3] == false then
      s.failed = type(m[4]) == "string" and m[4] or "refused"
    elseif type(m[3]) == "number" and m[3] > s.acked then
      s.acked = m[3]
    end
    I.wake(s.waiter)
  end)

  -- DEL: removes the file, then its parents while they are empty (never
  -- dest_path itself), each in its parent's handle (see walk). Returns
  -- what to answer.
  local function delete_in(dirs, parts, name)
    local d = dirs[#dirs]
    local st, _, code = d:lstatat(name)
    if not st then return code == "ENOENT" and "no such file" or "cannot stat " .. name end
    if st.type == "link" then return ESCAPES .. " (symbolic link " .. name .. ")" end
    if st.type ~= "file" then return "not a regular file" end
    local ok, why = d:unlinkat(name)
    if not ok then return "cannot remove: " .. tostring(why) end
    for i = #parts, 1, -1 do -- dirs[i + 1] is parts[i], in dirs[i]
      dirs[i + 1]:close()
      if not dirs[i]:rmdirat(parts[i]) then break end -- not empty (or not ours): stop
    end
    return true
  end

  local function delete(peer, req, dir, name)
    local prepared, perr = prepare()
    if not prepared then return D.answer(peer, req, perr) end
    local parts, err = split(dir, name)
    if not parts then return D.answer(peer, req, err) end
    local dirs
    dirs, err = walk(parts, false)
    if not dirs then return D.answer(peer, req, err) end
    local ok, ans = pcall(delete_in, dirs, parts, name)
    close_all(dirs)
    if not ok then error(ans, 0) end
    D.answer(peer, req, ans)
  end

  D.on_op(OP_DEL, function(peer, m)
    if not cfg then return D.bad(peer, "DEL (files): no node options") end
    if not whole(m[2]) or type(m[3]) ~= "string" or type(m[4]) ~= "string" then
      return D.bad(peer, "bad DEL (files)")
    end
    spawn_daemon(delete, peer, m[2], m[3], m[4])
  end)

  -- A peer gone: its transfers here end (temporary files removed), ours to
  -- it fail with "unreachable".
  I.hook("peer_down", "files", function(id)
    for _, t in pairs(recvs) do
      if t.peer == id then fail(t, "unreachable") end
    end
    for tid, g in pairs(gone) do
      if g.peer == id then gone[tid] = nil end
    end
    for _, s in pairs(sends) do
      if s.peer == id and not s.failed then
        s.failed = "unreachable"
        I.wake(s.waiter)
      end
    end
  end)

  -- The node stops (the engine run ends): writer coroutines will not run
  -- again, so their temporary files are removed here, synchronously (the
  -- engine is going; a blocking unlink is acceptable now).
  I.hook("node_stop", "files", function()
    for _, t in pairs(recvs) do os.remove(t.path) end
    recvs, sends, gone, cfg, ready = {}, {}, {}, nil, nil
  end)

  ----------------------------------------------------------------------------
  -- Node options: dest_path=, max_file_size=.

  I.hook("node_check", "files", function(opts)
    local root, max = opts.dest_path, opts.max_file_size
    if root ~= nil and (type(root) ~= "string" or root == "" or root:find("\0", 1, true)) then
      error("acoro.node: dest_path must be a non-empty string, got " .. tostring(root), 0)
    end
    if max ~= nil and (type(max) ~= "number" or max < 0 or max % 1 ~= 0) then
      error("acoro.node: max_file_size must be a whole number of bytes >= 0, got " .. tostring(max), 0)
    end
    return function()
      local r = root and root:gsub("(.)/+$", "%1")
      -- dest_path is made when first needed (a node that never receives a
      -- file touches no disk for it); a bad one is logged then
      cfg = { root = r or default_root(), default = root == nil, max = max }
      ready = nil
    end
  end)

  ----------------------------------------------------------------------------
  -- Sending.

  -- The checks send_file and del_file start with, raising (blaming their
  -- caller) unless location and the file's `name` (argname: what to call it)
  -- are strings, opts is nil or a table of dir= and timeout=, a node runs and
  -- a coroutine calls. Returns opts (a table) and the timeout.
  local function check_call(what, location, argname, name, opts)
    if type(location) ~= "string" then
      error(("acoro.%s: location must be a \"host:port\" string, got %s"):format(what, type(location)), 3)
    end
    if type(name) ~= "string" then
      error(("acoro.%s: %s must be a string, got %s"):format(what, argname, type(name)), 3)
    end
    if opts == nil then
      opts = {}
    elseif type(opts) ~= "table" then
      error(("acoro.%s: options must be a table, got %s"):format(what, type(opts)), 3)
    end
    if opts.dir ~= nil and type(opts.dir) ~= "string" then
      error(("acoro.%s: dir must be a string, got %s"):format(what, type(opts.dir)), 3)
    end
    local tm = opts.timeout
    if tm ~= nil and (type(tm) ~= "number" or not (tm > 0 and tm <= MAX_TIMEOUT)) then
      error(("acoro.%s: timeout must be a number of seconds in (0, %d], got %s")
        :format(what, MAX_TIMEOUT, tostring(tm)), 3)
    end
    if not A.node() then error(("acoro.%s: no node is running (call acoro.node first)"):format(what), 3) end
    if I.running() == nil then error(("acoro.%s: called outside an acoro coroutine"):format(what), 3) end
    return opts, opts.timeout or DEFAULT_TIMEOUT
  end

  -- The peer at location, connecting to it if needed: id | nil.
  local function reach(location, timeout)
    local id = D.peer_at(location)
    if id then return id end
    if location == A.node().location then return nil end -- not a peer of itself
    if not A.peer(location, timeout) then return nil end
    return D.peer_at(location)
  end

  -- Streams f to the receiver's transfer tid, at most WINDOW chunks ahead of
  -- its acknowledgements: true | nil, err.
  local function stream(s, f, tid, size, timeout)
    local sent = 0
    while true do
      local deadline = A.now() + timeout
      D.wait_until(function() return s.failed or sent - s.acked <= (WINDOW - 1) * CHUNK end, deadline)
      if s.failed then return nil, s.failed end
      if sent - s.acked > (WINDOW - 1) * CHUNK then return nil, "timeout" end
      local chunk, err = f:read(CHUNK, timeout)
      if chunk == nil and err ~= nil then return nil, "read failed: " .. tostring(err) end
      if chunk == nil then break end
      sent = sent + #chunk
      if sent > size then return nil, "the file grew while it was sent" end
      local ok, why = D.send_peer(s.peer, D.encode({ OP_DATA, tid, chunk }))
      if not ok then return nil, why == "too large" and why or "unreachable" end
    end
    if sent ~= size then return nil, "the file shrank while it was sent" end
    return true
  end

  -- acoro.send_file(location, path [, {dir=, overwrite=, timeout=}]) -> true | nil, err, code
  function A.send_file(location, path, opts)
    local timeout
    opts, timeout = check_call("send_file", location, "path", path, opts)
    local dir, name = opts.dir or "", path:match("([^/]+)/*$")
    if not name then return check.fail("bad file name: " .. path) end
    local parts, err = split(dir, name)
    if not parts then return check.fail(err) end
    local st
    st, err = fs.stat(path, timeout)
    if not st then return check.fail(err) end
    if st.type ~= "file" then return check.fail("not a regular file") end
    local peer = reach(location, timeout)
    if not peer then return check.fail("unreachable") end
    -- The hash goes first (the receiver compares it with a file already
    -- there, and checks the bytes it gets against it): the file is read
    -- twice, which the page cache makes cheap, for a simpler protocol.
    local hash
    hash, err = hash_file(path, A.now() + math.max(timeout, DEFAULT_TIMEOUT) + st.size / 1e6)
    if not hash then return check.fail(err) end
    next_key = next_key + 1
    local skey = next_key
    local s = { peer = peer, waiter = I.running(), acked = 0 }
    sends[skey] = s
    local f, tid
    local ok, r1, r2 = pcall(function()
      local asked, ans = D.ask(peer, function(req)
        return { OP_BEGIN, req, skey, dir, name, st.size, st.mtime, bit.band(st.mode, MODE_MASK),
          opts.overwrite == true, hash, timeout }
      end, timeout + st.size / 50e6) -- time to hash a file already there too
      if not asked then return nil, ans end
      if ans == "identical" then return true end
      if type(ans) ~= "table" or ans[1] ~= true or type(ans[2]) ~= "number" then
        return nil, type(ans) == "string" and ans or "refused"
      end
      tid = ans[2]
      local e
      f, e = fs.open(path, "rb")
      if not f then return nil, e end
      local sent, why = stream(s, f, tid, st.size, timeout)
      if not sent then return nil, why end
      local done, ans2 = D.ask(peer, function(req) return { OP_END, req, tid } end, timeout)
      tid = nil -- the receiver has it (or said why not)
      if not done then return nil, ans2 end
      if ans2 == true then return true end
      return nil, type(ans2) == "string" and ans2 or "refused"
    end)
    sends[skey] = nil
    if f then pcall(f.close, f) end
    if tid and D.peer(peer) then -- we gave up mid-way: the receiver drops it
      pcall(D.send_peer, peer, D.encode({ OP_ABORT, tid }))
    end
    if not ok then error(r1, 0) end
    if r1 then return true end
    return check.fail(r2)
  end

  -- acoro.del_file(location, name [, {dir=, timeout=}]) -> true | nil, err, code
  function A.del_file(location, name, opts)
    local timeout
    opts, timeout = check_call("del_file", location, "name", name, opts)
    local dir = opts.dir or ""
    local parts, err = split(dir, name)
    if not parts then return check.fail(err) end
    local peer = reach(location, timeout)
    if not peer then return check.fail("unreachable") end
    local asked, ans = D.ask(peer, function(req) return { OP_DEL, req, dir, name } end, timeout)
    if not asked then return check.fail(ans) end
    if ans == true then return true end
    return check.fail(type(ans) == "string" and ans or "refused")
  end
end

return M

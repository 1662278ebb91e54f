-- acoro.cli: the command line of the `acoro` executable (bindings/main.c
-- hands it argv). Runs a script or a string as the main coroutine.
local acoro = require "acoro"

local M = {}

local usage = [==[
usage: acoro [options] [script [args...]]
  -e CODE   run CODE as the main coroutine
  -v        print the version and exit
  -h        print this help and exit
  --listen HOST:PORT    start a node listening there (port 0: any free one)
  --name NAME           the node's name (default: its location)
  --secret-file FILE    the node's shared secret, read from FILE (trailing
                        newline dropped); ACORO_SECRET in the environment
                        works too; never give a secret on the command line;
                        an empty one is refused (no secret: give none)
  --peer HOST:PORT      a peer to stay connected to (repeatable; retried until it answers)
  --gen-secret          print a new random secret (32 bytes from OpenSSL's
                        RAND_bytes, as 64 hex digits) and exit; put it in
                        the --secret-file of every node
  --no-discover         no UDP discovery pings
  --insecure            let a node without a secret listen on a network
                        address and peer with other hosts (without it, such
                        a node stays on loopback: anyone who reaches it could
                        run its registered functions)
  --tls-cert FILE       put every peer link on TLS with this certificate (PEM;
                        it must name the node's host) ...
  --tls-key FILE        ... and its key (both needed for TLS) ...
  --tls-ca FILE         ... verifying peers' certificates against this CA, which
                        makes them show one too (mutual authentication)
  --dest-path DIR       where files sent by peers go (default: acoro-UID in
                        the temp dir)
  --max-file-size BYTES the largest file a peer may send (default: no limit)
  --ext-addr HOST:PORT  where peers reach this node when that is not where it
                        listens (NAT, an ssh tunnel forwarding there): the
                        location it announces
  --max-memory BYTES    limit this process's address space (RLIMIT_AS): an
                        allocation past it fails ("not enough memory")
  --user NAME           (root only) become that user (its groups, gid, uid)
                        once the options are read, before the script runs
  --        stop handling options
  -         run the script read from standard input
The script runs as the main coroutine with `arg` set as `lua` does; acoro
exits 0 once every non-daemon coroutine has ended, and 1 if the main
coroutine raised an error (its traceback goes to stderr).]==]

-- The CLI's own reports (a bad command line, the main coroutine's error)
-- are the program's last words: they go to acoro.log's default writer
-- ("acoro: MSG" on stderr), past any writer the script set, which may
-- write to something gone with the run.
local function report(msg)
  acoro.log.default_writer("error", msg)
end

local function fail(msg)
  report(msg)
  return 1
end

-- A run a signal ended (after the shutdown hooks) exits 128 + its number,
-- as a shell reports a process the signal killed: 130 for SIGINT, 143 for
-- SIGTERM; the one line says which.
local function run_chunk(chunk, ...)
  local ok, err = pcall(acoro.run, chunk, ...)
  if ok then return 0 end
  report(require("acoro.check").one_prefix((tostring(err):gsub("^acoro: ", "", 1))))
  local sig = require("acoro.internal").stop_signal or 0
  if sig ~= 0 and type(err) == "string" and err:find("^acoro: ") then return 128 + sig end
  if err == "acoro: interrupted" then return 130 end
  return 1
end

-- main(argv0, ...) -> exit status
function M.main(argv0, ...)
  -- `acoro-node` is a link to this executable: the distributed-computing daemon
  if argv0 and argv0:match("acoro%-node$") then return require("acoro.discoro.daemon").main(argv0, ...) end
  -- `acoro-scheduler` too: the scheduler that several clients share
  if argv0 and argv0:match("acoro%-scheduler$") then return require("acoro.discoro.scheduler").main(argv0, ...) end
  local argv = { ... }
  local i, code, node_opts = 1, nil, nil
  local max_memory, run_as
  while i <= #argv do
    local a = argv[i]
    if a == "-v" then
      io.stdout:write("acoro ", acoro.version, "\n")
      return 0
    elseif a == "--gen-secret" then
      local secret, err = require("acoro.core").net.gen_secret()
      if not secret then return fail("--gen-secret: " .. tostring(err)) end
      io.stdout:write(secret, "\n")
      return 0
    elseif a == "-h" or a == "--help" then
      io.stdout:write(usage, "\n")
      return 0
    elseif a == "-e" then
      code = argv[i + 1]
      if not code then return fail("-e needs an argument\n" .. usage) end
      i = i + 2
    elseif a == "--listen" or a == "--name" or a == "--secret-file" or a == "--peer"
        or a == "--tls-cert" or a == "--tls-key" or a == "--tls-ca" then
      local v = argv[i + 1]
      if not v then return fail(a .. " needs an argument\n" .. usage) end
      node_opts = node_opts or { peers = {} }
      if a:find("^%-%-tls%-") then
        node_opts.tls = node_opts.tls or {}
        node_opts.tls[a:sub(7)] = v
      elseif a == "--listen" then
        local host, port = v:match("^(.*):(%d+)$")
        if not host or host == "" then return fail("--listen needs HOST:PORT, got " .. v) end
        node_opts.host, node_opts.port = host, tonumber(port)
      elseif a == "--name" then
        node_opts.name = v
      elseif a == "--peer" then
        node_opts.peers[#node_opts.peers + 1] = v
      else
        local f, err = io.open(v, "rb")
        if not f then return fail("--secret-file: " .. err) end
        node_opts.secret = f:read("*a"):gsub("\r?\n$", "")
        f:close()
        -- an empty secret is a mistake, never "no secret" (docs/security.md)
        if node_opts.secret == "" then return fail("--secret-file: " .. v .. " is empty") end
      end
      i = i + 2
    elseif a == "--max-memory" or a == "--user" then
      local v = argv[i + 1]
      if not v then return fail(a .. " needs an argument\n" .. usage) end
      if a == "--user" then
        run_as = v
      else
        max_memory = v:match("^%d+$") and tonumber(v)
        if not max_memory or max_memory < 1 then return fail("--max-memory needs a number of bytes, got " .. v) end
      end
      i = i + 2
    elseif a == "--dest-path" or a == "--max-file-size" or a == "--ext-addr" then
      local v = argv[i + 1]
      if not v then return fail(a .. " needs an argument\n" .. usage) end
      node_opts = node_opts or { peers = {} }
      if a == "--ext-addr" then
        if not v:match("^.+:%d+$") then return fail("--ext-addr needs HOST:PORT, got " .. v) end
        node_opts.ext_addr = v
      elseif a == "--dest-path" then
        node_opts.dest_path = v
      else
        local n = v:match("^%d+$") and tonumber(v)
        if not n then return fail("--max-file-size needs a number of bytes, got " .. v) end
        node_opts.max_file_size = n
      end
      i = i + 2
    elseif a == "--no-discover" or a == "--insecure" then
      node_opts = node_opts or { peers = {} }
      if a == "--insecure" then node_opts.insecure = true else node_opts.discover = false end
      i = i + 1
    elseif a == "--" then
      i = i + 1
      break
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      return fail("unknown option " .. a .. "\n" .. usage)
    else
      break
    end
  end
  if node_opts and node_opts.tls and not (node_opts.tls.cert and node_opts.tls.key) then
    return fail("--tls-cert and --tls-key go together (TLS needs both)")
  end
  -- Limits and the user before any code of the script: the secret file
  -- has been read (it may be root's alone); the script and the modules
  -- still to load must be readable by the user.
  local proc = require("acoro.core").process
  if max_memory then
    local ok, err = proc.limit_memory(max_memory)
    if not ok then return fail("--max-memory: " .. err) end
  end
  if run_as then
    local uid = acoro.fs.getuid()
    if uid ~= 0 then return fail(("--user needs root: this process runs as uid %d"):format(uid)) end
    local ok, err = proc.run_as(run_as)
    if not ok then return fail("--user: " .. err) end
  end
  local script = argv[i]
  -- `arg` as lua sets it: the script at 0, its arguments from 1, the
  -- interpreter and options before.
  local arg = { [-i] = argv0 }
  for j = 1, #argv do arg[j - i] = argv[j] end
  if not script then arg[0] = argv0 end
  _G.arg = arg
  if code then
    local chunk, err = loadstring(code, "=(command line)")
    if not chunk then return fail(err) end
    local status = run_chunk(chunk)
    if status ~= 0 or not script then return status end
  end
  if not script then
    if code then return 0 end
    io.stdout:write(usage, "\n")
    return 0
  end
  local chunk, err
  if script == "-" then
    chunk, err = loadstring(io.stdin:read("*a"), "=stdin")
  else
    chunk, err = loadfile(script)
  end
  if not chunk then return fail(err) end
  if node_opts then -- the node starts in the run, before the script
    local env = os.getenv("ACORO_SECRET")
    if node_opts.secret == nil and env ~= nil then
      -- set but empty: a mistake (a secret file that was not read, ...),
      -- not a way to say "no secret", which would link with any node
      -- without one (docs/security.md)
      if env == "" then return fail("ACORO_SECRET is set but empty (unset it to run a node without a secret)") end
      node_opts.secret = env
    end
    local script_chunk = chunk
    chunk = function(...)
      acoro.node(node_opts)
      return script_chunk(...)
    end
  end
  return run_chunk(chunk, unpack(argv, i + 1))
end

return M

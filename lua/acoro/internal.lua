-- acoro.internal: the interface between acoro's own Lua modules, kept off
-- the public table. init.lua fills in the waits (wait, wait_begin, park,
-- raise_pending, wake, running, io_check, io_park, watch_end); every module
-- registers its hooks and resolvers here, in one style: lists of functions
-- registered by event and name.
--
-- HOOKS. I.hook(event, name, fn) adds fn to the event's list (a name
-- registered again replaces its function, in its place); I.hooks(event) is
-- that list, an array the caller iterates (the same table for the life of
-- the process: a hot caller keeps it in a local). Events:
--   "end"          (co, keep)       a coroutine ended through Lua (init.lua);
--                                    keep: it failed and is monitored, so a
--                                    monitor may restart it (co:hot_swap)
--   "restart"      (co)             such a coroutine was restarted
--   "register"     (name, co)       a coroutine name was registered
--   "run_end"      ()               acoro.run returned (the node stops)
--   "node_check"   (opts) -> fn|nil acoro.node(opts) is called: raise on a bad
--                                    option; fn runs once the node is up
--   "peer_up", "peer_down" (id, p)  a peer came up / went down
--   "node_stop"    ()               the node stopped
-- RESOLVERS. I.resolver(kind, name, fn) adds fn to the kind's list;
-- I.resolve(kind, ...) calls them in order: the first that answers
-- `true, results...` gives its results packed, {n =, ...} (as many as it
-- gave: unpack(r, 1, r.n)); none answering: nil. Not for hot paths. Kinds:
--   "locate" (name, opts)           acoro.locate beyond this process
--   "locate_channel" (name, opts)   acoro.locate_channel beyond this process
--   "is_channel" (x)                a channel that is not a local one
--   "monitor" (co, watcher)         co:monitor with a watcher not local
-- No module replaces another's functions: it registers a resolver.
--
-- ENGINE THREAD ONLY, as everything in the Lua layer.
local I = {}

local lists = {} -- event or kind -> {fn, ...}
local names = {} -- event or kind -> {name -> index in its list}

local function list_of(event)
  local l = lists[event]
  if not l then
    l = {}
    lists[event] = l
    names[event] = {}
  end
  return l
end

function I.hook(event, name, fn)
  assert(type(fn) == "function", "acoro.internal: a hook is a function")
  local l = list_of(event)
  local i = names[event][name]
  if not i then
    i = #l + 1
    names[event][name] = i
  end
  l[i] = fn
end

function I.hooks(event)
  return list_of(event)
end

-- Calls every hook of event with the arguments, in registration order.
function I.run(event, ...)
  local l = list_of(event)
  for i = 1, #l do l[i](...) end
end

I.resolver = I.hook

local function packed(hit, ...)
  if hit then return { n = select("#", ...), ... } end
  return nil
end

function I.resolve(kind, ...)
  local l = lists[kind]
  if not l then return nil end
  for i = 1, #l do
    local r = packed(l[i](...))
    if r then return r end
  end
  return nil
end

-- The running node's location ("host:port"), or nil (set by acoro.dist).
I.location = nil

-- Hands the engine's queued log lines to the writer (set by acoro.log;
-- acoro.run calls it as it ends).
I.log_drain = nil

-- acoro.fs's helpers for other modules (set when acoro.fs is loaded):
-- fs_from_fd(fd) a regular file as a standard stream (acoro.io),
-- fs_random_hex(n) n CSPRNG bytes as hex | nil, err (acoro.files).
I.fs_from_fd = nil
I.fs_random_hex = nil

-- The extension table of the distribution (D, lua/acoro/dist/ext.lua), once
-- acoro.node has been read.
I.dist = nil

return I

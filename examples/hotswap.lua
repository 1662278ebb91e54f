-- hotswap.lua: replacing a running coroutine's function (asyncoro's
-- hotswap.py and hotswap_funcs.py). A server coroutine processes messages;
-- commands read from stdin (asynchronously: the server keeps working while
-- the main coroutine waits for a line) swap its function for another one.
-- The running function checks the new one first: it lets a known server
-- function in (by letting the swap request escape) and refuses anything
-- else (by catching it). Messages queued at the time of the swap stay queued
-- and the new function processes them: none is lost.
--
-- Commands, one per line:
--   send N    send the server N numbered messages
--   server [N] send N messages (default 0), then at once swap the server
--             for its next version (server2, server3, ...): the old one
--             takes the first, the new one processes the rest
--   bad       ask for a swap to a function the server refuses
--   quit      stop the server and exit
-- After each command the main coroutine waits for the server to reach a
-- "sync" message, so the output follows the commands in order.
local acoro = require "acoro"

local versions = {} -- the server functions a server accepts a swap to

local function make_server(version)
  local function serve()
    acoro.hot_swappable(true)
    print(("server%d: running"):format(version))
    while true do
      local ok, m = pcall(function()
        local msg = acoro.receive()
        if type(msg) == "table" and msg.sync then
          msg.sync:send("synced")
        elseif msg == "quit" then
          return "quit"
        else
          print(("server%d: processing message %d"):format(version, msg))
          -- each message takes a while: a swap asked for meanwhile comes in
          -- here, with the rest still queued
          acoro.sleep(0.001)
        end
      end)
      if ok and m == "quit" then break end
      if not ok then
        if not acoro.is_hot_swap(m) then error(m, 0) end
        if not versions[m.fn] then
          print(("server%d: refusing to be replaced by an unknown function"):format(version))
        else
          print(("server%d: replaced by server%d"):format(version, versions[m.fn]))
          error(m, 0) -- let it escape: the swap happens
        end
      end
    end
    print(("server%d: done"):format(version))
  end
  versions[serve] = version
  return serve
end

local function bogus()
  print("bogus: this must never run")
end

local server = acoro.spawn(make_server(1))
local me = acoro.self()
local version, sent = 1, 0

local function send(n)
  for _ = 1, n do
    sent = sent + 1
    server:send(sent)
  end
end

local function sync()
  server:send({ sync = me })
  assert(acoro.receive(10) == "synced", "the server did not answer")
end

while true do
  local line = acoro.stdin:readline()
  if not line then break end
  local cmd, arg = line:match("^%s*(%a+)%s*(%d*)")
  if cmd == "send" then
    send(tonumber(arg) or 1)
  elseif cmd == "server" then
    send(tonumber(arg) or 0)
    version = version + 1
    server:hot_swap(make_server(version))
  elseif cmd == "bad" then
    server:hot_swap(bogus)
  elseif cmd == "quit" then
    break
  elseif cmd then
    print("unknown command: " .. cmd)
  end
  sync()
end
server:send("quit")
server:join(10)

-- A distribution extension in one file, as docs/design.md says one is
-- written: an operation of its own (a number from acoro.dist.protocol's
-- EXTENSION_OPS up), registered in the node's one operations table, and a
-- request answered through D.ask / D.answer. Nothing outside this file
-- knows of it; spec/dist_ext_spec.lua loads it in two nodes.
local acoro = require "acoro"
local _ = acoro.node -- loads the distribution
local D = require("acoro.internal").dist

local OP_ECHO = require("acoro.dist.protocol").EXTENSION_OPS + 7 -- {ECHO, request, text}

D.on_op(OP_ECHO, function(peer, m)
  if type(m[2]) ~= "number" or type(m[3]) ~= "string" then return D.bad(peer, "bad ECHO") end
  D.answer(peer, m[2], m[3] .. "!")
end)

local M = {}

-- The text back from the node at location with "!" added, or nil and why.
function M.echo(location, text)
  local peer = D.peer_at(location)
  if not peer then return nil, "unreachable" end
  local ok, v = D.ask(peer, function(req) return { OP_ECHO, req, text } end, 10)
  if not ok then return nil, v end
  return v
end

return M

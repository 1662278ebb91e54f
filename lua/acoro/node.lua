-- acoro.node: distribution, the Lua layer over the peer transport (core.net,
-- bindings/lnet.c over core/net.c). The code is the package lua/acoro/dist/
-- (docs/design.md, "The Lua layer inside"): node.lua (life cycle, peers, the
-- transport's events), handles.lua (remote coroutine handles and their
-- proxies), locate.lua (LOCATE/FOUND and directories), codec.lua (ext
-- types), link.lua (sends and requests), ext.lua (the extension table),
-- protocol.lua (every number). This module is its entry: init.lua loads it
-- the first time a distribution name (acoro.node, acoro.peer, ...) is read.
local P = require "acoro.dist.protocol"

local M = {}

-- Operation and ext type numbers: acoro.dist.protocol, the one list.
M.EXT, M.OP = P.EXT, P.OP

-- Puts the distribution's public names on A (acoro's table) over the
-- transport net (core.net) and codec wire (core.wire); coro_mt is the
-- local coroutine handles' metatable.
function M.init(A, net, wire, coro_mt)
  require("acoro.dist.node").init(A, net, wire, coro_mt)
end

return M

-- The script an acoro-node daemon runs as each compute server:
-- `acoro --listen HOST:0 ... server_main.lua NODE_LOCATION COMPUTATION SLOT
-- [LISTEN]` (LISTEN: where the node listens, to dial, when not its location).
require("acoro.discoro.server").main(...)

-- Wire codec micro-benchmark: core.wire.encode + decode of a small
-- message, {op="ping", seq=i, data="0123456789"}, N times (default 1,000,000).
-- Usage: build/acoro bench/wire_codec.lua [N]
-- Prints: WC msgs=N encode_per_s=E decode_per_s=D roundtrip_per_s=R bytes=B
-- (encode alone, decode alone, then encode+decode of each message in turn).
local wire = require("acoro.core").wire
local encode, decode = wire.encode, wire.decode

local N = tonumber(arg and arg[1]) or 1000000
local clock = os.clock -- CPU time of this process: one thread, no waiting

local msg = { op = "ping", seq = 0, data = "0123456789" }
local t0 = clock()
local s
for i = 1, N do
  msg.seq = i
  s = encode(msg)
end
local t_enc = clock() - t0

t0 = clock()
local m
for _ = 1, N do m = decode(s) end
local t_dec = clock() - t0
assert(m.op == "ping" and m.seq == N and m.data == "0123456789", "bad decode")

t0 = clock()
for i = 1, N do
  m = decode(encode({ op = "ping", seq = i, data = "0123456789" }))
  if m.seq ~= i then error("bad round trip at " .. i) end
end
local t_rt = clock() - t0

print(string.format("WC msgs=%d encode_per_s=%.0f decode_per_s=%.0f roundtrip_per_s=%.0f bytes=%d",
  N, N / t_enc, N / t_dec, N / t_rt, #s))

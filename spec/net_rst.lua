-- A plain-LuaJIT peer that resets its connection (spec/tcp_spec.lua): connects to
-- 127.0.0.1:PORT, sends "hello", waits for one byte, then closes with SO_LINGER 0,
-- which makes the kernel send RST instead of FIN. Blocking calls through the FFI.
local ffi = require "ffi"
ffi.cdef [[
struct sockaddr_in { unsigned short sin_family; unsigned short sin_port; unsigned int sin_addr; char zero[8]; };
struct linger { int l_onoff; int l_linger; };
int socket(int, int, int);
int connect(int, const void *, unsigned int);
long send(int, const void *, size_t, int);
long recv(int, void *, size_t, int);
int setsockopt(int, int, int, const void *, unsigned int);
int close(int);
unsigned short htons(unsigned short);
unsigned int htonl(unsigned int);
]]
local C = ffi.C
local port = assert(tonumber(arg[1]), "usage: net_rst.lua PORT")
local fd = C.socket(2, 1, 0) -- AF_INET, SOCK_STREAM
assert(fd >= 0, "socket")
local a = ffi.new("struct sockaddr_in")
a.sin_family = 2
a.sin_port = C.htons(port)
a.sin_addr = C.htonl(0x7f000001)
assert(C.connect(fd, a, ffi.sizeof(a)) == 0, "connect")
assert(C.send(fd, "hello", 5, 0) == 5, "send")
local buf = ffi.new("char[1]")
assert(C.recv(fd, buf, 1, 0) == 1, "recv")
local l = ffi.new("struct linger", 1, 0)
assert(C.setsockopt(fd, 1, 13, l, ffi.sizeof(l)) == 0, "SO_LINGER") -- SOL_SOCKET, SO_LINGER
C.close(fd)
print("reset")

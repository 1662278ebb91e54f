-- Helpers for the TCP, TLS and stream specs: certificates made with the openssl CLI
-- in a temporary folder, background child processes whose output the spec reads line by
-- line (each under `timeout`, so none outlives its spec), and a SHA-256 running hash
-- through libcrypto (LuaJIT FFI).

local support = require "support"
local ffi = require "ffi"

local net = {}

local function sh(cmd)
  local ok = os.execute(cmd .. " >/dev/null 2>&1")
  return ok == 0 or ok == true
end

-- Makes (once per process) a folder of PEM files:
--   ca.pem / ca.key            a CA
--   server.pem / server.key    for localhost and 127.0.0.1, signed by the CA
--   client.pem / client.key    a client certificate signed by the CA (mutual TLS)
--   self.pem / self.key        self-signed, for localhost
--   other_ca.pem               a CA that signed nothing here
--   wrongname.pem / .key       signed by the CA for "elsewhere.invalid"
--   expired.pem / .key         signed by the CA for localhost, expired
local certs
function net.certs()
  if certs then return certs end
  local dir = os.tmpname()
  os.remove(dir)
  assert(sh("mkdir -p " .. support.shell_quote(dir)))
  local q = support.shell_quote
  local function p(name) return dir .. "/" .. name end
  local function run(cmd)
    assert(sh("cd " .. q(dir) .. " && " .. cmd), "openssl failed: " .. cmd)
  end
  local ext = p("ext.cnf")
  local f = assert(io.open(ext, "w"))
  f:write("[srv]\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
    "[wrong]\nsubjectAltName=DNS:elsewhere.invalid\n",
    "[cli]\nextendedKeyUsage=clientAuth\n")
  f:close()
  local function key(name)
    run("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " .. name)
  end
  local function ca(name)
    key(name .. ".key")
    run(("openssl req -x509 -new -key %s.key -days 30 -subj /CN=%s -out %s.pem"):format(name, name, name))
  end
  local function signed(name, cn, section, days)
    key(name .. ".key")
    run(("openssl req -new -key %s.key -subj /CN=%s -out %s.csr"):format(name, cn, name))
    local dates = days and ("-days " .. days) or "-days 30"
    run(("openssl x509 -req -in %s.csr -CA ca.pem -CAkey ca.key -CAcreateserial %s"
      .. " -extfile ext.cnf -extensions %s -out %s.pem"):format(name, dates, section, name))
  end
  ca("ca")
  ca("other_ca")
  signed("server", "localhost", "srv")
  signed("client", "acoro-client", "cli")
  signed("wrongname", "elsewhere.invalid", "wrong")
  key("self.key")
  run("openssl req -x509 -new -key self.key -days 30 -subj /CN=localhost"
    .. " -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -out self.pem")
  -- Expired: valid from two days ago to yesterday (x509 -not_before/-not_after are
  -- OpenSSL 3.4+; `ca` with -startdate/-enddate works on 3.0).
  key("expired.key")
  run("openssl req -new -key expired.key -subj /CN=localhost -out expired.csr")
  local cadir = p("cadb")
  assert(sh("mkdir -p " .. q(cadir)))
  f = assert(io.open(cadir .. "/index.txt", "w"))
  f:close()
  f = assert(io.open(cadir .. "/serial", "w"))
  f:write("01\n")
  f:close()
  f = assert(io.open(p("ca.cnf"), "w"))
  f:write(([[
[ca]
default_ca = dflt
[dflt]
database = %s/index.txt
serial = %s/serial
new_certs_dir = %s
default_md = sha256
policy = any
copy_extensions = none
[any]
commonName = supplied
[srv]
subjectAltName=DNS:localhost,IP:127.0.0.1
]]):format(cadir, cadir, cadir))
  f:close()
  run("openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -startdate 20000101000000Z"
    .. " -enddate 20000102000000Z -extensions srv -in expired.csr -out expired.pem")
  certs = setmetatable({ dir = dir }, { __index = function(_, k) return p(k) end })
  return certs
end

function net.cleanup_certs()
  if certs then
    os.execute("rm -rf " .. support.shell_quote(certs.dir))
    certs = nil
  end
end

-- A child process (shell command) started in the background with its stdout (and
-- stderr) read through a pipe; its pid is known so that the spec can stop it.
-- Everything runs under `timeout 60`.
local Child = {}
Child.__index = Child

function net.spawn(cmd, stdin_path)
  local full = ("echo $$; cd %s && exec timeout -k 5 60 %s %s 2>&1"):format(
    support.shell_quote(support.root), cmd, stdin_path and ("<" .. support.shell_quote(stdin_path)) or "</dev/null")
  local p = assert(io.popen(full, "r"))
  local pid = tonumber(p:read("*l"))
  return setmetatable({ p = p, pid = pid, seen = {} }, Child)
end

-- Runs the acoro CLI on a script path (or an example name) with arguments.
function net.spawn_acoro(args, stdin_path)
  return net.spawn(support.shell_quote(support.bin) .. " " .. args, stdin_path)
end

-- The next line of output, or nil at EOF.
function Child:line()
  local l = self.p:read("*l")
  if l then self.seen[#self.seen + 1] = l end
  return l
end

-- Reads lines until one matches `pattern`; returns its captures (or the line).
-- Errors (with everything read so far) at EOF.
function Child:expect(pattern)
  while true do
    local l = self:line()
    if l == nil then
      error("child ended before printing " .. pattern .. "; output:\n" .. table.concat(self.seen, "\n"), 2)
    end
    local caps = { l:match(pattern) }
    if caps[1] ~= nil then return unpack(caps) end
  end
end

-- Everything left, once the child has ended.
function Child:rest()
  local s = self.p:read("*a")
  for l in s:gmatch("[^\n]+") do self.seen[#self.seen + 1] = l end
  return s
end

function Child:output() return table.concat(self.seen, "\n") end

function Child:kill()
  if self.pid then os.execute("kill " .. self.pid .. " 2>/dev/null") end
end

function Child:close()
  local rest = self:rest()
  self.p:close()
  return rest
end

-- A FIFO in a fresh temporary path.
function net.fifo()
  local path = os.tmpname()
  os.remove(path)
  assert(sh("mkfifo " .. support.shell_quote(path)))
  return path
end

-- SHA-256 through libcrypto (already loaded by acoro's core; found by name).
ffi.cdef [[
typedef struct evp_md_ctx_st EVP_MD_CTX;
typedef struct evp_md_st EVP_MD;
EVP_MD_CTX *EVP_MD_CTX_new(void);
void EVP_MD_CTX_free(EVP_MD_CTX *ctx);
const EVP_MD *EVP_sha256(void);
int EVP_DigestInit_ex(EVP_MD_CTX *ctx, const EVP_MD *type, void *impl);
int EVP_DigestUpdate(EVP_MD_CTX *ctx, const void *d, size_t cnt);
int EVP_DigestFinal_ex(EVP_MD_CTX *ctx, unsigned char *md, unsigned int *s);
]]
local crypto
function net.sha256()
  crypto = crypto or ffi.load("crypto.so.3")
  local ctx = ffi.gc(crypto.EVP_MD_CTX_new(), crypto.EVP_MD_CTX_free)
  assert(crypto.EVP_DigestInit_ex(ctx, crypto.EVP_sha256(), nil) == 1)
  return {
    update = function(_, s) assert(crypto.EVP_DigestUpdate(ctx, s, #s) == 1) end,
    hex = function()
      local md, n = ffi.new("unsigned char[32]"), ffi.new("unsigned int[1]")
      assert(crypto.EVP_DigestFinal_ex(ctx, md, n) == 1)
      return (ffi.string(md, n[0]):gsub(".", function(c) return ("%02x"):format(c:byte()) end))
    end,
  }
end

return net

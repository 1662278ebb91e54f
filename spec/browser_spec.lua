-- A real browser against acoro.http: headless Chromium (Debian's, driven by
-- playwright-core from spec/browser/, installed by tools/setup with npm ci)
-- loads a page served by this process, whose own script shows the values the
-- server pushes by Server-Sent Events, live, as text: a value holding
-- <script>alert(1)</script> opens no dialog. The screenshot goes to
-- build/browser/. Pending only when Chromium cannot start here, or when
-- npm could not install the driver.

local acoro = require "acoro"
local http = require "acoro.http"
local support = require "support"

local T = 60
local DIR = support.root .. "/spec/browser"
local BUILD = os.getenv("ACORO_BUILD") or "build"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

-- The page's server: the page, its script, the stream and a push endpoint
-- that sends a value to every open stream (each stream is one coroutine,
-- waiting in its mailbox).
local function serve()
  local srv = assert(http.server({ timeout = T }))
  local subs = {}
  local page, app = read(DIR .. "/page.html"), read(DIR .. "/app.js")
  local csp = "default-src 'self'"
  srv:route("GET", "/", function(_, res)
    res:header("Content-Type", "text/html; charset=utf-8")
    res:header("Content-Security-Policy", csp)
    res:send(page)
  end)
  srv:route("GET", "/app.js", function(_, res)
    res:header("Content-Type", "text/javascript; charset=utf-8")
    res:send(app)
  end)
  srv:route("GET", "/events", function(_, res)
    local me = acoro.self()
    subs[me] = true
    local sse = res:sse()
    while sse do
      local v = acoro.receive(T)
      if v == nil or v == subs or not sse:send("value", v) then break end
    end
    subs[me] = nil
  end)
  srv:route("POST", "/push", function(req, res)
    local n = 0
    for co in pairs(subs) do
      co:send(tostring(req.query.value))
      n = n + 1
    end
    res:send(tostring(n))
  end)
  srv:start()
  return srv, function()
    for co in pairs(subs) do co:send(subs) end -- the streams end
    srv:close()
  end
end

describe("acoro.http in a real browser", function()
  it("shows values pushed by Server-Sent Events live, markup as text, no dialog", function()
    local driver = io.open(DIR .. "/node_modules/playwright-core/package.json")
    if not driver then
      return pending("playwright-core is not installed in spec/browser "
        .. "(tools/setup runs npm ci there; it said why it could not)")
    end
    driver:close()
    os.execute("mkdir -p " .. support.shell_quote(BUILD .. "/browser"))
    local shot = BUILD .. "/browser/sse_page.png"
    os.remove(shot)
    local out, status
    acoro.run(function()
      local srv, stop = serve()
      -- node and Chromium run without this process's sanitizer preloads
      local env = {}
      for _, k in ipairs({ "PATH", "HOME", "TMPDIR", "LANG", "CHROMIUM", "XDG_RUNTIME_DIR" }) do
        env[k] = os.getenv(k)
      end
      local p = assert(acoro.process.spawn({ "node", DIR .. "/sse_test.js",
        ("http://127.0.0.1:%d"):format(srv.port), shot, stderr = "pipe", env = env }))
      local err
      out, err, status = p:communicate(nil, T * 2)
      if out == nil then -- timed out: the browser must not outlive the spec
        p:kill()
        p:wait(T)
        out, status = "FAIL node timed out", -1
      end
      stop()
      if status ~= 0 and status ~= 3 then out = out .. err end
    end)
    if status == 3 then return pending((out:gsub("^SKIP ", ""):gsub("\n.*", ""))) end
    assert.equal(0, status, out)
    assert.matches("^OK ", out)
    assert.truthy(io.open(shot), "no screenshot at " .. shot)
  end)
end)

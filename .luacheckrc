-- luacheck configuration (Debian's lua-check): LuaJIT, plus Busted's
-- globals in specs.
std = "luajit"
codes = true
max_line_length = 120
exclude_files = { "build/**", "build-*/**", "build.luarocks/**" } -- the last: luarocks make
files["spec/**/*.lua"] = { std = "+busted" }
files["examples/**/*.lua"] = { globals = { "arg" } }
files["bench/**/*.lua"] = { globals = { "arg" } }

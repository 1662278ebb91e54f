-- Busted's helper (.busted): every `require "acoro"` in a spec returns the module with
-- the strict acoro.run of spec/strict_run.lua, so that no assertion made inside a
-- spawned coroutine can be lost.

local strict = require "strict_run"
local loaders = package.loaders -- LuaJIT (Lua 5.1)

table.insert(loaders, 1, function(name)
  if name ~= "acoro" then return nil end
  for i = 2, #loaders do
    local load, extra = loaders[i](name)
    if type(load) == "function" then
      return function(...)
        local m = load(...)
        if m == nil then m = package.loaded[name] end
        return strict.install(m)
      end, extra
    end
  end
  return nil
end)

-- acoro.types: value types by name. acoro.register_type("Point", mt) on
-- each side makes a table whose metatable is mt travel between nodes as the
-- ext type EXT.typed, {name, fields}, and arrive with the metatable the
-- receiver registered under that name. Only the name and the fields travel,
-- never code; a name not registered where it arrives refuses the message,
-- and the log names the type.
local M = {}

local type, pairs, setmetatable, error = type, pairs, setmetatable, error

function M.init(A, D)
  local log = A.log
  local by_name, by_mt = {}, {}

  -- the payload, decoded in place
  local function decode(d)
    if type(d) ~= "table" or type(d[1]) ~= "string" or type(d[2]) ~= "table" then return nil end
    local mt = by_name[d[1]]
    if not mt then
      log.warn(("a value of type %q arrived, which is not registered here (acoro.register_type): "
        .. "its message is dropped"):format(d[1]))
      return nil
    end
    return setmetatable(d[2], mt)
  end

  -- acoro.register_type(name, mt) -> true: values with metatable mt travel
  -- as `name`. Registering a name again replaces its metatable here.
  function A.register_type(name, mt)
    if type(name) ~= "string" or name == "" or #name > 200 then
      error("acoro.register_type: a name of 1 to 200 characters expected", 2)
    end
    if type(mt) ~= "table" then error("acoro.register_type: a metatable expected", 2) end
    if by_mt[mt] and by_mt[mt] ~= name then
      error(("acoro.register_type: that metatable is registered as %q"):format(by_mt[mt]), 2)
    end
    local old = by_name[name]
    if old and old ~= mt then by_mt[old] = nil end
    by_name[name], by_mt[mt] = mt, name
    D.add_ext(D.EXT.typed, mt, function(v)
      local fields = {}
      for k, x in pairs(v) do fields[k] = x end
      return D.encode({ name, fields })
    end, decode)
    return true
  end
end

return M

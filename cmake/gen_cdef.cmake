# Writes lua/acoro/cdef.lua: the FFI block of core/acoro.h, given to ffi.cdef,
# so the Lua hot paths and the public header cannot drift.
# Usage: cmake -DHEADER=core/acoro.h -DOUT=.../cdef.lua -P gen_cdef.cmake
file(READ "${HEADER}" text)
string(FIND "${text}" "/* ACORO_FFI_BEGIN */" begin)
string(FIND "${text}" "/* ACORO_FFI_END */" end)
if(begin EQUAL -1 OR end EQUAL -1)
  message(FATAL_ERROR "${HEADER}: ACORO_FFI_BEGIN/END markers not found")
endif()
math(EXPR begin "${begin} + 21")
math(EXPR len "${end} - ${begin}")
string(SUBSTRING "${text}" ${begin} ${len} block)
string(REPLACE "ACORO_API " "" block "${block}")
file(WRITE "${OUT}.tmp"
"-- Generated from core/acoro.h by cmake/gen_cdef.cmake: do not edit.
local ffi = require \"ffi\"
ffi.cdef[[${block}]]
")
file(RENAME "${OUT}.tmp" "${OUT}")

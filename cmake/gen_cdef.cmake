# Writes lua/acoro/cdef.lua: core/acoro.h preprocessed with ACORO_CDEF (no
# system headers, no attributes, the error-code map expanded into its
# enum), given to ffi.cdef, so the Lua hot paths, the error codes and the
# public header cannot drift.
# Usage: cmake -DCC=cc -DHEADER=core/acoro.h -DOUT=.../cdef.lua -P gen_cdef.cmake
execute_process(
  COMMAND "${CC}" -E -P -DACORO_CDEF -x c "${HEADER}"
  OUTPUT_VARIABLE block
  ERROR_VARIABLE err
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${HEADER}: the preprocessor failed: ${err}")
endif()
string(REGEX REPLACE "\n[ \t]*\n+" "\n" block "${block}")
# ACORO_API left a space before each prototype.
string(REGEX REPLACE "\n ([^ ])" "\n\\1" block "${block}")
string(FIND "${block}" "]]" close)
if(NOT close EQUAL -1)
  message(FATAL_ERROR "${HEADER}: ']]' would end the Lua long string")
endif()
file(WRITE "${OUT}.tmp"
"-- Generated from core/acoro.h by cmake/gen_cdef.cmake: do not edit.
local ffi = require \"ffi\"
ffi.cdef[[
${block}]]
")
file(RENAME "${OUT}.tmp" "${OUT}")

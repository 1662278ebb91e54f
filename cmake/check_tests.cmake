# Checks that spec/c/runner.c's TEST_LIST names every TEST(name) of the C test
# files, so that no C test is compiled and never run. Run at build time, before
# core_tests links:
#   cmake -DRUNNER=spec/c/runner.c -DTESTS="a.c;b.c" -P cmake/check_tests.cmake
# Fails, naming each missing test and where it is, or a name listed twice.
cmake_policy(SET CMP0057 NEW) # if(... IN_LIST ...)
file(READ ${RUNNER} runner)
string(REGEX MATCHALL "XX\\(([A-Za-z0-9_]+)\\)" listed "${runner}")
set(names)
foreach(x ${listed})
  string(REGEX REPLACE "XX\\(([A-Za-z0-9_]+)\\)" "\\1" n "${x}")
  if(n IN_LIST names)
    message(FATAL_ERROR "${RUNNER}: ${n} is listed twice in TEST_LIST")
  endif()
  list(APPEND names ${n})
endforeach()
set(missing "")
foreach(f ${TESTS})
  file(STRINGS ${f} lines REGEX "^TEST\\([A-Za-z0-9_]+\\)")
  foreach(line ${lines})
    string(REGEX REPLACE "^TEST\\(([A-Za-z0-9_]+)\\).*" "\\1" n "${line}")
    if(NOT n IN_LIST names)
      string(APPEND missing "\n  ${n} (${f})")
    endif()
  endforeach()
endforeach()
if(missing)
  message(FATAL_ERROR "${RUNNER}: TEST_LIST lacks these TEST()s, which would never run:${missing}")
endif()

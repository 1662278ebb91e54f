/* main.c: the `acoro` executable, a thin host over acoro_lua.h: it makes a
 * Lua state, opens acoro in it, lets SIGINT and SIGTERM stop the engine (the
 * shutdown hooks run, then the exit status tells which), and hands the
 * command line to the Lua module acoro.cli, whose result is the exit status. */
#include "acoro_lua.h"

#include <lauxlib.h>
#include <lualib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

/* Lua modules are found next to the executable: <dir>/share/lua/5.1 in the
 * build tree, <dir>/../share/lua/5.1 once installed under a prefix. */
static void add_module_dirs(lua_State *L) {
  char exe[4096], dir[4200];
  size_t len = sizeof exe;
  char *slash;
  if (uv_exepath(exe, &len) != 0)
    return;
  slash = strrchr(exe, '/');
  if (slash == NULL)
    return;
  *slash = '\0';
  snprintf(dir, sizeof dir, "%s/../share/lua/5.1", exe);
  acoro_lua_openlib(L, dir);
  snprintf(dir, sizeof dir, "%s/share/lua/5.1", exe);
  acoro_lua_openlib(L, dir);
}

static int report(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "acoro: %s\n", msg ? msg : "(error object is not a string)");
  return 1;
}

int main(int argc, char **argv) {
  lua_State *L = luaL_newstate();
  int i, status = 1;
  if (L == NULL) {
    fprintf(stderr, "acoro: cannot create a Lua state: out of memory\n");
    return 1;
  }
  luaL_openlibs(L);
  add_module_dirs(L);
  if (acoro_lua_engine(L) == NULL || acoro_lua_openlib(L, NULL) != 0) {
    fprintf(stderr, "acoro: cannot open the acoro module\n");
    lua_close(L);
    return 1;
  }
  acoro_engine_signal(acoro_lua_engine(L), SIGINT, ACORO_SIGNAL_STOP);
  acoro_engine_signal(acoro_lua_engine(L), SIGTERM, ACORO_SIGNAL_STOP);
  lua_getglobal(L, "require");
  lua_pushstring(L, "acoro.cli");
  if (lua_pcall(L, 1, 1, 0) != 0) {
    status = report(L);
  } else {
    lua_getfield(L, -1, "main");
    for (i = 0; i < argc; i++)
      lua_pushstring(L, argv[i]);
    if (lua_pcall(L, argc, 1, 0) != 0)
      status = report(L);
    else
      status = (int)lua_tointeger(L, -1);
  }
  lua_close(L);
  return status;
}

/* embed_host.c: a minimal embedding host for spec/log_spec.lua. It opens
 * acoro in a Lua state as a C program would, gives it a log hook
 * (acoro_lua_set_log) that writes "LOG <level> <message>" lines to stdout,
 * and runs the Lua file named on the command line. */
#include "acoro_lua.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

static void hook(void *data, int level, const char *msg) {
  fprintf((FILE *)data, "LOG %d %s\n", level, msg);
  fflush((FILE *)data);
}

int main(int argc, char **argv) {
  char exe[4096], dir[4200];
  size_t len = sizeof exe;
  char *slash;
  lua_State *L;
  int status = 0;
  if (argc != 2 || uv_exepath(exe, &len) != 0 ||
      (slash = strrchr(exe, '/')) == NULL) {
    fprintf(stderr, "usage: embed_host script.lua\n");
    return 2;
  }
  *slash = '\0';
  snprintf(dir, sizeof dir, "%s/share/lua/5.1", exe);
  L = luaL_newstate();
  if (L == NULL)
    return 1;
  luaL_openlibs(L);
  if (acoro_lua_set_log(L, hook, stdout) != ACORO_EINVAL ||
      acoro_lua_openlib(L, dir) != 0 ||
      acoro_lua_set_log(L, hook, stdout) != 0) {
    fprintf(stderr, "embed_host: cannot open acoro\n");
    lua_close(L);
    return 1;
  }
  if (luaL_dofile(L, argv[1]) != 0) {
    fprintf(stderr, "embed_host: %s\n", lua_tostring(L, -1));
    status = 1;
  }
  lua_close(L);
  return status;
}

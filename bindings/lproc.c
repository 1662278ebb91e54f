/* lproc.c: the C half of acoro.process (core.process): child processes as
 * userdata, their pipes as acoro streams (lio.c). Nothing here yields: wait
 * registers the coroutine's wait and returns false, and the Lua half
 * (lua/acoro/process.lua) parks and calls again. */
#include "lbind.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <lauxlib.h>
#include <pwd.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#define PROCESS_MT "acoro.process"

static acoro_process_t *check_process(lua_State *L, int i) {
  return lbind_check(L, i, PROCESS_MT,
                     "acoro: process: the object is released");
}

/* A NULL-terminated array of the strings of the list at index i, in a
 * userdata left on the stack (the strings stay in the list, which the
 * caller keeps on the stack). Raises before anything is allocated outside
 * Lua. */
static char **string_array(lua_State *L, int i, const char *what) {
  int n = (int)lua_objlen(L, i), k;
  char **a = lua_newuserdata(L, (size_t)(n + 1) * sizeof *a);
  for (k = 1; k <= n; k++) {
    lua_rawgeti(L, i, k);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "acoro: process.spawn: %s[%d] is not a string", what, k);
    a[k - 1] = (char *)lua_tostring(L, -1);
    lua_pop(L, 1); /* the list keeps it */
  }
  a[n] = NULL;
  return a;
}

static void stdio_arg(lua_State *L, int i, acoro_stdio_t *s) {
  s->stream = NULL;
  s->fd = -1;
  if (lua_type(L, i) == LUA_TSTRING) {
    const char *k = lua_tostring(L, i);
    if (strcmp(k, "pipe") == 0)
      s->kind = ACORO_STDIO_PIPE;
    else if (strcmp(k, "inherit") == 0)
      s->kind = ACORO_STDIO_INHERIT;
    else if (strcmp(k, "null") == 0)
      s->kind = ACORO_STDIO_NULL;
    else
      luaL_argerror(L, i, "expected \"pipe\", \"inherit\" or \"null\"");
  } else if (lua_type(L, i) == LUA_TNUMBER) {
    s->kind = ACORO_STDIO_FD;
    s->fd = (int)lua_tointeger(L, i);
    if (s->fd < 0)
      luaL_argerror(L, i, "negative fd");
  } else {
    s->kind = ACORO_STDIO_STREAM;
    s->stream = lio_check_stream(L, i);
    if (!acoro_stream_is_open(s->stream))
      luaL_argerror(L, i, "the stream is closed");
  }
}

/* spawn(args, env|nil, cwd|nil, stdin, stdout, stderr)
 *   -> process, pid, stdin, stdout, stderr (a stream or nil each)
 *    | nil, message, code */
static int p_spawn(lua_State *L) {
  acoro_stdio_t stdio[3];
  acoro_process_t *p;
  char **args, **env = NULL;
  const char *cwd;
  lbind_box_t *b;
  int i, rc;
  luaL_checktype(L, 1, LUA_TTABLE);
  if (!lua_isnoneornil(L, 2))
    luaL_checktype(L, 2, LUA_TTABLE);
  cwd = luaL_optstring(L, 3, NULL);
  for (i = 0; i < 3; i++)
    stdio_arg(L, 4 + i, &stdio[i]);
  lua_settop(L, 6);
  args = string_array(L, 1, "args");
  if (args[0] == NULL)
    return luaL_argerror(L, 1, "no program to run");
  if (!lua_isnil(L, 2))
    env = string_array(L, 2, "env");
  /* The box first: nothing may raise once the process exists. */
  b = lbind_push_box(L, NULL, PROCESS_MT);
  rc = acoro_process_spawn(lbind_engine(L), args, env, cwd, stdio, &p);
  if (rc != 0)
    return lio_fail(L, rc);
  b->p = p;
  lua_pushinteger(L, acoro_process_pid(p));
  for (i = 0; i < 3; i++) {
    if (stdio[i].kind == ACORO_STDIO_PIPE)
      lio_push_stream(L, stdio[i].stream);
    else
      lua_pushnil(L);
  }
  return 5;
}

/* p:_wait(timeout) -> true (exited) | false (the coroutine now waits) */
static int p_wait(lua_State *L) {
  acoro_process_t *p = check_process(L, 1);
  double timeout = lio_opt_timeout(L, 2);
  int rc = acoro_process_wait(lbind_running(L, NULL), p, timeout);
  if (rc ==
      ACORO_EWAITING) { /* misuse: process.lua raises at the user's line */
    lua_pushnil(L);
    lua_pushliteral(L, "another coroutine is already waiting for this process");
    lua_pushliteral(L, "EWAITING");
    return 3;
  }
  if (rc < 0)
    return luaL_error(L, "acoro: wait: %s", acoro_strerror(rc));
  lua_pushboolean(L, rc == 1);
  return 1;
}

/* p:_status() -> exit code, signal (0: none) | nil (not exited) */
static int p_status(lua_State *L) {
  acoro_process_t *p = check_process(L, 1);
  int64_t code;
  int sig;
  if (!acoro_process_status(p, &code, &sig))
    return 0;
  lua_pushnumber(L, (lua_Number)code);
  lua_pushinteger(L, sig);
  return 2;
}

/* p:_kill(signum) -> true | nil, message, code */
static int p_kill(lua_State *L) {
  acoro_process_t *p = check_process(L, 1);
  int rc = acoro_process_kill(p, (int)luaL_checkinteger(L, 2));
  if (rc != 0)
    return lio_fail(L, rc);
  lua_pushboolean(L, 1);
  return 1;
}

/* limit_memory(bytes) -> true | nil, message, code: this process's address
 * space (RLIMIT_AS, soft and hard: it cannot be raised again), so that an
 * allocation past it fails (LuaJIT: "not enough memory") rather than the
 * host swapping. The CLI's --max-memory, before the script runs: libuv's
 * spawn has no hook between fork and exec, so a child limits itself. */
static int p_limit_memory(lua_State *L) {
  lua_Number n = luaL_checknumber(L, 1);
  struct rlimit rl;
  if (!(n >= 1 && n < 9e18))
    return luaL_argerror(L, 1, "expected a number of bytes");
  rl.rlim_cur = rl.rlim_max = (rlim_t)n;
  if (setrlimit(RLIMIT_AS, &rl) != 0)
    return lio_fail(L, uv_translate_sys_error(errno));
  lua_pushboolean(L, 1);
  return 1;
}

/* run_as(name) -> uid | nil, message, code: this process becomes the user
 * `name` for good: the groups initgroups gives it, its group, then its uid
 * (last: it takes the right to do the others). Only root may (EPERM). The
 * CLI's --user, before the script runs (see limit_memory for why here). */
static int p_run_as(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  struct passwd *pw;
  errno = 0;
  pw = getpwnam(name);
  if (pw == NULL) {
    lua_pushnil(L);
    lua_pushfstring(L, "ENOENT: no user %s", name);
    lua_pushliteral(L, "ENOENT");
    return 3;
  }
  if (initgroups(name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
      setuid(pw->pw_uid) != 0)
    return lio_fail(L, uv_translate_sys_error(errno));
  if (getuid() != pw->pw_uid || geteuid() != pw->pw_uid)
    return lio_fail(L, UV_EPERM);
  lua_pushinteger(L, (lua_Integer)pw->pw_uid);
  return 1;
}

/* give_fd(fd, sb, uid, gid, owner, depth): the directory or regular file
 * open at fd given to uid:gid, and a directory's entries under it. Only what
 * `owner` (this process) owns changes hands, never a file with another name
 * elsewhere (a hard link), and every step is made on a descriptor opened
 * without following a link: the user it gives to may be running code in
 * that tree meanwhile, swapping a directory for a link to /etc between a
 * look and a chown. 0 or -errno. */
static int give_fd(int fd, const struct stat *sb, uid_t uid, gid_t gid,
                   uid_t owner, int depth) {
  if (S_ISDIR(sb->st_mode)) {
    if (depth > 64)
      return -ELOOP;
    int dup_fd = dup(fd);
    if (dup_fd < 0)
      return -errno;
    DIR *d = fdopendir(dup_fd);
    if (d == NULL) {
      int e = errno;
      close(dup_fd);
      return -e;
    }
    int rc = 0;
    struct dirent *ent;
    while (rc == 0 && (ent = readdir(d)) != NULL) {
      if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
        continue;
      int sub = openat(fd, ent->d_name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0)
        continue; /* gone meanwhile */
      struct stat ss;
      if (fstat(sub, &ss) == 0 && S_ISDIR(ss.st_mode)) {
        close(sub);
        sub = openat(fd, ent->d_name,
                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0)
          continue; /* swapped for a link or a file: left alone */
        if (fstat(sub, &ss) == 0)
          rc = give_fd(sub, &ss, uid, gid, owner, depth + 1);
      } else if (S_ISREG(ss.st_mode)) {
        rc = give_fd(sub, &ss, uid, gid, owner, depth + 1);
      }
      close(sub);
    }
    closedir(d);
    if (rc != 0)
      return rc;
  } else if (!S_ISREG(sb->st_mode) || sb->st_nlink != 1) {
    return 0;
  }
  if (sb->st_uid != owner)
    return 0;
  if (fchownat(fd, "", uid, gid, AT_EMPTY_PATH) != 0)
    return -errno;
  return 0;
}

/* give_tree(path, uid, gid) -> true | nil, message, code: path (a
 * directory, not a link) and what this process owns under it, to uid:gid. */
static int p_give_tree(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  uid_t uid = (uid_t)luaL_checkinteger(L, 2);
  gid_t gid = (gid_t)luaL_checkinteger(L, 3);
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return lio_fail(L, uv_translate_sys_error(errno));
  struct stat sb;
  int rc =
      fstat(fd, &sb) == 0 ? give_fd(fd, &sb, uid, gid, geteuid(), 0) : -errno;
  close(fd);
  if (rc != 0)
    return lio_fail(L, uv_translate_sys_error(-rc));
  lua_pushboolean(L, 1);
  return 1;
}

static void process_release(void *p) { acoro_process_release(p); }
static const lbind_life_t process_life = {PROCESS_MT, process_release, NULL,
                                          NULL};

static const luaL_Reg process_methods[] = {
    {"_wait", p_wait}, {"_status", p_status}, {"_kill", p_kill}, {NULL, NULL}};

static const luaL_Reg process_funcs[] = {{"spawn", p_spawn},
                                         {"limit_memory", p_limit_memory},
                                         {"run_as", p_run_as},
                                         {"give_tree", p_give_tree},
                                         {NULL, NULL}};

/* Signal numbers by name, for kill. */
static const struct {
  const char *name;
  int num;
} signals[] = {{"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT},
               {"KILL", SIGKILL}, {"TERM", SIGTERM}, {"USR1", SIGUSR1},
               {"USR2", SIGUSR2}, {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},
               {"CHLD", SIGCHLD}, {"CONT", SIGCONT}, {"STOP", SIGSTOP},
               {"TSTP", SIGTSTP}};

void lproc_open(lua_State *L, acoro_engine_t *e) {
  size_t i;
  lbind_type(L, e, process_methods, &process_life);
  lua_newtable(L);
  lbind_funcs(L, e, process_funcs);
  lua_newtable(L);
  for (i = 0; i < sizeof signals / sizeof signals[0]; i++) {
    lua_pushinteger(L, signals[i].num);
    lua_setfield(L, -2, signals[i].name);
  }
  lua_setfield(L, -2, "signals");
}

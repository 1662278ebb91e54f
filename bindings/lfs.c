/* lfs.c: the C half of acoro.fs for Lua (core.fs): files and file-system
 * operations as userdata. Nothing here yields: a call starts an operation
 * (a userdata); the Lua half (lua/acoro/fs.lua) waits for it with
 * op:_wait, parking the coroutine, and then reads op:_result().
 * Expected failures return nil, "ECODE: message", "ECODE"; misuse raises. */
#include "lbind.h"

#include <fcntl.h>
#include <lauxlib.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#define FILE_MT "acoro.file"
#define FSOP_MT "acoro.fsop"
#define SHA256_MT "acoro.sha256"

/* What an operation's result means to Lua. */
enum { K_OPEN = 1, K_STAT, K_DONE, K_NAMES, K_FILL, K_COUNT, K_STATFS };

static int nomem(lua_State *L) {
  return luaL_error(L, "acoro: fs: out of memory");
}

/* An operation's box: kind says what its result means to Lua. */
static void push_op(lua_State *L, acoro_fsop_t *op, int kind) {
  lbind_push_box(L, op, FSOP_MT)->kind = kind;
}

/* Pushes the operation, or the failure to start it. */
static int started(lua_State *L, int rc, acoro_fsop_t *op, int kind) {
  if (rc == ACORO_ENOMEM)
    return nomem(L);
  if (rc == ACORO_ECLOSED)
    return luaL_error(L, "acoro: file: the file is closed");
  if (rc != 0)
    return lio_fail(L, rc);
  push_op(L, op, kind);
  return 1;
}

static void push_file(lua_State *L, acoro_file_t *f) {
  lbind_push_box(L, f, FILE_MT);
}

/* An open file (misuse of a closed one raises). */
static acoro_file_t *check_file(lua_State *L, int i) {
  lbind_box_t *b = lbind_box(L, i, FILE_MT);
  if (b->p == NULL || !acoro_file_is_open(b->p))
    luaL_error(L, "acoro: file: the file is closed");
  return b->p;
}

/* Lua's io.open modes: r w a r+ w+ a+, with b anywhere after the letter;
 * and C11's x after w (w+, wb...): create a new file, failing with EEXIST
 * if the name is taken, even by a symbolic link (O_EXCL|O_NOFOLLOW). */
static int parse_mode(const char *m) {
  int flags, plus = 0, excl = 0;
  const char *p;
  switch (m[0]) {
  case 'r':
    flags = 0;
    break;
  case 'w':
    flags = UV_FS_O_CREAT | UV_FS_O_TRUNC;
    break;
  case 'a':
    flags = UV_FS_O_CREAT | UV_FS_O_APPEND;
    break;
  default:
    return -1;
  }
  for (p = m + 1; *p; p++) {
    if (*p == '+' && !plus)
      plus = 1;
    else if (*p == 'x' && m[0] == 'w' && !excl)
      excl = 1;
    else if (*p != 'b')
      return -1;
  }
  if (excl)
    flags |= UV_FS_O_EXCL | UV_FS_O_NOFOLLOW;
  if (plus)
    flags |= UV_FS_O_RDWR;
  else
    flags |= m[0] == 'r' ? UV_FS_O_RDONLY : UV_FS_O_WRONLY;
  return flags | O_CLOEXEC;
}

/* core.fs.open(path, mode, perm) -> op; perm defaults to 0666, or to 0600
 * for a new file made with x (as mkstemp's: nobody else reads it). */
static int fs_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  const char *mode = luaL_optstring(L, 2, "r");
  int flags = parse_mode(mode);
  int perm = (int)luaL_optinteger(
      L, 3, flags >= 0 && (flags & UV_FS_O_EXCL) ? 0600 : 0666);
  acoro_fsop_t *op = NULL;
  if (flags < 0)
    return luaL_argerror(
        L, 2,
        lua_pushfstring(L, "invalid mode '%s' (r, w, a, r+, w+, a+, b)", mode));
  int rc = acoro_fs_start(lbind_engine(L), ACORO_FS_OPEN, path, NULL, flags,
                          perm, &op);
  return started(L, rc, op, K_OPEN);
}

/* core.fs.opendir(path) -> op: the directory opened as a file, for the
 * *at methods below. */
static int fs_opendir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  acoro_fsop_t *op = NULL;
  int rc =
      acoro_fs_start(lbind_engine(L), ACORO_FS_OPEN, path, NULL,
                     UV_FS_O_RDONLY | UV_FS_O_DIRECTORY | O_CLOEXEC, 0, &op);
  return started(L, rc, op, K_OPEN);
}

static int path_op(lua_State *L, int kind, int rkind) {
  const char *path = luaL_checkstring(L, 1);
  const char *path2 = kind == ACORO_FS_RENAME ? luaL_checkstring(L, 2) : NULL;
  int mode = kind == ACORO_FS_MKDIR   ? (int)luaL_optinteger(L, 2, 0777)
             : kind == ACORO_FS_CHMOD ? (int)luaL_checkinteger(L, 2)
                                      : 0;
  acoro_fsop_t *op = NULL;
  int rc = acoro_fs_start(lbind_engine(L), kind, path, path2, 0, mode, &op);
  return started(L, rc, op, rkind);
}

static int fs_stat(lua_State *L) { return path_op(L, ACORO_FS_STAT, K_STAT); }
static int fs_unlink(lua_State *L) {
  return path_op(L, ACORO_FS_UNLINK, K_DONE);
}
static int fs_rename(lua_State *L) {
  return path_op(L, ACORO_FS_RENAME, K_DONE);
}
static int fs_mkdir(lua_State *L) { return path_op(L, ACORO_FS_MKDIR, K_DONE); }
static int fs_rmdir(lua_State *L) { return path_op(L, ACORO_FS_RMDIR, K_DONE); }
static int fs_readdir(lua_State *L) {
  return path_op(L, ACORO_FS_SCANDIR, K_NAMES);
}
static int fs_lstat(lua_State *L) { return path_op(L, ACORO_FS_LSTAT, K_STAT); }
static int fs_chmod(lua_State *L) { return path_op(L, ACORO_FS_CHMOD, K_DONE); }
static int fs_statfs(lua_State *L) {
  return path_op(L, ACORO_FS_STATFS, K_STATFS);
}

/* core.fs.utime(path, atime, mtime) -> op */
static int fs_utime(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  double atime = luaL_checknumber(L, 2), mtime = luaL_checknumber(L, 3);
  acoro_fsop_t *op = NULL;
  int rc = acoro_fs_utime(lbind_engine(L), path, atime, mtime, &op);
  return started(L, rc, op, K_DONE);
}

/* core.fs.random(n) -> n bytes (1..256) from OpenSSL's CSPRNG, or nil,
 * err: names nobody can predict (files.lua's temporary files). */
static int fs_random(lua_State *L) {
  unsigned char buf[256];
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 1 && n <= (lua_Integer)sizeof buf, 1,
                "a byte count in 1..256");
  if (RAND_bytes(buf, (int)n) != 1) {
    lua_pushnil(L);
    lua_pushliteral(L, "the random generator failed");
    return 2;
  }
  lua_pushlstring(L, (const char *)buf, (size_t)n);
  return 1;
}

/* core.fs.getuid() -> this process's real user id (owner checks). */
static int fs_getuid(lua_State *L) {
  lua_pushnumber(L, (lua_Number)getuid());
  return 1;
}

/* SHA-256 (OpenSSL) fed piecewise: core.fs.sha256() -> h; h:update(s);
 * h:hex() -> 64 hex digits (once: the context is freed then). Hashing runs
 * on the calling (engine) thread: callers feed it a chunk at a time. */
typedef struct {
  EVP_MD_CTX *ctx; /* NULL once finished */
} sha_box_t;

static int fs_sha256(lua_State *L) {
  sha_box_t *b = lua_newuserdata(L, sizeof *b);
  b->ctx = NULL;
  luaL_getmetatable(L, SHA256_MT);
  lua_setmetatable(L, -2);
  b->ctx = EVP_MD_CTX_new();
  if (b->ctx == NULL)
    return nomem(L);
  if (EVP_DigestInit_ex(b->ctx, EVP_sha256(), NULL) != 1)
    return luaL_error(L, "acoro: sha256: cannot start the digest");
  return 1;
}

static EVP_MD_CTX *check_sha(lua_State *L) {
  sha_box_t *b = luaL_checkudata(L, 1, SHA256_MT);
  if (b->ctx == NULL)
    luaL_error(L, "acoro: sha256: the digest is finished");
  return b->ctx;
}

static int sha_update(lua_State *L) {
  size_t n;
  EVP_MD_CTX *ctx = check_sha(L);
  const char *s = luaL_checklstring(L, 2, &n);
  if (EVP_DigestUpdate(ctx, s, n) != 1)
    return luaL_error(L, "acoro: sha256: update failed");
  lua_settop(L, 1);
  return 1;
}

static int sha_hex(lua_State *L) {
  static const char digits[] = "0123456789abcdef";
  unsigned char md[EVP_MAX_MD_SIZE];
  char hex[2 * EVP_MAX_MD_SIZE];
  unsigned int n = 0, i;
  sha_box_t *b = luaL_checkudata(L, 1, SHA256_MT);
  int ok;
  check_sha(L);
  ok = EVP_DigestFinal_ex(b->ctx, md, &n);
  EVP_MD_CTX_free(b->ctx);
  b->ctx = NULL;
  if (ok != 1)
    return luaL_error(L, "acoro: sha256: final failed");
  for (i = 0; i < n; i++) {
    hex[2 * i] = digits[md[i] >> 4];
    hex[2 * i + 1] = digits[md[i] & 15];
  }
  lua_pushlstring(L, hex, 2 * n);
  return 1;
}

static int sha_gc(lua_State *L) {
  sha_box_t *b = luaL_checkudata(L, 1, SHA256_MT);
  EVP_MD_CTX_free(b->ctx);
  b->ctx = NULL;
  return 0;
}

/* core.fs.from_fd(fd) -> file: stdin redirected from a regular file. */
static int fs_from_fd(lua_State *L) {
  acoro_file_t *f;
  int rc =
      acoro_file_from_fd(lbind_engine(L), (int)luaL_checkinteger(L, 1), &f);
  if (rc == ACORO_ENOMEM)
    return nomem(L);
  if (rc != 0)
    return luaL_error(L, "acoro: fs: %s", acoro_strerror(rc));
  push_file(L, f);
  return 1;
}

/* Operations. */

static acoro_fsop_t *check_op(lua_State *L) {
  return lbind_check(L, 1, FSOP_MT, "acoro: fs: the operation was released");
}

/* op:_wait(timeout) -> true (done) | false (the coroutine now waits) */
static int op_wait(lua_State *L) {
  acoro_fsop_t *op = check_op(L);
  double timeout = lio_opt_timeout(L, 2);
  int rc = acoro_fsop_wait(
      lbind_running(L, "acoro: fs calls must run inside an acoro coroutine"),
      op, timeout);
  if (rc == ACORO_EWAITING) { /* misuse: fs.lua raises at the user's line */
    lua_pushnil(L);
    lua_pushliteral(L, "another coroutine is already reading this file");
    lua_pushliteral(L, "EWAITING");
    return 3;
  }
  if (rc < 0)
    return luaL_error(L, "acoro: fs: %s", acoro_strerror(rc));
  lua_pushboolean(L, rc == 1);
  return 1;
}

static const char *type_name(int mode) {
  switch (mode & S_IFMT) {
  case S_IFREG:
    return "file";
  case S_IFDIR:
    return "directory";
  case S_IFLNK:
    return "link";
  case S_IFIFO:
    return "fifo";
  case S_IFSOCK:
    return "socket";
  case S_IFCHR:
    return "char";
  case S_IFBLK:
    return "block";
  default:
    return "unknown";
  }
}

/* op:_result() -> what the operation gave, or nil, err, code. */
static int op_result(lua_State *L) {
  acoro_fsop_t *op = check_op(L);
  lbind_box_t *b = lbind_box(L, 1, FSOP_MT);
  int64_t r = acoro_fsop_result(op);
  if (!acoro_fsop_done(op))
    return luaL_error(L, "acoro: fs: the operation is not done");
  if (r < 0)
    return lio_fail(L, (int)r);
  switch (b->kind) {
  case K_OPEN: {
    acoro_file_t *f;
    if (acoro_fsop_file(op, &f) != 0)
      return luaL_error(L, "acoro: fs: the file was taken already");
    push_file(L, f);
    return 1;
  }
  case K_STAT: {
    acoro_fs_stat_t st;
    acoro_fsop_stat(op, &st);
    lua_createtable(L, 0, 10);
    lua_pushnumber(L, (lua_Number)st.size);
    lua_setfield(L, -2, "size");
    lua_pushnumber(L, st.mtime);
    lua_setfield(L, -2, "mtime");
    lua_pushnumber(L, st.atime);
    lua_setfield(L, -2, "atime");
    lua_pushnumber(L, st.ctime);
    lua_setfield(L, -2, "ctime");
    lua_pushinteger(L, st.mode & 07777);
    lua_setfield(L, -2, "mode");
    lua_pushnumber(L, (lua_Number)st.nlink);
    lua_setfield(L, -2, "nlink");
    lua_pushstring(L, type_name(st.mode));
    lua_setfield(L, -2, "type");
    lua_pushnumber(L, (lua_Number)st.uid);
    lua_setfield(L, -2, "uid");
    lua_pushnumber(L, (lua_Number)st.ino);
    lua_setfield(L, -2, "ino");
    lua_pushnumber(L, (lua_Number)st.dev);
    lua_setfield(L, -2, "dev");
    return 1;
  }
  case K_STATFS: {
    uint64_t avail = 0, total = 0;
    acoro_fsop_statfs(op, &avail, &total);
    lua_createtable(L, 0, 2);
    lua_pushnumber(L, (lua_Number)avail);
    lua_setfield(L, -2, "avail");
    lua_pushnumber(L, (lua_Number)total);
    lua_setfield(L, -2, "total");
    return 1;
  }
  case K_NAMES: {
    const char *name;
    int i = 0;
    lua_newtable(L);
    while (acoro_fsop_next_name(op, &name)) {
      lua_pushstring(L, name);
      lua_rawseti(L, -2, ++i);
    }
    return 1;
  }
  case K_COUNT:
    lua_pushnumber(L, (lua_Number)r);
    return 1;
  default:
    lua_pushboolean(L, 1);
    return 1;
  }
}

static void op_release(void *p) { acoro_fsop_release(p); }
static const lbind_life_t op_life = {FSOP_MT, op_release, NULL, NULL};

/* Files. */

/* f:_fill(want [, all]) -> op: at least want more bytes, or (all) the
 * rest of the file. */
static int f_fill(lua_State *L) {
  acoro_file_t *f = check_file(L, 1);
  lua_Integer want = luaL_optinteger(L, 2, 0);
  acoro_fsop_t *op = NULL;
  int rc = lua_toboolean(L, 3)
               ? acoro_file_fill_all(f, &op)
               : acoro_file_fill(f, want > 0 ? (size_t)want : 0, &op);
  return started(L, rc, op, K_FILL);
}

static int f_write(lua_State *L) {
  acoro_file_t *f = check_file(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  acoro_fsop_t *op = NULL;
  int rc = acoro_file_write(f, data, len, &op);
  return started(L, rc, op, K_COUNT);
}

/* f:_seek(whence, offset): whence 0 set, 1 cur, 2 end */
static int f_seek(lua_State *L) {
  acoro_file_t *f = check_file(L, 1);
  int whence = (int)luaL_checkinteger(L, 2);
  lua_Number off = luaL_optnumber(L, 3, 0);
  acoro_fsop_t *op = NULL;
  /* the cast below is undefined for NaN and out-of-range values */
  luaL_argcheck(L, off >= -9e18 && off <= 9e18, 3, "a finite offset");
  int rc = acoro_file_seek(f, whence, (int64_t)off, &op);
  return started(L, rc, op, K_COUNT);
}

/* Under the directory f, never following a link at the name:
 * f:_openat(name, mode) (an io.open mode, x allowed, or "d": a
 * subdirectory), f:_mkdirat(name, perm), f:_lstatat(name),
 * f:_renameat(from, to), f:_unlinkat(name, is_dir) -> op */
static int f_openat(lua_State *L) {
  acoro_file_t *d = check_file(L, 1);
  const char *name = luaL_checkstring(L, 2);
  const char *mode = luaL_checkstring(L, 3);
  int flags = strcmp(mode, "d") == 0 ? UV_FS_O_RDONLY | UV_FS_O_DIRECTORY
                                     : parse_mode(mode);
  acoro_fsop_t *op = NULL;
  int rc;
  if (flags < 0)
    return luaL_argerror(L, 3, "an io.open mode or \"d\"");
  rc =
      acoro_dir_open(d, name, flags, (flags & UV_FS_O_EXCL) ? 0600 : 0666, &op);
  return started(L, rc, op, K_OPEN);
}

static int f_mkdirat(lua_State *L) {
  acoro_file_t *d = check_file(L, 1);
  const char *name = luaL_checkstring(L, 2);
  int perm = (int)luaL_optinteger(L, 3, 0777);
  acoro_fsop_t *op = NULL;
  int rc = acoro_dir_mkdir(d, name, perm, &op);
  return started(L, rc, op, K_DONE);
}

static int f_lstatat(lua_State *L) {
  acoro_file_t *d = check_file(L, 1);
  const char *name = luaL_checkstring(L, 2);
  acoro_fsop_t *op = NULL;
  int rc = acoro_dir_lstat(d, name, &op);
  return started(L, rc, op, K_STAT);
}

static int f_renameat(lua_State *L) {
  acoro_file_t *d = check_file(L, 1);
  const char *from = luaL_checkstring(L, 2), *to = luaL_checkstring(L, 3);
  acoro_fsop_t *op = NULL;
  int rc = acoro_dir_rename(d, from, to, &op);
  return started(L, rc, op, K_DONE);
}

static int f_unlinkat(lua_State *L) {
  acoro_file_t *d = check_file(L, 1);
  const char *name = luaL_checkstring(L, 2);
  acoro_fsop_t *op = NULL;
  int rc = acoro_dir_unlink(d, name, lua_toboolean(L, 3), &op);
  return started(L, rc, op, K_DONE);
}

/* f:_chmod(mode), f:_utime(atime, mtime), f:_stat(): on the descriptor. */
static int f_chmod(lua_State *L) {
  acoro_file_t *f = check_file(L, 1);
  lua_Integer mode = luaL_checkinteger(L, 2);
  acoro_fsop_t *op = NULL;
  int rc;
  luaL_argcheck(L, mode >= 0 && mode <= 07777, 2, "a mode in 0..07777");
  rc = acoro_file_chmod(f, (int)mode, &op);
  return started(L, rc, op, K_DONE);
}

static int f_utime(lua_State *L) {
  acoro_file_t *f = check_file(L, 1);
  double atime = luaL_checknumber(L, 2), mtime = luaL_checknumber(L, 3);
  acoro_fsop_t *op = NULL;
  int rc = acoro_file_utime(f, atime, mtime, &op);
  return started(L, rc, op, K_DONE);
}

static int f_stat(lua_State *L) {
  acoro_file_t *f = check_file(L, 1);
  acoro_fsop_t *op = NULL;
  int rc = acoro_file_stat(f, &op);
  return started(L, rc, op, K_STAT);
}

static int f_close(lua_State *L) {
  acoro_file_t *f = check_file(L, 1);
  acoro_fsop_t *op = NULL;
  int rc = acoro_file_close(f, &op);
  return started(L, rc, op, K_DONE);
}

static int f_buffered(lua_State *L) {
  return lbind_buffered(L, acoro_file_reader(check_file(L, 1)));
}

static int f_take(lua_State *L) {
  acoro_file_t *f = check_file(L, 1);
  return lbind_take(L, acoro_file_reader(f), luaL_checkinteger(L, 2));
}

/* f:_take_line(max, from) searches from offset from (what an earlier call
 * looked at already). */
static int f_take_line(lua_State *L) {
  acoro_file_t *f = check_file(L, 1);
  return lbind_take_line(L, acoro_file_reader(f), luaL_checkinteger(L, 2),
                         luaL_optinteger(L, 3, 0));
}

/* f:_status() -> nothing while more may come, "eof", or message, code */
static int f_status(lua_State *L) {
  return lbind_read_status(
      L, acoro_reader_status(acoro_file_reader(check_file(L, 1))));
}

static int f_tell(lua_State *L) {
  lua_pushnumber(L, (lua_Number)acoro_file_tell(check_file(L, 1)));
  return 1;
}

static void file_release(void *p) { acoro_file_release(p); }
static int file_is_open(const void *p) { return acoro_file_is_open(p); }
static const lbind_life_t file_life = {FILE_MT, file_release, NULL,
                                       file_is_open};

static int f_tostring(lua_State *L) {
  lbind_box_t *b = lbind_box(L, 1, FILE_MT);
  int open = b->p != NULL && acoro_file_is_open(b->p);
  lua_pushfstring(L, "acoro.file (%p%s)", (void *)b->p, open ? "" : ", closed");
  return 1;
}

static const luaL_Reg file_methods[] = {
    {"_fill", f_fill},         {"_write", f_write},
    {"_seek", f_seek},         {"_close", f_close},
    {"_chmod", f_chmod},       {"_utime", f_utime},
    {"_stat", f_stat},         {"_buffered", f_buffered},
    {"_take", f_take},         {"_take_line", f_take_line},
    {"_status", f_status},     {"_tell", f_tell},
    {"_openat", f_openat},     {"_mkdirat", f_mkdirat},
    {"_lstatat", f_lstatat},   {"_renameat", f_renameat},
    {"_unlinkat", f_unlinkat}, {NULL, NULL}};

static const luaL_Reg op_methods[] = {
    {"_wait", op_wait}, {"_result", op_result}, {NULL, NULL}};

static const luaL_Reg fs_funcs[] = {{"open", fs_open},
                                    {"stat", fs_stat},
                                    {"unlink", fs_unlink},
                                    {"rename", fs_rename},
                                    {"mkdir", fs_mkdir},
                                    {"rmdir", fs_rmdir},
                                    {"readdir", fs_readdir},
                                    {"from_fd", fs_from_fd},
                                    {"lstat", fs_lstat},
                                    {"chmod", fs_chmod},
                                    {"utime", fs_utime},
                                    {"getuid", fs_getuid},
                                    {"sha256", fs_sha256},
                                    {"statfs", fs_statfs},
                                    {"random", fs_random},
                                    {"opendir", fs_opendir},
                                    {NULL, NULL}};

static const luaL_Reg sha_methods[] = {
    {"update", sha_update}, {"hex", sha_hex}, {NULL, NULL}};

void lfs_open(lua_State *L, acoro_engine_t *e) {
  lbind_type(L, e, file_methods, &file_life);
  lbind_tostring(L, FILE_MT, f_tostring);
  lbind_type(L, e, op_methods, &op_life);
  lio_metatable(L, e, SHA256_MT, sha_methods, sha_gc);
  lua_newtable(L);
  lbind_funcs(L, e, fs_funcs);
  luaL_getmetatable(L, FILE_MT);
  lua_setfield(L, -2, "file_mt");
}

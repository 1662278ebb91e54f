/* test-fs.c: files, file-system operations and pool work of the core
 * (fs.c, pool.c): results, and hosts that let go before the pool is done. */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

/* A coroutine that runs one operation: starts it on START, waits, and on
 * RESUME records the result and ends. */
typedef struct {
  acoro_fsop_t *op;
  int64_t result;
  int resumed;
} one_op_t;

static void step_wait_op(acoro_co_t *co, int reason, void *arg) {
  one_op_t *o = arg;
  if (reason == ACORO_WAKE_START && acoro_fsop_wait(co, o->op, 10) == 0)
    return;
  o->resumed = 1;
  o->result = acoro_fsop_result(o->op);
  acoro_co_exit(co, 0);
}

static int64_t run_op(acoro_engine_t *e, acoro_fsop_t *op) {
  one_op_t o = {op, 0, 0};
  acoro_co_t *co = test_spawn(e, step_wait_op, &o);
  ASSERT_EQ(acoro_engine_run(e), 0);
  ASSERT_EQ(o.resumed, 1);
  ASSERT_EQ(acoro_fsop_done(op), 1);
  acoro_co_release(co);
  return o.result;
}

TEST(fs_open_missing_is_enoent) {
  acoro_engine_t *e = test_engine();
  acoro_fsop_t *op = NULL;
  ASSERT_EQ(
      acoro_fs_start(e, ACORO_FS_OPEN, "/nonexistent/acoro/x", NULL, 0, 0, &op),
      0);
  ASSERT_EQ(run_op(e, op), UV_ENOENT);
  acoro_fsop_release(op);
  acoro_engine_free(e);
}

TEST(file_write_seek_read_back) {
  acoro_engine_t *e = test_engine();
  char path[] = "/tmp/acoro-test-fs-XXXXXX";
  acoro_fsop_t *op = NULL;
  acoro_file_t *f = NULL;
  const char *p;
  int fd = mkstemp(path);
  ASSERT_TRUE(fd >= 0);
  close(fd);
  ASSERT_EQ(acoro_fs_start(e, ACORO_FS_OPEN, path, NULL, UV_FS_O_RDWR, 0, &op),
            0);
  ASSERT_TRUE(run_op(e, op) >= 0);
  ASSERT_EQ(acoro_fsop_file(op, &f), 0);
  ASSERT_EQ(acoro_fsop_file(op, &f), ACORO_EINVAL); /* once */
  acoro_fsop_release(op);
  ASSERT_EQ(acoro_file_write(f, "hello world", 11, &op), 0);
  ASSERT_EQ(run_op(e, op), 11);
  acoro_fsop_release(op);
  ASSERT_EQ(acoro_file_tell(f), 11);
  ASSERT_EQ(acoro_file_seek(f, 0, 6, &op), 0);
  ASSERT_EQ(run_op(e, op), 6);
  acoro_fsop_release(op);
  ASSERT_EQ(acoro_file_fill(f, 1, &op), 0);
  ASSERT_EQ(run_op(e, op), 5);
  acoro_fsop_release(op);
  ASSERT_EQ(acoro_reader_buffered(acoro_file_reader(f), &p), 5);
  ASSERT_EQ(memcmp(p, "world", 5), 0);
  acoro_reader_consume(acoro_file_reader(f), 2);
  ASSERT_EQ(acoro_file_tell(f), 8);
  ASSERT_EQ(acoro_file_fill(f, 10, &op), 0);
  ASSERT_EQ(run_op(e, op), 0);
  acoro_fsop_release(op);
  ASSERT_EQ(acoro_reader_status(acoro_file_reader(f)), UV_EOF);
  ASSERT_EQ(acoro_file_close(f, &op), 0);
  ASSERT_EQ(acoro_file_close(f, NULL), ACORO_ECLOSED);
  ASSERT_EQ(run_op(e, op), 0);
  acoro_fsop_release(op);
  ASSERT_EQ(acoro_file_fill(f, 1, &op), ACORO_ECLOSED);
  acoro_file_release(f);
  unlink(path);
  acoro_engine_free(e);
}

/* fill_all takes the rest of a regular file from the position in one
 * operation (one buffer, the bytes in order, EOF known), not a chunk. */
TEST(file_fill_all_reads_the_rest_in_one_operation) {
  acoro_engine_t *e = test_engine();
  char path[] = "/tmp/acoro-test-fs-XXXXXX";
  size_t n = 3 * 1024 * 1024 + 7, i;
  char *data = malloc(n);
  acoro_fsop_t *op = NULL;
  acoro_file_t *f = NULL;
  const char *p;
  int fd = mkstemp(path);
  ASSERT_TRUE(fd >= 0 && data != NULL);
  for (i = 0; i < n; i++)
    data[i] = (char)('a' + i % 23);
  ASSERT_EQ(write(fd, data, n), (ssize_t)n);
  close(fd);
  ASSERT_EQ(
      acoro_fs_start(e, ACORO_FS_OPEN, path, NULL, UV_FS_O_RDONLY, 0, &op), 0);
  ASSERT_TRUE(run_op(e, op) >= 0);
  ASSERT_EQ(acoro_fsop_file(op, &f), 0);
  acoro_fsop_release(op);
  ASSERT_EQ(acoro_file_fill(f, 5, &op),
            0); /* a chunk first: the position moves */
  ASSERT_TRUE(run_op(e, op) >= 5);
  acoro_fsop_release(op);
  acoro_reader_consume(acoro_file_reader(f), 5);
  ASSERT_EQ(acoro_file_fill_all(f, &op), 0);
  run_op(e, op);
  acoro_fsop_release(op);
  ASSERT_EQ(acoro_reader_status(acoro_file_reader(f)), UV_EOF);
  ASSERT_EQ(acoro_reader_buffered(acoro_file_reader(f), &p), n - 5);
  ASSERT_EQ(memcmp(p, data + 5, n - 5), 0);
  ASSERT_EQ(acoro_file_close(f, NULL), 0);
  acoro_file_release(f);
  free(data);
  unlink(path);
  acoro_engine_free(e);
}

/* The host gives up on operations at once: they finish as the engine
 * drains its loop, and the file an open got is closed. */
TEST(fs_ops_released_before_done) {
  acoro_engine_t *e = test_engine();
  acoro_fsop_t *op = NULL;
  ASSERT_EQ(acoro_fs_start(e, ACORO_FS_STAT, "/", NULL, 0, 0, &op), 0);
  acoro_fsop_release(op);
  ASSERT_EQ(acoro_fs_start(e, ACORO_FS_OPEN, "/dev/null", NULL, 0, 0, &op), 0);
  acoro_fsop_release(op);
  ASSERT_EQ(acoro_fs_start(e, ACORO_FS_SCANDIR, "/", NULL, 0, 0, &op), 0);
  acoro_fsop_release(op);
  acoro_engine_free(e);
}

/* lstat sees a symbolic link itself (stat follows it); chmod and utime
 * change what stat reports; uid is the owner's. */
TEST(fs_lstat_chmod_utime) {
  acoro_engine_t *e = test_engine();
  char dir[] = "/tmp/acoro-test-fs-XXXXXX", file[64], link[64];
  acoro_fsop_t *op = NULL;
  acoro_fs_stat_t st;
  FILE *fp;
  ASSERT_TRUE(mkdtemp(dir) != NULL);
  snprintf(file, sizeof file, "%s/f", dir);
  snprintf(link, sizeof link, "%s/l", dir);
  fp = fopen(file, "w");
  ASSERT_TRUE(fp != NULL);
  fclose(fp);
  ASSERT_EQ(symlink("f", link), 0);
  ASSERT_EQ(acoro_fs_start(e, ACORO_FS_CHMOD, file, NULL, 0, 0640, &op), 0);
  ASSERT_EQ(run_op(e, op), 0);
  acoro_fsop_release(op);
  ASSERT_EQ(acoro_fs_utime(e, file, 1000.0, 1234567890.5, &op), 0);
  ASSERT_EQ(run_op(e, op), 0);
  acoro_fsop_release(op);
  ASSERT_EQ(acoro_fs_start(e, ACORO_FS_STAT, link, NULL, 0, 0, &op), 0);
  ASSERT_EQ(run_op(e, op), 0);
  ASSERT_EQ(acoro_fsop_stat(op, &st), 0);
  ASSERT_EQ(st.mode & 07777, 0640);
  ASSERT_TRUE(S_ISREG(st.mode));
  ASSERT_TRUE(st.mtime > 1234567890.49 && st.mtime < 1234567890.51);
  ASSERT_EQ(st.uid, (int64_t)getuid());
  acoro_fsop_release(op);
  ASSERT_EQ(acoro_fs_start(e, ACORO_FS_LSTAT, link, NULL, 0, 0, &op), 0);
  ASSERT_EQ(run_op(e, op), 0);
  ASSERT_EQ(acoro_fsop_stat(op, &st), 0);
  ASSERT_TRUE(S_ISLNK(st.mode));
  acoro_fsop_release(op);
  ASSERT_EQ(acoro_fs_start(e, ACORO_FS_LSTAT, "/nonexistent/acoro/x", NULL, 0,
                           0, &op),
            0);
  ASSERT_EQ(run_op(e, op), UV_ENOENT);
  acoro_fsop_release(op);
  ASSERT_EQ(unlink(link), 0);
  ASSERT_EQ(unlink(file), 0);
  ASSERT_EQ(rmdir(dir), 0);
  acoro_engine_free(e);
}

/* The engine goes first: it closes the file; the host's release later
 * touches nothing of the engine. */
TEST(file_outlives_engine_free) {
  acoro_engine_t *e = test_engine();
  acoro_fsop_t *op = NULL, *pending = NULL;
  acoro_file_t *f = NULL;
  ASSERT_EQ(acoro_fs_start(e, ACORO_FS_OPEN, "/dev/null", NULL, 0, 0, &op), 0);
  ASSERT_TRUE(run_op(e, op) >= 0);
  ASSERT_EQ(acoro_fsop_file(op, &f), 0);
  acoro_fsop_release(op);
  ASSERT_EQ(acoro_file_fill(f, 1, &pending), 0);
  acoro_engine_free(e);
  ASSERT_EQ(acoro_file_is_open(f), 0);
  ASSERT_EQ(acoro_fsop_done(pending), 1);
  acoro_fsop_release(pending);
  acoro_file_release(f);
}

static int work_ran, work_freed;

static void slow_work(void *data) {
  (void)data;
  usleep(20000);
  work_ran = 1;
}

static void free_work(void *data) {
  (void)data;
  work_freed = 1;
}

/* The waiter is gone before the work ends (a terminated coroutine): the
 * work completes and frees its data. */
TEST(work_released_before_done) {
  acoro_engine_t *e = test_engine();
  acoro_work_t *w = NULL;
  ASSERT_EQ(acoro_work_submit(e, slow_work, free_work, NULL, &w), 0);
  ASSERT_EQ(acoro_work_done(w), 0);
  acoro_work_release(w);
  ASSERT_EQ(work_freed, 0);
  acoro_engine_free(e);
  ASSERT_EQ(work_ran, 1);
  ASSERT_EQ(work_freed, 1);
}

TEST(pool_size_is_fixed_once_used) {
  acoro_engine_t *e = test_engine();
  acoro_fsop_t *op = NULL;
  ASSERT_EQ(acoro_pool_size(3), 3);
  ASSERT_EQ(acoro_pool_size(0), 3);
  ASSERT_EQ(acoro_fs_start(e, ACORO_FS_STAT, "/", NULL, 0, 0, &op), 0);
  ASSERT_EQ(acoro_pool_size(5), ACORO_ESTATE);
  ASSERT_EQ(acoro_pool_size(0), 3);
  acoro_fsop_release(op);
  acoro_engine_free(e);
}

/* fchmod, futimens and fstat act on the descriptor: a symbolic link put in
 * the file's place after it was opened changes nothing of the link's
 * target; an exclusive open (O_EXCL|O_NOFOLLOW) refuses a link. */
TEST(file_chmod_utime_after_swap_for_link) {
  acoro_engine_t *e = test_engine();
  char dir[] = "/tmp/acoro-test-fs-XXXXXX", file[64], target[64], moved[64];
  acoro_fsop_t *op = NULL;
  acoro_file_t *f = NULL;
  acoro_fs_stat_t st;
  struct stat tst;
  FILE *fp;
  ASSERT_TRUE(mkdtemp(dir) != NULL);
  snprintf(file, sizeof file, "%s/f", dir);
  snprintf(target, sizeof target, "%s/target", dir);
  snprintf(moved, sizeof moved, "%s/moved", dir);
  fp = fopen(target, "w");
  ASSERT_TRUE(fp != NULL);
  fclose(fp);
  ASSERT_EQ(chmod(target, 0600), 0);
  ASSERT_EQ(acoro_fs_start(e, ACORO_FS_OPEN, file, NULL,
                           UV_FS_O_WRONLY | UV_FS_O_CREAT | UV_FS_O_EXCL |
                               UV_FS_O_NOFOLLOW,
                           0600, &op),
            0);
  ASSERT_TRUE(run_op(e, op) >= 0);
  ASSERT_EQ(acoro_fsop_file(op, &f), 0);
  acoro_fsop_release(op);
  /* the attacker's swap: the name now is a link to target */
  ASSERT_EQ(rename(file, moved), 0);
  ASSERT_EQ(symlink(target, file), 0);
  ASSERT_EQ(acoro_file_chmod(f, 0755, &op), 0);
  ASSERT_EQ(run_op(e, op), 0);
  acoro_fsop_release(op);
  ASSERT_EQ(acoro_file_utime(f, 1000.0, 1234567890.5, &op), 0);
  ASSERT_EQ(run_op(e, op), 0);
  acoro_fsop_release(op);
  ASSERT_EQ(acoro_file_utime(f, 0.0 / 0.0, 1.0, &op), ACORO_EINVAL);
  ASSERT_EQ(acoro_file_chmod(f, 010000, &op), ACORO_EINVAL);
  ASSERT_EQ(acoro_file_stat(f, &op), 0);
  ASSERT_EQ(run_op(e, op), 0);
  ASSERT_EQ(acoro_fsop_stat(op, &st), 0);
  ASSERT_EQ(st.mode & 07777, 0755);
  ASSERT_TRUE(st.mtime > 1234567890.49 && st.mtime < 1234567890.51);
  acoro_fsop_release(op);
  ASSERT_EQ(stat(target, &tst), 0);
  ASSERT_EQ(tst.st_mode & 07777, 0600); /* the link's target untouched */
  ASSERT_TRUE(tst.st_ino != (ino_t)st.ino);
  ASSERT_EQ(acoro_file_close(f, &op), 0);
  ASSERT_EQ(run_op(e, op), 0);
  acoro_fsop_release(op);
  acoro_file_release(f);
  /* an exclusive open of the link's name fails, the target stays empty */
  ASSERT_EQ(acoro_fs_start(e, ACORO_FS_OPEN, file, NULL,
                           UV_FS_O_WRONLY | UV_FS_O_CREAT | UV_FS_O_EXCL |
                               UV_FS_O_NOFOLLOW,
                           0600, &op),
            0);
  ASSERT_EQ(run_op(e, op), UV_EEXIST);
  acoro_fsop_release(op);
  ASSERT_EQ(acoro_fs_start(e, ACORO_FS_STATFS, dir, NULL, 0, 0, &op), 0);
  ASSERT_EQ(run_op(e, op), 0);
  {
    uint64_t avail = 0, total = 0;
    ASSERT_EQ(acoro_fsop_statfs(op, &avail, &total), 0);
    ASSERT_TRUE(total > 0 && avail <= total);
  }
  acoro_fsop_release(op);
  ASSERT_EQ(unlink(moved), 0);
  ASSERT_EQ(unlink(file), 0);
  ASSERT_EQ(unlink(target), 0);
  ASSERT_EQ(rmdir(dir), 0);
  acoro_engine_free(e);
}

/* Under a directory handle: a link where a directory or a file is opened
 * is refused (never followed), even with O_CREAT; names must be one
 * component; rename and unlink act in the handle's directory even after
 * its path was swapped for a link elsewhere. */
TEST(dir_handle_never_follows_links) {
  acoro_engine_t *e = test_engine();
  char dir[] = "/tmp/acoro-test-fs-XXXXXX", sub[64], out[64], path[96];
  acoro_fsop_t *op = NULL;
  acoro_file_t *d = NULL, *s = NULL, *f = NULL;
  acoro_fs_stat_t st;
  struct stat sb;
  ASSERT_TRUE(mkdtemp(dir) != NULL);
  snprintf(sub, sizeof sub, "%s/sub", dir);
  snprintf(out, sizeof out, "%s/out", dir);
  ASSERT_EQ(mkdir(sub, 0700), 0);
  ASSERT_EQ(mkdir(out, 0700), 0);
  snprintf(path, sizeof path, "%s/lnk", dir);
  ASSERT_EQ(symlink(out, path), 0);
  snprintf(path, sizeof path, "%s/flink", sub);
  ASSERT_EQ(symlink("../out/victim", path), 0);
  ASSERT_EQ(acoro_fs_start(e, ACORO_FS_OPEN, dir, NULL,
                           UV_FS_O_RDONLY | UV_FS_O_DIRECTORY, 0, &op),
            0);
  ASSERT_TRUE(run_op(e, op) >= 0);
  ASSERT_EQ(acoro_fsop_file(op, &d), 0);
  acoro_fsop_release(op);
  /* a link where a directory is asked for */
  ASSERT_EQ(
      acoro_dir_open(d, "lnk", UV_FS_O_RDONLY | UV_FS_O_DIRECTORY, 0, &op), 0);
  ASSERT_TRUE(run_op(e, op) == UV_ENOTDIR || acoro_fsop_result(op) == UV_ELOOP);
  acoro_fsop_release(op);
  ASSERT_EQ(acoro_dir_open(d, "..", UV_FS_O_RDONLY, 0, &op), ACORO_EINVAL);
  ASSERT_EQ(acoro_dir_open(d, "sub/flink", UV_FS_O_RDONLY, 0, &op),
            ACORO_EINVAL);
  ASSERT_EQ(
      acoro_dir_open(d, "sub", UV_FS_O_RDONLY | UV_FS_O_DIRECTORY, 0, &op), 0);
  ASSERT_TRUE(run_op(e, op) >= 0);
  ASSERT_EQ(acoro_fsop_file(op, &s), 0);
  acoro_fsop_release(op);
  /* a dangling link at a name to create: refused, nothing made in out */
  ASSERT_EQ(
      acoro_dir_open(s, "flink", UV_FS_O_WRONLY | UV_FS_O_CREAT, 0600, &op), 0);
  ASSERT_EQ(run_op(e, op), UV_ELOOP);
  acoro_fsop_release(op);
  snprintf(path, sizeof path, "%s/victim", out);
  ASSERT_EQ(stat(path, &sb), -1);
  ASSERT_EQ(acoro_dir_lstat(s, "flink", &op), 0);
  ASSERT_EQ(run_op(e, op), 0);
  ASSERT_EQ(acoro_fsop_stat(op, &st), 0);
  ASSERT_TRUE(S_ISLNK(st.mode));
  acoro_fsop_release(op);
  ASSERT_EQ(acoro_dir_open(s, "new",
                           UV_FS_O_WRONLY | UV_FS_O_CREAT | UV_FS_O_EXCL, 0600,
                           &op),
            0);
  ASSERT_TRUE(run_op(e, op) >= 0);
  ASSERT_EQ(acoro_fsop_file(op, &f), 0);
  acoro_fsop_release(op);
  acoro_file_release(f);
  /* sub's path now leads to out: the handle still is sub */
  snprintf(path, sizeof path, "%s/moved", dir);
  ASSERT_EQ(rename(sub, path), 0);
  ASSERT_EQ(symlink(out, sub), 0);
  ASSERT_EQ(acoro_dir_rename(s, "new", "final", &op), 0);
  ASSERT_EQ(run_op(e, op), 0);
  acoro_fsop_release(op);
  snprintf(path, sizeof path, "%s/moved/final", dir);
  ASSERT_EQ(stat(path, &sb), 0);
  ASSERT_EQ(acoro_dir_unlink(s, "final", 0, &op), 0);
  ASSERT_EQ(run_op(e, op), 0);
  acoro_fsop_release(op);
  ASSERT_EQ(acoro_dir_unlink(s, "flink", 0, &op), 0);
  ASSERT_EQ(run_op(e, op), 0);
  acoro_fsop_release(op);
  ASSERT_EQ(acoro_dir_mkdir(d, "made", 0700, &op), 0);
  ASSERT_EQ(run_op(e, op), 0);
  acoro_fsop_release(op);
  ASSERT_EQ(acoro_dir_unlink(d, "made", 1, &op), 0);
  ASSERT_EQ(run_op(e, op), 0);
  acoro_fsop_release(op);
  acoro_file_release(s);
  acoro_file_release(d);
  ASSERT_EQ(unlink(sub), 0);
  snprintf(path, sizeof path, "%s/lnk", dir);
  ASSERT_EQ(unlink(path), 0);
  snprintf(path, sizeof path, "%s/moved", dir);
  ASSERT_EQ(rmdir(path), 0);
  ASSERT_EQ(rmdir(out), 0); /* empty: nothing was made through a link */
  ASSERT_EQ(rmdir(dir), 0);
  acoro_engine_free(e);
}

/* fs.c: files and file-system calls on libuv's thread pool (uv_fs_*), so
 * that the engine thread never blocks on a disk. Every call is an
 * operation object a coroutine waits for; a file runs its operations one at
 * a time, in the order they were asked for, and keeps a read buffer and a
 * position of its own (the position of the first unread buffered byte).
 * ENGINE THREAD ONLY (the requests run on the pool; their callbacks here).
 *
 * SIZE: over 800 lines (about 850): files, their directory-relative (*at)
 * operations and path calls share one operation object, one queue per file
 * and one completion path (op_finish); the *at operations (about 250
 * lines: at_work, on_at_op, at_new) are the piece that could move to a
 * file of its own, at the cost of exporting that queue's internals. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A read asks the pool for at least this much. */
#define FILE_CHUNK (256 * 1024)

/* File operations; OP_UTIME is a path operation (acoro_fs_utime) that
 * needs doubles acoro_fs_start does not take. OP_FCHMOD, OP_FUTIME and
 * OP_FSTAT act on the open descriptor, never on a path that may have been
 * swapped for a symbolic link since the file was opened. */
enum {
  OP_READ = 100,
  OP_WRITE,
  OP_SEEK,
  OP_CLOSE,
  OP_UTIME,
  OP_FCHMOD,
  OP_FUTIME,
  OP_FSTAT,
  /* Everything from the position to the end of a regular file, in one
   * buffer: a pool job of its own (fstat, then reads until EOF). */
  OP_READ_ALL,
  /* Under a directory (the file is one): one name in it, never through a
   * symbolic link; run as uv_queue_work (libuv has no *at calls). */
  OP_AT_OPEN,
  OP_AT_MKDIR,
  OP_AT_LSTAT,
  OP_AT_RENAME,
  OP_AT_UNLINK
};

/* OWNERSHIP: an operation has two references: the host's (until
 * acoro_fsop_release) and the engine's (while it is queued or in libuv,
 * dropped when it completes), so a coroutine that timed out or ended may
 * drop it while the pool still works on it. A file operation holds a
 * reference to its file. */
struct acoro_fsop_s {
  uv_fs_t req;
  uv_work_t work; /* the AT operations' request */
  acoro_engine_t *engine;
  acoro_file_t *file; /* file operations: the file; OPEN: the result */
  acoro_fsop_t *next; /* the file's queue */
  int kind;
  uint32_t refs;
  uint8_t started, done, has_req, taken;
  int64_t result;
  char *buf;            /* READ: the bytes read; WRITE: a copy of the data */
  size_t len, off;      /* WRITE: bytes to write, bytes written so far */
  size_t cap;           /* READ_ALL: buf's size (len: the bytes read) */
  int rstatus;          /* READ_ALL: UV_EOF, or the error that ended it */
  int64_t offset;       /* READ/WRITE: the file offset (-1: the fd's own) */
  int whence, flags;    /* SEEK: 0 set, 1 cur, 2 end; OPEN: open flags */
  uint32_t gen;         /* READ: the file's buffer generation at the start */
  int mode;             /* FCHMOD, AT_OPEN, AT_MKDIR: the permission bits */
  int dfd;              /* AT: the directory's fd, read on the engine thread */
  char *name2;          /* AT_RENAME: the new name (buf holds the old one) */
  acoro_file_t *opened; /* AT_OPEN: the file opened, until taken */
  double atime, mtime;  /* FUTIME */
  uv_stat_t st;         /* STAT, LSTAT, FSTAT */
  uint64_t fs_avail, fs_total; /* STATFS: bytes free to us, bytes in all */
  acoro_io_wait_t wait;
};

/* A file. pos is the offset of the first unread byte in rd; the bytes
 * buffered are those after it. gen changes whenever the buffer is dropped (a
 * write, a seek): a read that completes afterwards is stale and discarded.
 * OWNERSHIP: one reference for the host, one per queued operation. */
struct acoro_file_s {
  io_obj_t io; /* open: not closed by the host (operations may run) */
  uv_file fd;
  uint8_t append; /* O_APPEND: writes go to the end */
  uint8_t nopos;  /* reads and writes use the fd's own offset (a FIFO) */
  uint8_t keepfd; /* closing leaves the fd open (stdin) */
  acoro_reader_t rd;
  int64_t pos;
  uint32_t gen;
  acoro_fsop_t *qhead, *qtail; /* the head runs, the rest wait */
};

static int pool_used;

void pool_note_use(void) { pool_used = 1; }
int pool_was_used(void) { return pool_used; }

static void file_free(io_obj_t *o) {
  acoro_file_t *f = (acoro_file_t *)o;
  rd_free(&f->rd);
  free(f);
}

static void file_close_io(io_obj_t *o) {
  acoro_file_close((acoro_file_t *)o, NULL);
}

static const io_type_t file_type = {file_close_io, file_free};

/* Consumed bytes move the position. */
static void file_consumed(acoro_reader_t *r, size_t n) {
  acoro_file_t *f = (acoro_file_t *)((char *)r - offsetof(acoro_file_t, rd));
  f->pos += (int64_t)n;
}

static void op_unref(acoro_fsop_t *op) {
  if (--op->refs > 0)
    return;
  if (op->has_req)
    uv_fs_req_cleanup(&op->req);
  if (op->kind == ACORO_FS_OPEN && op->file != NULL)
    acoro_file_release(op->file); /* opened, never taken */
  else if (op->file != NULL)
    io_unref(&op->file->io);
  if (op->opened != NULL)
    acoro_file_release(op->opened); /* opened under a directory, not taken */
  free(op->buf);
  free(op->name2);
  free(op);
}

static acoro_fsop_t *op_new(acoro_engine_t *e, int kind) {
  acoro_fsop_t *op = calloc(1, sizeof *op);
  if (op == NULL)
    return NULL;
  op->engine = e;
  op->kind = kind;
  op->refs = 2;
  op->wait.cancel = io_cancel_nothing;
  op->req.data = op;
  return op;
}

/* The operation is over: its waiter wakes, the engine lets go. */
static void op_finish(acoro_fsop_t *op) {
  op->done = 1;
  acoro_io_done(&op->wait);
  op_unref(op);
}

static acoro_file_t *file_new(acoro_engine_t *e, uv_file fd, int append,
                              int keepfd) {
  acoro_file_t *f = calloc(1, sizeof *f);
  if (f == NULL)
    return NULL;
  io_init(&f->io, e, &file_type, 1); /* the host's */
  f->fd = fd;
  f->rd.consumed = file_consumed;
  f->append = (uint8_t)append;
  /* Not seekable (a FIFO, a terminal): the fd's own offset it is. lseek
   * does no I/O. */
  f->nopos = keepfd || lseek(fd, 0, SEEK_CUR) < 0;
  f->keepfd = (uint8_t)keepfd;
  io_link(&f->io);
  return f;
}

/* Drops the read buffer (a write or a seek moved away from it). */
static void drop_buffer(acoro_file_t *f) {
  rd_reset(&f->rd);
  f->gen++;
}

static void file_next(acoro_file_t *f);

static void on_file_op(uv_fs_t *req);
static void at_work(uv_work_t *w);
static void on_at_op(uv_work_t *w, int status);
static void all_work(uv_work_t *w);
static void on_all_op(uv_work_t *w, int status);

/* Read bytes for the buffer: taken over whole when the buffer is empty (no
 * copy: a large read costs one pass over memory, as a plain read), else
 * appended. The buffer gives up what it had (nothing unread). */
static void file_got(acoro_file_t *f, char **buf, size_t n, size_t cap) {
  if (f->rd.len == 0 && cap >= FILE_CHUNK) {
    free(f->rd.buf);
    f->rd.buf = *buf;
    f->rd.cap = cap;
    f->rd.pos = 0;
    f->rd.len = n;
    f->rd.scan = 0;
    *buf = NULL;
  } else if (rd_append(&f->rd, *buf, n, FILE_CHUNK) != 0) {
    f->rd.status = UV_ENOMEM;
  }
}

/* Starts the file's head operation; 1 if it completed at once. */
static int file_start(acoro_file_t *f, acoro_fsop_t *op) {
  uv_loop_t *loop = &f->io.engine->loop;
  uv_buf_t b;
  int rc = 0;
  op->started = 1;
  switch (op->kind) {
  case OP_READ:
    op->gen = f->gen;
    op->offset = f->nopos ? -1 : f->pos + (int64_t)f->rd.len;
    b = uv_buf_init(op->buf, (unsigned)op->len);
    rc = uv_fs_read(loop, &op->req, f->fd, &b, 1, op->offset, on_file_op);
    break;
  case OP_WRITE:
    if (op->off == 0) /* the first part: reading starts afresh after it */
      drop_buffer(f);
    op->offset = f->append || f->nopos ? -1 : f->pos;
    b = uv_buf_init(op->buf + op->off, (unsigned)(op->len - op->off));
    rc = uv_fs_write(loop, &op->req, f->fd, &b, 1, op->offset, on_file_op);
    break;
  case OP_SEEK:
    if (op->whence == 2) {
      rc = uv_fs_fstat(loop, &op->req, f->fd, on_file_op);
      break;
    } else {
      int64_t to = op->whence == 0 ? op->offset : f->pos + op->offset;
      if (to < 0) {
        op->result = UV_EINVAL;
      } else if (to >= f->pos && to <= f->pos + (int64_t)f->rd.len) {
        acoro_reader_consume(&f->rd, (size_t)(to - f->pos));
        op->result = to;
      } else {
        f->pos = to;
        drop_buffer(f);
        op->result = to;
      }
      return 1;
    }
  case OP_READ_ALL:
    op->gen = f->gen;
    op->offset = f->pos + (int64_t)f->rd.len;
    op->dfd = f->fd;
    op->work.data = op;
    rc = uv_queue_work(loop, &op->work, all_work, on_all_op);
    break;
  case OP_FCHMOD:
    rc = uv_fs_fchmod(loop, &op->req, f->fd, op->mode, on_file_op);
    break;
  case OP_FUTIME:
    rc = uv_fs_futime(loop, &op->req, f->fd, op->atime, op->mtime, on_file_op);
    break;
  case OP_FSTAT:
    rc = uv_fs_fstat(loop, &op->req, f->fd, on_file_op);
    break;
  case OP_AT_OPEN:
  case OP_AT_MKDIR:
  case OP_AT_LSTAT:
  case OP_AT_RENAME:
  case OP_AT_UNLINK:
    op->dfd = f->fd;
    op->work.data = op;
    rc = uv_queue_work(loop, &op->work, at_work, on_at_op);
    break;
  case OP_CLOSE:
    if (f->keepfd) { /* the fd stays the process's (stdin) */
      op->result = 0;
      return 1;
    }
    rc = uv_fs_close(loop, &op->req, f->fd, on_file_op);
    break;
  default:
    rc = UV_EINVAL;
  }
  if (rc != 0) {
    op->result = rc;
    return 1;
  }
  op->has_req = 1;
  return 0;
}

/* Starts queued operations until one waits for the pool. */
static void file_next(acoro_file_t *f) {
  while (f->qhead != NULL && !f->qhead->started) {
    acoro_fsop_t *op = f->qhead;
    if (!file_start(f, op))
      return;
    f->qhead = op->next;
    if (f->qhead == NULL)
      f->qtail = NULL;
    op_finish(op);
  }
}

static void on_file_op(uv_fs_t *req) {
  acoro_fsop_t *op = req->data;
  acoro_file_t *f = op->file;
  ssize_t n = req->result;
  uv_fs_req_cleanup(req);
  op->has_req = 0;
  switch (op->kind) {
  case OP_READ:
    op->result = n;
    if (op->gen == f->gen &&
        (f->nopos || op->offset == f->pos + (int64_t)f->rd.len)) {
      if (n > 0) {
        file_got(f, &op->buf, (size_t)n, op->len);
      } else {
        f->rd.status = n == 0 ? UV_EOF : (int)n;
      }
    }
    break;
  case OP_WRITE:
    if (n < 0) {
      op->result = n;
      break;
    }
    op->off += (size_t)n;
    if (!f->append && !f->nopos)
      f->pos += n;
    op->result = (int64_t)op->off;
    /* A short write: the rest goes next (file_start sets result if it
     * cannot). */
    if (op->off < op->len && n > 0 && file_start(f, op) == 0)
      return;
    if (f->append) {
      off_t at = lseek(f->fd, 0, SEEK_CUR); /* no I/O: the fd's offset */
      if (at >= 0)
        f->pos = at;
    }
    break;
  case OP_SEEK:
    if (n < 0) {
      op->result = n;
    } else if ((int64_t)req->statbuf.st_size + op->offset < 0) {
      op->result = UV_EINVAL;
    } else {
      f->pos = (int64_t)req->statbuf.st_size + op->offset;
      drop_buffer(f);
      op->result = f->pos;
    }
    break;
  case OP_FSTAT:
    op->result = n;
    if (n >= 0)
      op->st = req->statbuf;
    break;
  case OP_FCHMOD:
  case OP_FUTIME:
    op->result = n;
    break;
  case OP_CLOSE:
    op->result = n;
    f->fd = -1;
    break;
  }
  f->qhead = op->next;
  if (f->qhead == NULL)
    f->qtail = NULL;
  file_next(f);
  op_finish(op);
}

/* The parts of a struct stat that acoro_fsop_stat reads. */
static void stat_to_uv(const struct stat *sb, uv_stat_t *st) {
  memset(st, 0, sizeof *st);
  st->st_dev = (uint64_t)sb->st_dev;
  st->st_ino = (uint64_t)sb->st_ino;
  st->st_mode = (uint64_t)sb->st_mode;
  st->st_nlink = (uint64_t)sb->st_nlink;
  st->st_uid = (uint64_t)sb->st_uid;
  st->st_size = (uint64_t)sb->st_size;
  st->st_atim.tv_sec = sb->st_atim.tv_sec;
  st->st_atim.tv_nsec = sb->st_atim.tv_nsec;
  st->st_mtim.tv_sec = sb->st_mtim.tv_sec;
  st->st_mtim.tv_nsec = sb->st_mtim.tv_nsec;
  st->st_ctim.tv_sec = sb->st_ctim.tv_sec;
  st->st_ctim.tv_nsec = sb->st_ctim.tv_nsec;
}

/* POOL THREAD: the AT operation's call. It touches only op's own fields
 * (the engine reads them once on_at_op runs). Results as libuv's: the fd,
 * 0, or -errno (libuv's codes are -errno on Unix). */
static void at_work(uv_work_t *w) {
  acoro_fsop_t *op = w->data;
  struct stat sb;
  int rc = -1;
  switch (op->kind) {
  case OP_AT_OPEN:
    rc = openat(op->dfd, op->buf, op->flags | O_NOFOLLOW | O_CLOEXEC,
                (mode_t)op->mode);
    break;
  case OP_AT_MKDIR:
    rc = mkdirat(op->dfd, op->buf, (mode_t)op->mode);
    break;
  case OP_AT_LSTAT:
    rc = fstatat(op->dfd, op->buf, &sb, AT_SYMLINK_NOFOLLOW);
    if (rc == 0)
      stat_to_uv(&sb, &op->st);
    break;
  case OP_AT_RENAME:
    rc = renameat(op->dfd, op->buf, op->dfd, op->name2);
    break;
  case OP_AT_UNLINK:
    rc = unlinkat(op->dfd, op->buf, op->flags);
    break;
  default:
    errno = EINVAL;
  }
  op->result = rc < 0 ? -errno : rc;
}

/* ENGINE THREAD: an AT operation is over. A file it opened becomes the
 * engine's (closed at once if nobody will take it); then as on_file_op. */
static void on_at_op(uv_work_t *w, int status) {
  acoro_fsop_t *op = w->data;
  acoro_file_t *f = op->file;
  acoro_engine_t *e = op->engine;
  op->has_req = 0;   /* no uv_fs_t to clean up */
  if (status != 0) { /* cancelled: at_work never ran */
    op->result = status;
  } else if (op->kind == OP_AT_OPEN && op->result >= 0) {
    uv_file fd = (uv_file)op->result;
    if (op->refs == 1 || e->io_closed) {
      close(fd); /* as on_path_op: rare, and closing is quick */
      op->result = op->refs == 1 ? op->result : UV_ECANCELED;
    } else {
      op->opened = file_new(e, fd, (op->flags & O_APPEND) != 0, 0);
      if (op->opened == NULL) {
        close(fd);
        op->result = UV_ENOMEM;
      }
    }
  }
  f->qhead = op->next;
  if (f->qhead == NULL)
    f->qtail = NULL;
  file_next(f);
  op_finish(op);
}

/* POOL THREAD: READ_ALL. One fstat sizes one buffer for the rest of the
 * file (plus a byte, so that the read that finds EOF needs no new room);
 * reads fill it until EOF, doubling it if the file grew meanwhile. A file
 * that is not regular but seekable (/dev/zero, a disk) may have no end:
 * one chunk per job, as acoro_file_fill, so that the caller's timeout
 * stops the reading. It touches only op's own fields. */
static void all_work(uv_work_t *w) {
  acoro_fsop_t *op = w->data;
  struct stat sb;
  size_t cap = FILE_CHUNK, len = 0;
  char *buf;
  int whole = fstat(op->dfd, &sb) == 0 && S_ISREG(sb.st_mode);
  if (whole && sb.st_size > op->offset &&
      (uint64_t)(sb.st_size - op->offset) < SIZE_MAX / 2)
    cap = (size_t)(sb.st_size - op->offset) + 1;
  buf = malloc(cap);
  op->rstatus = buf != NULL ? 0 : UV_ENOMEM;
  while (op->rstatus == 0) {
    ssize_t n;
    if (len == cap) {
      char *p = cap < SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
      if (p == NULL) {
        op->rstatus = UV_ENOMEM;
        break;
      }
      buf = p;
      cap *= 2;
    }
    n = pread(op->dfd, buf + len, cap - len,
              (off_t)(op->offset + (int64_t)len));
    if (n > 0) {
      len += (size_t)n;
      if (!whole)
        break;
    } else if (n == 0) {
      op->rstatus = UV_EOF;
    } else if (errno != EINTR) {
      op->rstatus = -errno;
    }
  }
  op->buf = buf;
  op->cap = cap;
  op->len = len;
  op->result = len > 0 || op->rstatus == UV_EOF ? (int64_t)len : op->rstatus;
}

/* ENGINE THREAD: READ_ALL is over; its bytes and how reading ended go to
 * the buffer unless a write or a seek moved away meanwhile. */
static void on_all_op(uv_work_t *w, int status) {
  acoro_fsop_t *op = w->data;
  acoro_file_t *f = op->file;
  op->has_req = 0;
  if (status != 0) { /* cancelled: all_work never ran */
    op->result = status;
  } else if (op->gen == f->gen && op->offset == f->pos + (int64_t)f->rd.len) {
    if (op->len > 0)
      file_got(f, &op->buf, op->len, op->cap);
    if (f->rd.status == 0)
      f->rd.status = op->rstatus;
  }
  f->qhead = op->next;
  if (f->qhead == NULL)
    f->qtail = NULL;
  file_next(f);
  op_finish(op);
}

/* Queues a file operation; it starts once those before it are over. */
static int file_queue(acoro_file_t *f, acoro_fsop_t *op, acoro_fsop_t **out) {
  op->file = f;
  f->io.refs++;
  if (f->qtail != NULL)
    f->qtail->next = op;
  else
    f->qhead = op;
  f->qtail = op;
  pool_note_use();
  if (out == NULL)
    op->refs--; /* nobody will wait for it */
  else
    *out = op;
  op->refs++; /* kept while file_next may finish it */
  file_next(f);
  op_unref(op);
  return 0;
}

/* Operations on files. */

int acoro_file_fill(acoro_file_t *f, size_t want, acoro_fsop_t **out) {
  /* OWNERSHIP: *out is always the caller's reference, to release. */
  acoro_fsop_t *op;
  if (!f->io.open)
    return ACORO_ECLOSED;
  /* A read is on its way already (one that timed out, another
   * coroutine's): wait for that one rather than queue behind it, which on a
   * FIFO could wait for data that the first read already got. */
  for (op = f->qhead; op != NULL; op = op->next) {
    if (op->kind == OP_READ || op->kind == OP_READ_ALL) {
      op->refs++;
      *out = op;
      return 0;
    }
  }
  op = op_new(f->io.engine, OP_READ);
  if (op == NULL)
    return ACORO_ENOMEM;
  op->len = want > FILE_CHUNK ? want : FILE_CHUNK;
  if (op->len > 64u * 1024 * 1024)
    op->len = 64u * 1024 * 1024;
  op->buf = malloc(op->len);
  if (op->buf == NULL) {
    free(op);
    return ACORO_ENOMEM;
  }
  return file_queue(f, op, out);
}

/* A FIFO or a terminal is read a chunk at a time: a read to its end would
 * hold a pool thread until the writer closes. */
int acoro_file_fill_all(acoro_file_t *f, acoro_fsop_t **out) {
  acoro_fsop_t *op;
  if (!f->io.open)
    return ACORO_ECLOSED;
  if (f->nopos)
    return acoro_file_fill(f, FILE_CHUNK, out);
  for (op = f->qhead; op != NULL; op = op->next) {
    if (op->kind == OP_READ || op->kind == OP_READ_ALL) {
      op->refs++;
      *out = op;
      return 0;
    }
  }
  op = op_new(f->io.engine, OP_READ_ALL);
  if (op == NULL)
    return ACORO_ENOMEM;
  return file_queue(f, op, out);
}

int acoro_file_write(acoro_file_t *f, const char *data, size_t len,
                     acoro_fsop_t **out) {
  acoro_fsop_t *op;
  if (!f->io.open)
    return ACORO_ECLOSED;
  op = op_new(f->io.engine, OP_WRITE);
  if (op == NULL)
    return ACORO_ENOMEM;
  op->buf = malloc(len > 0 ? len : 1);
  if (op->buf == NULL) {
    free(op);
    return ACORO_ENOMEM;
  }
  memcpy(op->buf, data, len);
  op->len = len;
  return file_queue(f, op, out);
}

int acoro_file_seek(acoro_file_t *f, int whence, int64_t offset,
                    acoro_fsop_t **out) {
  acoro_fsop_t *op;
  if (!f->io.open)
    return ACORO_ECLOSED;
  if (whence < 0 || whence > 2)
    return ACORO_EINVAL;
  if (f->nopos)
    return UV_ESPIPE;
  op = op_new(f->io.engine, OP_SEEK);
  if (op == NULL)
    return ACORO_ENOMEM;
  op->whence = whence;
  op->offset = offset;
  return file_queue(f, op, out);
}

/* Times libuv can turn into a timespec without overflow (it casts the
 * double to time_t): NaN, infinities and absurd values are refused. */
static int time_ok(double t) { return t >= -1e15 && t <= 1e15; }

int acoro_file_chmod(acoro_file_t *f, int mode, acoro_fsop_t **out) {
  acoro_fsop_t *op;
  if (!f->io.open)
    return ACORO_ECLOSED;
  if (mode < 0 || mode > 07777)
    return ACORO_EINVAL;
  op = op_new(f->io.engine, OP_FCHMOD);
  if (op == NULL)
    return ACORO_ENOMEM;
  op->mode = mode;
  return file_queue(f, op, out);
}

int acoro_file_utime(acoro_file_t *f, double atime, double mtime,
                     acoro_fsop_t **out) {
  acoro_fsop_t *op;
  if (!f->io.open)
    return ACORO_ECLOSED;
  if (!time_ok(atime) || !time_ok(mtime))
    return ACORO_EINVAL;
  op = op_new(f->io.engine, OP_FUTIME);
  if (op == NULL)
    return ACORO_ENOMEM;
  op->atime = atime;
  op->mtime = mtime;
  return file_queue(f, op, out);
}

int acoro_file_stat(acoro_file_t *f, acoro_fsop_t **out) {
  acoro_fsop_t *op;
  if (!f->io.open)
    return ACORO_ECLOSED;
  op = op_new(f->io.engine, OP_FSTAT);
  if (op == NULL)
    return ACORO_ENOMEM;
  return file_queue(f, op, out);
}

/* One component: not empty, ".", "..", nor with a '/' (openat would walk
 * it, following the links on the way). */
static int one_name(const char *name) {
  return name != NULL && name[0] != '\0' && strchr(name, '/') == NULL &&
         strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

static char *copy_name(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p != NULL)
    memcpy(p, s, n);
  return p;
}

/* A new AT operation on directory d for name (and name2, a rename's). */
static int at_new(acoro_file_t *d, int kind, const char *name,
                  const char *name2, acoro_fsop_t **out) {
  acoro_fsop_t *op;
  if (!d->io.open)
    return ACORO_ECLOSED;
  if (!one_name(name) || (kind == OP_AT_RENAME && !one_name(name2)))
    return ACORO_EINVAL;
  op = op_new(d->io.engine, kind);
  if (op == NULL)
    return ACORO_ENOMEM;
  op->buf = copy_name(name);
  if (name2 != NULL)
    op->name2 = copy_name(name2);
  if (op->buf == NULL || (name2 != NULL && op->name2 == NULL)) {
    free(op->buf);
    free(op->name2);
    free(op);
    return ACORO_ENOMEM;
  }
  *out = op;
  return 0;
}

int acoro_dir_open(acoro_file_t *d, const char *name, int flags, int mode,
                   acoro_fsop_t **out) {
  acoro_fsop_t *op;
  int rc = at_new(d, OP_AT_OPEN, name, NULL, &op);
  if (rc != 0)
    return rc;
  op->flags = flags;
  op->mode = mode;
  return file_queue(d, op, out);
}

int acoro_dir_mkdir(acoro_file_t *d, const char *name, int mode,
                    acoro_fsop_t **out) {
  acoro_fsop_t *op;
  int rc = at_new(d, OP_AT_MKDIR, name, NULL, &op);
  if (rc != 0)
    return rc;
  op->mode = mode;
  return file_queue(d, op, out);
}

int acoro_dir_lstat(acoro_file_t *d, const char *name, acoro_fsop_t **out) {
  acoro_fsop_t *op;
  int rc = at_new(d, OP_AT_LSTAT, name, NULL, &op);
  if (rc != 0)
    return rc;
  return file_queue(d, op, out);
}

int acoro_dir_rename(acoro_file_t *d, const char *from, const char *to,
                     acoro_fsop_t **out) {
  acoro_fsop_t *op;
  int rc = at_new(d, OP_AT_RENAME, from, to, &op);
  if (rc != 0)
    return rc;
  return file_queue(d, op, out);
}

int acoro_dir_unlink(acoro_file_t *d, const char *name, int rmdir_,
                     acoro_fsop_t **out) {
  acoro_fsop_t *op;
  int rc = at_new(d, OP_AT_UNLINK, name, NULL, &op);
  if (rc != 0)
    return rc;
  op->flags = rmdir_ ? AT_REMOVEDIR : 0;
  return file_queue(d, op, out);
}

int acoro_file_close(acoro_file_t *f, acoro_fsop_t **out) {
  acoro_fsop_t *op;
  if (!io_unlink(&f->io))
    return ACORO_ECLOSED;
  op = op_new(f->io.engine, OP_CLOSE);
  if (op == NULL) { /* no memory for a request: close here, at once */
    uv_fs_t req;
    if (f->keepfd)
      return ACORO_ENOMEM;
    uv_fs_close(&f->io.engine->loop, &req, f->fd, NULL);
    uv_fs_req_cleanup(&req);
    f->fd = -1;
    return ACORO_ENOMEM;
  }
  return file_queue(f, op, out);
}

acoro_reader_t *acoro_file_reader(acoro_file_t *f) { return &f->rd; }
int64_t acoro_file_tell(const acoro_file_t *f) { return f->pos; }
int acoro_file_is_open(const acoro_file_t *f) { return f->io.open; }

void acoro_file_release(acoro_file_t *f) { io_release((io_obj_t *)f); }

/* A file over an fd the process has (stdin redirected from a file): reads
 * and writes use the fd's own offset, so seeking is not offered, and
 * closing the file leaves the fd open (it is the process's). */
int acoro_file_from_fd(acoro_engine_t *e, int fd, acoro_file_t **out) {
  acoro_file_t *f;
  if (e->io_closed)
    return ACORO_ECLOSED;
  f = file_new(e, fd, 0, 1);
  if (f == NULL)
    return ACORO_ENOMEM;
  *out = f;
  return 0;
}

/* Operations on paths. */

static void on_path_op(uv_fs_t *req) {
  acoro_fsop_t *op = req->data;
  op->result = req->result;
  if ((op->kind == ACORO_FS_STAT || op->kind == ACORO_FS_LSTAT) &&
      req->result >= 0)
    op->st = req->statbuf;
  if (op->kind == ACORO_FS_STATFS && req->result >= 0 && req->ptr != NULL) {
    const uv_statfs_t *sf = req->ptr; /* freed by uv_fs_req_cleanup below */
    op->fs_avail = sf->f_bavail * sf->f_bsize;
    op->fs_total = sf->f_blocks * sf->f_bsize;
  }
  if (op->kind == ACORO_FS_OPEN && req->result >= 0) {
    uv_file fd = (uv_file)req->result;
    acoro_engine_t *e = op->engine;
    if (op->refs == 1 || e->io_closed) {
      /* Nobody takes the file (the host gave up, or the engine is going):
       * close it now, synchronously (this is rare and closing is quick). */
      uv_fs_t c;
      uv_fs_close(&e->loop, &c, fd, NULL);
      uv_fs_req_cleanup(&c);
      op->result = op->refs == 1 ? op->result : UV_ECANCELED;
    } else {
      op->file = file_new(e, fd, (op->flags & UV_FS_O_APPEND) != 0, 0);
      if (op->file == NULL) {
        uv_fs_t c;
        uv_fs_close(&e->loop, &c, fd, NULL);
        uv_fs_req_cleanup(&c);
        op->result = UV_ENOMEM;
      }
    }
  }
  if (op->kind != ACORO_FS_SCANDIR) {
    uv_fs_req_cleanup(req);
    op->has_req = 0;
  }
  op_finish(op);
}

/* After a path operation's uv_fs_* call (rc its result): on failure frees op
 * (libuv holds nothing of it) and returns rc; else op is on the pool and
 * OWNERSHIP passes to the caller through out. */
static int path_op_started(acoro_fsop_t *op, int rc, acoro_fsop_t **out) {
  if (rc != 0) {
    free(op);
    return rc;
  }
  op->has_req = 1;
  op->started = 1;
  pool_note_use();
  *out = op;
  return 0;
}

int acoro_fs_start(acoro_engine_t *e, int kind, const char *path,
                   const char *path2, int flags, int mode, acoro_fsop_t **out) {
  acoro_fsop_t *op;
  uv_loop_t *loop = &e->loop;
  int rc;
  if (path == NULL || (kind == ACORO_FS_RENAME && path2 == NULL))
    return ACORO_EINVAL;
  op = op_new(e, kind);
  if (op == NULL)
    return ACORO_ENOMEM;
  op->flags = flags;
  switch (kind) {
  case ACORO_FS_OPEN:
    rc = uv_fs_open(loop, &op->req, path, flags, mode, on_path_op);
    break;
  case ACORO_FS_STAT:
    rc = uv_fs_stat(loop, &op->req, path, on_path_op);
    break;
  case ACORO_FS_UNLINK:
    rc = uv_fs_unlink(loop, &op->req, path, on_path_op);
    break;
  case ACORO_FS_RENAME:
    rc = uv_fs_rename(loop, &op->req, path, path2, on_path_op);
    break;
  case ACORO_FS_MKDIR:
    rc = uv_fs_mkdir(loop, &op->req, path, mode, on_path_op);
    break;
  case ACORO_FS_RMDIR:
    rc = uv_fs_rmdir(loop, &op->req, path, on_path_op);
    break;
  case ACORO_FS_SCANDIR:
    rc = uv_fs_scandir(loop, &op->req, path, 0, on_path_op);
    break;
  case ACORO_FS_LSTAT:
    rc = uv_fs_lstat(loop, &op->req, path, on_path_op);
    break;
  case ACORO_FS_CHMOD:
    rc = uv_fs_chmod(loop, &op->req, path, mode, on_path_op);
    break;
  case ACORO_FS_STATFS:
    rc = uv_fs_statfs(loop, &op->req, path, on_path_op);
    break;
  default:
    rc = ACORO_EINVAL;
  }
  return path_op_started(op, rc, out);
}

int acoro_fs_utime(acoro_engine_t *e, const char *path, double atime,
                   double mtime, acoro_fsop_t **out) {
  acoro_fsop_t *op;
  int rc;
  if (path == NULL || !time_ok(atime) || !time_ok(mtime))
    return ACORO_EINVAL;
  op = op_new(e, OP_UTIME);
  if (op == NULL)
    return ACORO_ENOMEM;
  rc = uv_fs_utime(&e->loop, &op->req, path, atime, mtime, on_path_op);
  return path_op_started(op, rc, out);
}

int acoro_fsop_wait(acoro_co_t *co, acoro_fsop_t *op, double timeout) {
  int rc;
  if (op->done)
    return 1;
  rc = acoro_io_wait(co, &op->wait, timeout);
  return rc < 0 ? rc : 0;
}

int acoro_fsop_done(const acoro_fsop_t *op) { return op->done; }
int64_t acoro_fsop_result(const acoro_fsop_t *op) { return op->result; }

int acoro_fsop_stat(const acoro_fsop_t *op, acoro_fs_stat_t *st) {
  if (!op->done ||
      (op->kind != ACORO_FS_STAT && op->kind != ACORO_FS_LSTAT &&
       op->kind != OP_FSTAT && op->kind != OP_AT_LSTAT) ||
      op->result < 0)
    return ACORO_EINVAL;
  st->size = (int64_t)op->st.st_size;
  st->mode = (int)op->st.st_mode;
  st->mtime = (double)op->st.st_mtim.tv_sec + op->st.st_mtim.tv_nsec * 1e-9;
  st->atime = (double)op->st.st_atim.tv_sec + op->st.st_atim.tv_nsec * 1e-9;
  st->ctime = (double)op->st.st_ctim.tv_sec + op->st.st_ctim.tv_nsec * 1e-9;
  st->nlink = (int64_t)op->st.st_nlink;
  st->uid = (int64_t)op->st.st_uid;
  st->ino = (int64_t)op->st.st_ino;
  st->dev = (int64_t)op->st.st_dev;
  return 0;
}

int acoro_fsop_statfs(const acoro_fsop_t *op, uint64_t *avail,
                      uint64_t *total) {
  if (!op->done || op->kind != ACORO_FS_STATFS || op->result < 0)
    return ACORO_EINVAL;
  *avail = op->fs_avail;
  *total = op->fs_total;
  return 0;
}

int acoro_fsop_next_name(acoro_fsop_t *op, const char **name) {
  uv_dirent_t ent;
  if (!op->done || op->kind != ACORO_FS_SCANDIR || op->result < 0)
    return 0;
  if (uv_fs_scandir_next(&op->req, &ent) != 0)
    return 0;
  *name = ent.name;
  return 1;
}

int acoro_fsop_file(acoro_fsop_t *op, acoro_file_t **out) {
  if (op->done && op->kind == OP_AT_OPEN && op->opened != NULL) {
    *out = op->opened;
    op->opened = NULL;
    return 0;
  }
  if (!op->done || op->kind != ACORO_FS_OPEN || op->file == NULL)
    return ACORO_EINVAL;
  *out = op->file;
  op->file = NULL;
  return 0;
}

void acoro_fsop_release(acoro_fsop_t *op) {
  if (op != NULL)
    op_unref(op);
}

/*
 * error.h - severities, error classes and the error handle of libjobpub.
 *
 * Every fallible function returns a severity and, when it is not JP_OK, leaves the reason on a
 * struct jp_error the caller passed in.  Severities are ordered so that the worst of several
 * results wins by comparison (libarchive's rule):
 *
 *     int ret = JP_OK;  ...  if (r < ret) ret = r;
 *
 * The error class is the sysexits(3) code the command exits with, so the class of the first
 * error is the kind of failure the caller (a job script, a Slurm epilogue) is told about.
 */
#ifndef JP_ERROR_H
#define JP_ERROR_H

#include <stdarg.h>

enum {
	JP_OK = 0,
	JP_RETRY = -10,  /* transient: the same call may succeed later */
	JP_WARN = -20,   /* done, but something is worth telling */
	JP_FAILED = -25, /* this operation failed; the handle is still usable */
	JP_FATAL = -30,  /* the handle is unusable (connection gone, state lost) */
};

/* Error classes, equal to the exit codes of sysexits.h (the table of `man jobpub`). */
enum jp_class {
	JP_E_NONE = 0,
	JP_E_USAGE = 64,       /* bad command line */
	JP_E_DATA = 65,        /* bad manifest, bad data, unknown job */
	JP_E_NOINPUT = 66,     /* a required output is missing */
	JP_E_UNAVAILABLE = 69, /* storage refused permanently: conflict, no space, not a dir */
	JP_E_SOFTWARE = 70,    /* internal error */
	JP_E_IOERR = 74,       /* local I/O error */
	JP_E_TEMPFAIL = 75,    /* retry later: timeout, connection lost, catalogue busy, signal */
	JP_E_NOPERM = 77,      /* storage permission or authentication denied */
	JP_E_CONFIG = 78,      /* configuration error: unknown scheme, missing credentials */
};

#define JP_ERRMSG_MAX 1024

/*
 * The error handle.  `code` is a jp_class; `msg` has no trailing newline and starts with the
 * module that wrote it ("posix: ...", "catalog: ...").  The first message set wins, so the most
 * specific cause survives while callers unwind; jp_error_clear() starts over.
 */
struct jp_error {
	int code;
	char msg[JP_ERRMSG_MAX];
};

void jp_error_clear(struct jp_error *e);

/* Sets class and message unless one is already set.  Returns JP_RETRY for JP_E_TEMPFAIL,
 * JP_FAILED otherwise, so `return jp_error_set(...)` reads naturally. */
int jp_error_set(struct jp_error *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int jp_error_vset(struct jp_error *e, int code, const char *fmt, va_list ap);

/* Like jp_error_set() for a failed system call on the storage side: the class comes from
 * errno `err` (EACCES -> 77, ENOSPC/EDQUOT/ENOTDIR/EEXIST/EROFS -> 69, ETIMEDOUT/ESTALE/EINTR ->
 * 75, else 74) and ": strerror(err)" is appended. */
int jp_error_errno(struct jp_error *e, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The class for errno `err` as jp_error_errno() chooses it. */
int jp_class_of_errno(int err);

/* Short stable name of a class ("tempfail", "noperm", ...) for logs and the catalogue; "ok"
 * for JP_E_NONE.  Never NULL. */
const char *jp_class_name(int code);

/* Severity matching a class: JP_OK for none, JP_RETRY for tempfail, else JP_FAILED. */
int jp_severity_of(int code);

/* The worse of two results (the lower severity): merging the results of several lanes, files
 * or steps keeps the worst, `ret = jp_worst(ret, r)`. */
int jp_worst(int a, int b);

/* The exit code (sysexits(3), the table of `man jobpub`) of a command whose library call gave
 * severity `sev` with its reason on `e`: 0 for JP_OK and JP_WARN, else e's class, or 70
 * (JP_E_SOFTWARE) when a failure left no class.  The one place severities become exit codes. */
int jp_exit_code(int sev, const struct jp_error *e);

#endif

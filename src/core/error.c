/*
 * error.c - the error handle: first message wins, classes are sysexits codes.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

void
jp_error_clear(struct jp_error *e)
{
	e->code = JP_E_NONE;
	e->msg[0] = '\0';
}

int
jp_severity_of(int code)
{
	if (code == JP_E_NONE)
		return JP_OK;
	return code == JP_E_TEMPFAIL ? JP_RETRY : JP_FAILED;
}

int
jp_worst(int a, int b)
{
	return b < a ? b : a;
}

int
jp_exit_code(int sev, const struct jp_error *e)
{
	if (sev == JP_OK || sev == JP_WARN)
		return 0;
	/* A class that is not one of ours is a software error too: never exit 0 on a failure. */
	if (e == NULL || e->code <= 0 || e->code > 255)
		return JP_E_SOFTWARE;
	return e->code;
}

int
jp_error_vset(struct jp_error *e, int code, const char *fmt, va_list ap)
{
	if (e->code == JP_E_NONE && e->msg[0] == '\0') {
		e->code = code;
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	}
	return jp_severity_of(code);
}

int
jp_error_set(struct jp_error *e, int code, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = jp_error_vset(e, code, fmt, ap);
	va_end(ap);
	return r;
}

int
jp_class_of_errno(int err)
{
	switch (err) {
	case EACCES:
	case EPERM:
		return JP_E_NOPERM;
	case ENOSPC:
	case EDQUOT:
	case ENOTDIR:
	case EISDIR:
	case EEXIST:
	case EROFS:
	case ENAMETOOLONG:
	case EFBIG:
	case EXDEV:
		return JP_E_UNAVAILABLE;
	case ETIMEDOUT:
	case ESTALE:
	case EINTR:
	case EAGAIN:
	case ECONNRESET:
	case EHOSTUNREACH:
		return JP_E_TEMPFAIL;
	default:
		return JP_E_IOERR;
	}
}

int
jp_error_errno(struct jp_error *e, int err, const char *fmt, ...)
{
	char buf[JP_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return jp_error_set(e, jp_class_of_errno(err), "%s: %s", buf, strerror(err));
}

const char *
jp_class_name(int code)
{
	switch (code) {
	case JP_E_NONE: return "ok";
	case JP_E_USAGE: return "usage";
	case JP_E_DATA: return "data";
	case JP_E_NOINPUT: return "noinput";
	case JP_E_UNAVAILABLE: return "unavailable";
	case JP_E_SOFTWARE: return "software";
	case JP_E_IOERR: return "ioerr";
	case JP_E_TEMPFAIL: return "tempfail";
	case JP_E_NOPERM: return "noperm";
	case JP_E_CONFIG: return "config";
	default: return "unknown";
	}
}

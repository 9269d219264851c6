/*
 * log.c - messages, JSON events and the progress line on stderr.
 */
#include "config.h"

#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "json.h"
#include "log.h"
#include "util.h"

static struct {
	enum jp_log_format fmt;
	int verbosity;
	FILE *fp;
	int tty;
	/* progress line state */
	int active;
	uint64_t total, done;
	int64_t start_ms, drawn_ms;
} L = {JP_LOG_TEXT, 0, NULL, 0, 0, 0, 0, 0, 0};

/* Transfer lanes log from several threads: one line at a time. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static FILE *
out(void)
{
	return L.fp != NULL ? L.fp : stderr;
}

void
jp_log_setup(enum jp_log_format fmt, int verbosity, FILE *fp)
{
	L.fmt = fmt;
	L.verbosity = verbosity;
	L.fp = fp;
	L.tty = isatty(fileno(out()));
}

enum jp_log_format
jp_log_format(void)
{
	return L.fmt;
}

static void
clear_progress(void)
{
	if (L.active && L.drawn_ms != 0)
		fputs("\r\033[K", out());
}

/* Opens a JSON log line: {"time": ..., key: value */
static void
json_head(struct jp_json *j, FILE *fp, const char *key, const char *value)
{
	char now[32];

	jp_json_init(j, fp);
	jp_json_object(j, NULL);
	jp_json_str(j, "time", jp_now_iso(now, sizeof(now)));
	jp_json_str(j, key, value);
}

static void
emit(const char *level, const char *fmt, va_list ap)
{
	char msg[2048];
	FILE *fp = out();

	vsnprintf(msg, sizeof(msg), fmt, ap);
	pthread_mutex_lock(&mu);
	if (L.fmt == JP_LOG_JSON) {
		struct jp_json j;

		json_head(&j, fp, "level", level);
		jp_json_str(&j, "message", msg);
		jp_json_end(&j, '}');
		putc('\n', fp);
	} else {
		clear_progress();
		if (strcmp(level, "warning") == 0)
			fprintf(fp, "jobpub: warning: %s\n", msg);
		else
			fprintf(fp, "jobpub: %s\n", msg);
	}
	fflush(fp);
	pthread_mutex_unlock(&mu);
}

#define JP_LOG_FN(fn, level, min)          \
	void fn(const char *fmt, ...)          \
	{                                      \
		va_list ap;                        \
		if (L.verbosity < (min))           \
			return;                        \
		va_start(ap, fmt);                 \
		emit(level, fmt, ap);              \
		va_end(ap);                        \
	}

JP_LOG_FN(jp_log_error, "error", -1)
JP_LOG_FN(jp_log_warn, "warning", 0)
JP_LOG_FN(jp_log_info, "info", 0)
JP_LOG_FN(jp_log_verbose, "debug", 1)

void
jp_log_event(const struct jp_event *ev)
{
	FILE *fp = out();
	char size[32];

	if (L.verbosity < 0 && ev->error_class == JP_E_NONE)
		return;
	pthread_mutex_lock(&mu);
	if (L.fmt == JP_LOG_JSON) {
		struct jp_json j;

		json_head(&j, fp, "event", ev->event);
		if (ev->job) jp_json_str(&j, "job", ev->job);
		if (ev->output) jp_json_str(&j, "output", ev->output);
		if (ev->local) jp_json_str(&j, "local", ev->local);
		if (ev->remote) jp_json_str(&j, "remote", ev->remote);
		if (ev->bytes >= 0) jp_json_int(&j, "bytes", ev->bytes);
		if (ev->sha256) jp_json_str(&j, "sha256", ev->sha256);
		if (ev->duration_ms >= 0) jp_json_int(&j, "duration_ms", ev->duration_ms);
		if (ev->error_class != JP_E_NONE) {
			jp_json_str(&j, "error_class", jp_class_name(ev->error_class));
			jp_json_int(&j, "exit_code", ev->error_class);
		}
		if (ev->message) jp_json_str(&j, "message", ev->message);
		jp_json_end(&j, '}');
		putc('\n', fp);
		fflush(fp);
		pthread_mutex_unlock(&mu);
		return;
	}
	/* Text: per-file events only; the command prints its own summary and errors. */
	if (L.verbosity < 1 || ev->output == NULL) {
		pthread_mutex_unlock(&mu);
		return;
	}
	clear_progress();
	fprintf(fp, "jobpub: job %s: %s", ev->job ? ev->job : "?", ev->event);
	if (ev->output) fprintf(fp, " %s", ev->output);
	if (ev->local) fprintf(fp, " %s", ev->local);
	if (ev->remote) fprintf(fp, " -> %s", ev->remote);
	if (ev->bytes >= 0) fprintf(fp, " (%s)", jp_human_size((uint64_t)ev->bytes, size, sizeof(size)));
	if (ev->sha256) fprintf(fp, " sha256 %s", ev->sha256);
	if (ev->message) fprintf(fp, ": %s", ev->message);
	putc('\n', fp);
	fflush(fp);
	pthread_mutex_unlock(&mu);
}

void
jp_progress_begin(uint64_t total)
{
	L.active = L.tty && L.fmt == JP_LOG_TEXT && L.verbosity >= 0;
	L.total = total;
	L.done = 0;
	L.start_ms = jp_now_ms();
	L.drawn_ms = 0;
}

void
jp_progress_add(uint64_t n)
{
	char a[32], b[32], r[32];
	int64_t now, el;
	double rate;

	if (!L.active)
		return;
	pthread_mutex_lock(&mu);
	L.done += n;
	now = jp_now_ms();
	/* Redraw at most 4 times a second, and only after the first second: short jobs stay quiet. */
	if (now - L.start_ms < 1000 || now - L.drawn_ms < 250) {
		pthread_mutex_unlock(&mu);
		return;
	}
	L.drawn_ms = now;
	el = now - L.start_ms;
	rate = el > 0 ? (double)L.done * 1000.0 / (double)el : 0;
	fprintf(out(), "\r\033[Kjobpub: %s / %s  %s/s", jp_human_size(L.done, a, sizeof(a)),
	        jp_human_size(L.total, b, sizeof(b)), jp_human_size((uint64_t)rate, r, sizeof(r)));
	if (rate > 0 && L.total > L.done)
		fprintf(out(), "  ETA %.0f s", (double)(L.total - L.done) / rate);
	fflush(out());
	pthread_mutex_unlock(&mu);
}

void
jp_progress_end(void)
{
	clear_progress();
	fflush(out());
	L.active = 0;
}

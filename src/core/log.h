/*
 * log.h - what jobpub tells people and pipelines, on stderr.
 *
 * Text format: one line per message, "jobpub: ...".  JSON format (--log-format json): one JSON
 * object per line and per event, for pipelines.  A progress line (bytes, rate, ETA) is drawn
 * only in text format, when not quiet, and only when stderr is a terminal.
 *
 * The log is process-wide state: jp_log_setup() once, from the command, before anything else.
 */
#ifndef JP_LOG_H
#define JP_LOG_H

#include <stdint.h>
#include <stdio.h>

enum jp_log_format { JP_LOG_TEXT, JP_LOG_JSON };

/* verbosity: -1 quiet (errors only), 0 normal, 1 verbose.  fp NULL means stderr. */
void jp_log_setup(enum jp_log_format fmt, int verbosity, FILE *fp);
enum jp_log_format jp_log_format(void);

void jp_log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void jp_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void jp_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void jp_log_verbose(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A structured event.  Any pointer may be NULL and any number -1 when it does not apply. */
struct jp_event {
	const char *event;  /* staged, identical, committed, skipped, published, failed, ... */
	const char *job;
	const char *output; /* output name from the manifest */
	const char *local;  /* path relative to the workdir */
	const char *remote; /* remote URL */
	int64_t bytes;
	const char *sha256; /* hex */
	int64_t duration_ms;
	int error_class;    /* jp_class; 0 when none */
	const char *message;
};

/* JSON format: always written (unless quiet and not an error).  Text format: written only when
 * verbose, as one readable line; the commands print their own summaries. */
void jp_log_event(const struct jp_event *ev);

/* Progress of a long transfer: no-ops unless a terminal is watching. */
void jp_progress_begin(uint64_t total_bytes);
void jp_progress_add(uint64_t bytes);
void jp_progress_end(void);

#endif

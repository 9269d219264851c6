/*
 * cmd.h - the command table of the jobpub program (not part of libjobpub).
 *
 * Each subcommand lives in its own cmd-NAME.c and exports one struct jp_cmd.  Its `usage`
 * string is the single source for `--help`, usage errors and the man page's SYNOPSIS.
 */
#ifndef JP_CMD_H
#define JP_CMD_H

#include <stdio.h>

#include "util.h"

struct jp_cmd {
	const char *name;
	const char *summary; /* one line, for `jobpub help` */
	const char *usage;   /* "jobpub NAME ..." possibly on several lines */
	const char *options; /* the option list printed by --help */
	int (*exec)(int argc, char **argv); /* argv[0] is NAME; returns the exit code */
};

extern const struct jp_cmd jp_cmd_publish;
extern const struct jp_cmd jp_cmd_status;
extern const struct jp_cmd jp_cmd_manifest;
extern const struct jp_cmd jp_cmd_help;

/* NULL-terminated, in the order `jobpub help` lists them. */
extern const struct jp_cmd *const jp_cmds[];

const struct jp_cmd *jp_cmd_find(const char *name);

/* Prints every command's usage and summary and the exit codes (jobpub help, --help). */
void jp_cmd_print_overview(FILE *fp);

/* Prints usage and options of c (for --help) on fp. */
void jp_cmd_print_help(const struct jp_cmd *c, FILE *fp);

/* "jobpub: <message>" and the usage of c on stderr; returns 64 (EX_USAGE). */
int jp_cmd_usage_error(const struct jp_cmd *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* --set NAME=VALUE values, collected in argv order.  The strings point into argv. */
struct jp_sets {
	struct jp_kv *v;
	size_t n;
};
/* Adds "NAME=VALUE"; a later value for the same NAME replaces the earlier.  Returns 0, or -1
 * with a message on stderr (usage error) when NAME is not an identifier or '=' is missing. */
int jp_sets_add(const struct jp_cmd *c, struct jp_sets *s, char *arg);
void jp_sets_free(struct jp_sets *s);

/* The catalogue path: the option when given, else $JOBPUB_DB, else ./jobpub.db. */
const char *jp_cmd_db(const char *opt);

/* Parses --db-timeout SECONDS into milliseconds; -1 when invalid. */
int jp_cmd_timeout_ms(const char *arg);

/* Parses a whole number in [min, max]; -1 when invalid. */
int jp_cmd_count(const char *arg, int min, int max);

/* 1 when id is usable as a job ID: 1-128 printable ASCII bytes, no '/' and no space. */
int jp_cmd_job_ok(const char *id);

#endif

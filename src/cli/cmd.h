/*
 * cmd.h - the command table of the jobpub program (not part of libjobpub).
 *
 * Each subcommand lives in its own cmd-NAME.c and exports one struct jp_cmd.  Its `usage`
 * string is the single source for `--help`, usage errors and the man page's SYNOPSIS.
 */
#ifndef JP_CMD_H
#define JP_CMD_H

#include <stdio.h>

#include "error.h"
#include "util.h"

struct jp_cmd {
	const char *name;
	const char *summary; /* one line, for `jobpub help` */
	const char *usage;   /* "jobpub NAME ..." possibly on several lines */
	const char *options; /* the option list printed by --help */
	int (*exec)(int argc, char **argv); /* argv[0] is NAME; returns the exit code */
	int stops;           /* 1: stops cleanly on SIGINT/SIGTERM by checking the stop flag
	                        (publish.h); 0: they keep their default action (see below) */
	int backend_options; /* 1: takes backend options (-o, below); --help lists them */
};

/*
 * The connection options publish and republish share (an attempt records none of them, so
 * republish is given them again): their getopt_long entries, their --help lines and their
 * parsing.  Codes above any character, so that neither command's short codes clash.
 */
enum {
	JP_OPT_RETRIES = 0x100,
	JP_OPT_TIMEOUT,
	JP_OPT_STALL,
	JP_OPT_ALIAS = 0x180, /* + i: the i-th alias flag of a backend option (jp_cmd_longopts) */
};
#define JP_CMD_CONN_LONGOPTS \
	{"retries", required_argument, NULL, JP_OPT_RETRIES}, \
	{"timeout", required_argument, NULL, JP_OPT_TIMEOUT}, \
	{"stall", required_argument, NULL, JP_OPT_STALL}
#define JP_CMD_CONN_HELP \
	"      --retries N           retry a file N times after a transient failure (default 3)\n" \
	"      --timeout SECONDS     network: connect and per-operation limit (default 30)\n" \
	"      --stall SECONDS       network: fail a transfer that moves nothing this long\n" \
	"                            (default 60)\n" \
	JP_CMD_BACKEND_HELP

/*
 * Backend options, for every command that opens destinations (backend_options = 1): -o and
 * --option BACKEND.KEY=VALUE, and the older flags that alias a key (--identity, ...), which
 * come from the backends' tables (options.h), as does the list --help prints after the
 * command's own options.  The command passes its getopt_long table through
 * jp_cmd_longopts and "o:" in its short options; jp_cmd_conn_opt and jp_cmd_net_option take
 * the values into one store for the process.
 */
#define JP_CMD_BACKEND_HELP \
	"  -o, --option KEY=VALUE    a backend option (listed below); repeatable\n"

/* own, then --option and every backend option's alias flag: a static table, valid until the
 * next call. */
struct option;
const struct option *jp_cmd_longopts(const struct option *own);

struct jp_publish_opts;

/* Sets o from connection option ch (one of JP_OPT_*) and its value arg.  1: done; 0: ch is not
 * a connection option; -1: a bad value, the usage error already printed (exit 64). */
int jp_cmd_conn_opt(const struct jp_cmd *c, int ch, const char *arg, struct jp_publish_opts *o);

extern const struct jp_cmd jp_cmd_enqueue;
extern const struct jp_cmd jp_cmd_publish;
extern const struct jp_cmd jp_cmd_status;
extern const struct jp_cmd jp_cmd_republish;
extern const struct jp_cmd jp_cmd_spool;
extern const struct jp_cmd jp_cmd_verify;
extern const struct jp_cmd jp_cmd_gc;
extern const struct jp_cmd jp_cmd_manifest;
extern const struct jp_cmd jp_cmd_help;

/* NULL-terminated, in the order `jobpub help` lists them. */
extern const struct jp_cmd *const jp_cmds[];

const struct jp_cmd *jp_cmd_find(const char *name);

/* Prints every command's usage and summary and the exit codes (jobpub help, --help). */
void jp_cmd_print_overview(FILE *fp);

/* Prints usage and options of c (for --help) on fp. */
void jp_cmd_print_help(const struct jp_cmd *c, FILE *fp);

/* For getopt_long's ':' (missing value) and '?' (unknown option): the usage error, 64. */
int jp_cmd_getopt_error(const struct jp_cmd *c, int ch, char **argv);

/* SIGINT and SIGTERM call fn (with SA_RESTART, so system calls are not cut short); SIGPIPE is
 * ignored (a network peer that goes away is an error to report, not a death). */
void jp_cmd_catch_signals(void (*fn)(int));

/*
 * The first thing main does, before it looks at its arguments, so that no signal finds the
 * default action in place: SIGINT and SIGTERM are unblocked (a job script may start us with
 * them blocked) and set the stop flag (publish.h: jp_publish_interrupt), which every phase of a
 * publish checks; SIGPIPE is ignored.  The first signal also starts the stop bound: a process
 * that has not reached its clean-up JP_STOP_BOUND_S seconds later (a wait nothing could cut
 * short), or that is still cleaning up JP_CLEANUP_BOUND_S seconds after it began
 * (jp_cmd_stop_cleanup), or that gets a second SIGINT/SIGTERM, exits at once with 75, saying
 * so on stderr; what it left is found by the lease rules and `jobpub gc`.
 */
#define JP_STOP_BOUND_S 5
#define JP_CLEANUP_BOUND_S 60
void jp_cmd_signals_early(void);

/* jp_cmd_signals_early for a child that publishes on behalf of its parent (republish): the
 * parent passes its signals on, so a signal that also reached the child directly (Ctrl-C, Slurm)
 * counts once; a signal for the child is its own (the parent's handler is gone). */
void jp_cmd_signals_child(void);

/* A command has reached its clean-up (a publish's roll back: one request per staged file,
 * which may be many), which ends by itself: after a signal, the bound becomes
 * JP_CLEANUP_BOUND_S from now; before one (the roll back of an ordinary failure), a signal that
 * comes during the clean-up gets JP_CLEANUP_BOUND_S from its start, not JP_STOP_BOUND_S. */
void jp_cmd_stop_cleanup(void);

/* For a command that does not check the stop flag (stops = 0): SIGINT, SIGTERM and SIGPIPE
 * get their default action back, and a signal that came before takes effect now. */
void jp_cmd_signals_default(void);

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

/*
 * Options several commands share, with their help lines, defined once: the getopt_long entry
 * (JP_CMD_OPT_*, each command's switch handles its code) and the --help line (JP_CMD_HELP_*).
 * --job's entry is shared; its help line says what the job is to each command.
 */
#define JP_CMD_OPT_DB {"db", required_argument, NULL, 'D'}
#define JP_CMD_OPT_DB_TIMEOUT {"db-timeout", required_argument, NULL, 'T'}
#define JP_CMD_OPT_DEST {"dest", required_argument, NULL, 'd'}
#define JP_CMD_OPT_JOB {"job", required_argument, NULL, 'j'}
#define JP_CMD_OPT_MANIFEST {"manifest", required_argument, NULL, 'm'}
#define JP_CMD_OPT_WORKDIR {"workdir", required_argument, NULL, 'w'}
#define JP_CMD_OPT_SET {"set", required_argument, NULL, 's'}
#define JP_CMD_OPT_JSON {"json", no_argument, NULL, 'J'}
#define JP_CMD_OPT_HELP {"help", no_argument, NULL, 'h'}
#define JP_CMD_HELP_DB \
	"      --db FILE             the catalogue: a SQLite file or sqlite:FILE (default: $JOBPUB_DB,\n" \
	"                            else ./jobpub.db)\n"
#define JP_CMD_HELP_DB_TIMEOUT \
	"      --db-timeout SECONDS  how long to wait for a locked catalogue (default 30)\n"
#define JP_CMD_HELP_DEST \
	"      --dest URL            destination, overriding the manifest's (also $JOBPUB_DEST)\n"
#define JP_CMD_HELP_JSON \
	"      --json                one JSON document on stdout\n"
#define JP_CMD_HELP_JSON_LINES \
	"      --json                one JSON document on stdout instead of lines\n"
#define JP_CMD_HELP_SET \
	"      --set NAME=VALUE      a value for ${NAME} in the manifest; repeatable\n"
#define JP_CMD_HELP_SPOOL_DIR \
	"      --spool DIR           the spool directory (default: $JOBPUB_SPOOL, else\n" \
	"                            /var/spool/jobpub for root, else\n" \
	"                            ~/.local/state/jobpub/spool)\n"
#define JP_CMD_HELP_HELP \
	"  -h, --help                this help\n"

/* --db-timeout's value into *ms.  0, or the usage error printed and 64. */
int jp_cmd_db_timeout(const struct jp_cmd *c, const char *arg, int *ms);

/* The catalogue's location: the option when given, else $JOBPUB_DB, else
 * jp_catalog_default_location() (./jobpub.db). */
const char *jp_cmd_db(const char *opt);

/* Parses --db-timeout SECONDS into milliseconds; -1 when invalid. */
int jp_cmd_timeout_ms(const char *arg);

/* Parses a duration: "90" (seconds), "30s", "15m", "24h", "2d".  -1 when invalid. */
long jp_cmd_duration(const char *arg);

/* The destination options verify and gc share with publish (--timeout, the backend
 * options).  The long options are appended to opts by JP_CMD_NET_OPTIONS; handle with
 * jp_cmd_net_option, which returns 1 when it took ch, 0 when ch is not one of them, -1 on a bad
 * value (usage error printed). */
struct jp_dest_opts;
#define JP_CMD_NET_OPTIONS                                   \
	{"timeout", required_argument, NULL, 't'}
#define JP_CMD_NET_HELP                                                                        \
	"      --timeout SECONDS     network: connect and per-operation limit (default 30)\n"      \
	JP_CMD_BACKEND_HELP
int jp_cmd_net_option(const struct jp_cmd *c, int ch, const char *arg, struct jp_dest_opts *o);

/* Parses a whole number in [min, max]; -1 when invalid. */
int jp_cmd_count(const char *arg, int min, int max);

/* 1 when id is usable as a job ID: 1-128 printable ASCII bytes, no '/' and no space. */
int jp_cmd_job_ok(const char *id);

#endif

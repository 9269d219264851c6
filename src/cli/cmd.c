/*
 * cmd.c - the command table and what the commands share: usage errors, --set, defaults.
 */
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <time.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "cmd.h"
#include "dest.h"
#include "options.h"
#include "publish.h"

const struct jp_cmd *const jp_cmds[] = {
	&jp_cmd_enqueue,
	&jp_cmd_publish,
	&jp_cmd_status,
	&jp_cmd_republish,
	&jp_cmd_spool,
	&jp_cmd_verify,
	&jp_cmd_gc,
	&jp_cmd_manifest,
	&jp_cmd_help,
	NULL,
};

const struct jp_cmd *
jp_cmd_find(const char *name)
{
	size_t i;

	for (i = 0; jp_cmds[i] != NULL; i++)
		if (strcmp(jp_cmds[i]->name, name) == 0)
			return jp_cmds[i];
	return NULL;
}

void
jp_cmd_print_help(const struct jp_cmd *c, FILE *fp)
{
	fprintf(fp, "usage: %s\n\n%s\n", c->usage, c->summary);
	if (c->options != NULL && c->options[0] != '\0')
		fprintf(fp, "\n%s", c->options);
	if (c->backend_options) {
		fputc('\n', fp);
		jp_options_print_help(fp);
	}
	/* The page that says the rest (doc/jobpub-NAME.1; help is described in jobpub(1)). */
	if (c == &jp_cmd_help)
		fputs("\nSee jobpub(1).\n", fp);
	else
		fprintf(fp, "\nSee jobpub-%s(1).\n", c->name);
}

/* The backend options of this process's command line: one command runs per process (a
 * republish child has its parent's copy). */
static struct jp_options cli_options;

const struct option *
jp_cmd_longopts(const struct option *own)
{
	static struct option all[128];
	size_t n = 0, i;
	const char *alias;
	int has_arg;

	for (; own[n].name != NULL && n < 64; n++)
		all[n] = own[n];
	all[n++] = (struct option){"option", required_argument, NULL, 'o'};
	for (i = 0; (alias = jp_options_alias(i, &has_arg)) != NULL && n + 1 < 128; i++)
		all[n++] = (struct option){alias, has_arg ? required_argument : no_argument, NULL,
		                           JP_OPT_ALIAS + (int)i};
	all[n] = (struct option){NULL, 0, NULL, 0};
	return all;
}

/* -o KEY=VALUE or an alias flag into cli_options: 1 taken, 0 not ours, -1 usage error shown. */
static int
backend_option(const struct jp_cmd *c, int ch, const char *arg,
               const struct jp_options **store)
{
	struct jp_error e;
	int has_arg, r;

	jp_error_clear(&e);
	if (ch == 'o')
		r = jp_options_set_arg(&cli_options, "-o", arg, &e);
	else if (ch >= JP_OPT_ALIAS && jp_options_alias((size_t)(ch - JP_OPT_ALIAS), &has_arg) != NULL)
		r = jp_options_set_alias(&cli_options,
		                         jp_options_alias((size_t)(ch - JP_OPT_ALIAS), &has_arg),
		                         has_arg ? arg : NULL, &e);
	else
		return 0;
	if (r != JP_OK) {
		jp_cmd_usage_error(c, "%s", e.msg);
		return -1;
	}
	*store = &cli_options;
	return 1;
}

int
jp_cmd_usage_error(const struct jp_cmd *c, const char *fmt, ...)
{
	va_list ap;

	fputs("jobpub: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: %s\n", c->usage);
	return 64;
}

int
jp_cmd_getopt_error(const struct jp_cmd *c, int ch, char **argv)
{
	if (ch == ':')
		return jp_cmd_usage_error(c, "%s needs a value", argv[optind - 1]);
	return jp_cmd_usage_error(c, "unknown option %s", argv[optind - 1]);
}

void
jp_cmd_catch_signals(void (*fn)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

#define STR_(x) #x
#define STR(x) STR_(x)

/* Only async-signal-safe calls below: write(2), _exit(2), alarm(2). */
static void
say(const char *msg)
{
	ssize_t n = write(STDERR_FILENO, msg, strlen(msg));

	(void)n;
}

static volatile sig_atomic_t first_signal, cleaning_up;
static volatile long cleanup_t0; /* CLOCK_MONOTONIC seconds when the clean-up began */

static long
mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts); /* async-signal-safe */
	return (long)ts.tv_sec;
}
/* A republish child: its parent passes on every SIGINT/SIGTERM it gets, so a Ctrl-C (sent to the
 * whole process group) or a Slurm signal (sent to every process of the job) arrives twice, once
 * directly and once from the parent.  The n-th signal is the larger of the two counts. */
static volatile sig_atomic_t from_parent, from_others;
static pid_t parent_pid;

static void
on_stop_bound(int sig)
{
	(void)sig;
	if (cleaning_up)
		say("jobpub: clean-up not done " STR(JP_CLEANUP_BOUND_S) " s after it began: exiting "
		    "now; jobpub gc finds what is left\n");
	else
		say("jobpub: not stopped " STR(JP_STOP_BOUND_S) " s after the signal: exiting now; "
		    "jobpub gc finds what is left\n");
	_exit(75);
}

static void
on_stop_signal(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (parent_pid > 0 && si != NULL && si->si_code == SI_USER && si->si_pid == parent_pid)
		from_parent++;
	else
		from_others++;
	if (first_signal != 0) {
		if (from_parent < 2 && from_others < 2)
			return; /* the same signal, passed on by the parent */
		say("jobpub: a second signal: exiting now; jobpub gc finds what is left\n");
		_exit(75);
	}
	first_signal = sig;
	jp_publish_interrupt(sig);
	if (cleaning_up) {
		/* Already rolling back an ordinary failure: the clean-up's bound, from its start. */
		long left = JP_CLEANUP_BOUND_S - (mono_s() - cleanup_t0);
		alarm(left > 0 ? (unsigned)left : 1);
	} else {
		alarm(JP_STOP_BOUND_S);
	}
}

void
jp_cmd_signals_early(void)
{
	struct sigaction sa;
	sigset_t set;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop_bound;
	sigaction(SIGALRM, &sa, NULL);
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_sigaction = on_stop_signal;
	sa.sa_flags = SA_RESTART | SA_SIGINFO;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGALRM);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
}

void
jp_cmd_signals_child(void)
{
	first_signal = cleaning_up = from_parent = from_others = 0;
	parent_pid = getppid();
	alarm(0);
	jp_cmd_signals_early();
}

void
jp_cmd_stop_cleanup(void)
{
	if (cleaning_up)
		return;
	cleanup_t0 = mono_s();
	cleaning_up = 1;
	if (first_signal != 0)
		alarm(JP_CLEANUP_BOUND_S);
}

void
jp_cmd_signals_default(void)
{
	int sig = first_signal;

	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGPIPE, SIG_DFL); /* `jobpub status | head` ends quietly, as it always did */
	if (sig != 0) {
		alarm(0);
		raise(sig);
	}
	jp_publish_interrupt(0);
}

int
jp_sets_add(const struct jp_cmd *c, struct jp_sets *s, char *arg)
{
	char *eq = strchr(arg, '=');
	struct jp_kv *v;
	size_t i;

	if (eq == NULL) {
		jp_cmd_usage_error(c, "--set %s: expected NAME=VALUE", arg);
		return -1;
	}
	*eq = '\0';
	if (!jp_is_identifier(arg) || strcmp(arg, "job") == 0 || strcmp(arg, "name") == 0 ||
	    strcmp(arg, "basename") == 0 || strcmp(arg, "row") == 0) {
		jp_cmd_usage_error(c, "--set %s: NAME must be an identifier other than job, name, "
		                      "basename and row", arg);
		*eq = '=';
		return -1;
	}
	for (i = 0; i < s->n; i++)
		if (strcmp(s->v[i].name, arg) == 0) {
			s->v[i].value = eq + 1;
			return 0;
		}
	if ((v = realloc(s->v, (s->n + 1) * sizeof(*v))) == NULL) {
		fputs("jobpub: out of memory\n", stderr);
		return -1;
	}
	s->v = v;
	v[s->n].name = arg;
	v[s->n].value = eq + 1;
	s->n++;
	return 0;
}

void
jp_sets_free(struct jp_sets *s)
{
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

const char *
jp_cmd_db(const char *opt)
{
	const char *env = getenv("JOBPUB_DB");

	if (opt != NULL)
		return opt;
	return env != NULL && env[0] != '\0' ? env : jp_catalog_default_location();
}

int
jp_cmd_timeout_ms(const char *arg)
{
	char *end;
	double v = strtod(arg, &end);

	if (end == arg || *end != '\0' || v < 0 || v > 86400)
		return -1;
	return (int)(v * 1000);
}

int
jp_cmd_db_timeout(const struct jp_cmd *c, const char *arg, int *ms)
{
	if ((*ms = jp_cmd_timeout_ms(arg)) < 0)
		return jp_cmd_usage_error(c, "--db-timeout %s: expected seconds", arg);
	return 0;
}

long
jp_cmd_duration(const char *arg)
{
	char *end;
	double v = strtod(arg, &end);
	long mul = 1;

	if (end == arg || v < 0)
		return -1;
	if (*end == 's')
		end++;
	else if (*end == 'm')
		mul = 60, end++;
	else if (*end == 'h')
		mul = 3600, end++;
	else if (*end == 'd')
		mul = 86400, end++;
	return *end == '\0' ? (long)(v * (double)mul) : -1;
}

int
jp_cmd_net_option(const struct jp_cmd *c, int ch, const char *arg, struct jp_dest_opts *o)
{
	switch (ch) {
	case 't':
		if ((o->timeout_ms = jp_cmd_timeout_ms(arg)) <= 0) {
			jp_cmd_usage_error(c, "--timeout %s: expected seconds", arg);
			return -1;
		}
		return 1;
	default:
		return backend_option(c, ch, arg, &o->options);
	}
}

int
jp_cmd_count(const char *arg, int min, int max)
{
	char *end;
	long v = strtol(arg, &end, 10);

	return end == arg || *end != '\0' || v < min || v > max ? -1 : (int)v;
}

int
jp_cmd_job_ok(const char *id)
{
	size_t n = strlen(id), i;

	if (n == 0 || n > 128)
		return 0;
	for (i = 0; i < n; i++)
		if (id[i] <= ' ' || id[i] >= 0x7f || id[i] == '/')
			return 0;
	return 1;
}

int
jp_cmd_conn_opt(const struct jp_cmd *c, int ch, const char *arg, struct jp_publish_opts *o)
{
	switch (ch) {
	case JP_OPT_RETRIES:
		if ((o->retries = jp_cmd_count(arg, 0, 100)) < 0)
			return jp_cmd_usage_error(c, "--retries %s: expected 0 to 100", arg), -1;
		return 1;
	case JP_OPT_TIMEOUT:
		if ((o->timeout_ms = jp_cmd_timeout_ms(arg)) <= 0)
			return jp_cmd_usage_error(c, "--timeout %s: expected seconds", arg), -1;
		return 1;
	case JP_OPT_STALL:
		if ((o->stall_ms = jp_cmd_timeout_ms(arg)) <= 0)
			return jp_cmd_usage_error(c, "--stall %s: expected seconds", arg), -1;
		return 1;
	default:
		return backend_option(c, ch, arg, &o->options);
	}
}

/*
 * options.h - backend options: what each backend accepts, and the values a command was given.
 *
 * A backend declares the options it accepts in its table (backend.h: .options), one
 * struct jp_option_def each.  Their keys are "BACKEND.NAME": the backend's name, a dot, the
 * option's name.  The values come from the manifest's BACKEND: section (manifest.c) and the command line
 * (-o BACKEND.NAME=VALUE, and the older flags that alias a key: --identity, --part-size, ...);
 * they are checked against the tables where they are given and then carried to the backend in
 * a store (struct jp_options, inside struct jp_dest_opts) untouched: the layers between know
 * no backend's keys.  A key that no backend declares is refused where it was given (the
 * manifest's FILE:LINE:COL, or the command-line option), as is a secret (it is read from the
 * environment only) and a value of the wrong type.
 *
 * Libarchive's archive_write_set_options is the model: the core routes "module.key=value"
 * and reports what nobody claims.
 */
#ifndef JP_OPTIONS_H
#define JP_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"

enum jp_option_type {
	JP_OPTION_STRING,     /* any non-empty text */
	JP_OPTION_PATH,       /* a local file name (not expanded) */
	JP_OPTION_SIZE,       /* 64MiB, 5G, 1048576 (util.h: jp_parse_size), within min..max */
	JP_OPTION_BOOL,       /* true or false */
	JP_OPTION_INT,        /* a whole number within min..max */
	JP_OPTION_SECRET_ENV, /* a secret: only the environment variable `env` gives it; listed in
	                         help, refused on the command line and in a manifest */
};

/* flags */
#define JP_OPTION_CLI_ONLY 1 /* refused in a manifest: a decision for whoever runs the command */

struct jp_option_def {
	const char *name;    /* "part-size": the key below its backend's name */
	enum jp_option_type type;
	const char *def;     /* the default as help shows it; NULL: none to show */
	const char *help;    /* one line */
	const char *alias;   /* an older long flag that sets it ("part-size": --part-size); NULL */
	const char *env;     /* SECRET_ENV: the variable that holds it */
	uint64_t min, max;   /* SIZE, INT: the bounds (max 0: none) */
	const char *example; /* SIZE, INT: an example value for messages ("64MiB") */
	const char *arg;     /* the value's name in help ("URL"); NULL: by the type ("FILE") */
	int flags;           /* JP_OPTION_CLI_ONLY */
};

/* Where a value came from. */
enum jp_option_source { JP_OPTION_FROM_CLI, JP_OPTION_FROM_MANIFEST };

struct jp_option {
	char *key;   /* "BACKEND.NAME" */
	char *value; /* as given ("64MiB"; a BOOL is "true" or "false") */
	enum jp_option_source source;
	char *where; /* the manifest's "FILE:LINE:COL", or the flag ("-o", "--part-size") */
};

/* The values given, at most one per key (a later set replaces an earlier one).  All zero is
 * an empty store; a NULL store reads as empty everywhere. */
struct jp_options {
	struct jp_option *v;
	size_t n;
};

/* ---- the tables ---- */

/* The option table of the backend named backend, terminated by a NULL name; NULL when
 * there is no such backend or it declares no options. */
const struct jp_option_def *jp_options_of(const char *backend);

/* The definition of key "BACKEND.NAME", or NULL when no backend declares it. */
const struct jp_option_def *jp_option_find(const char *key);

/* The names of backend's options that a manifest may set, ", "-separated, into buf
 * ("identity, known-hosts"); "" when none. */
void jp_options_manifest_names(const char *backend, char *buf, size_t len);

/* The names of the backends that declare options, ", "-separated, in registry order. */
void jp_options_backend_names(char *buf, size_t len);

/* Checks value against def: its type, its bounds, then the backend's own check (backend.h:
 * check_option).  0 when good; else -1 with the reason in why, worded to follow "KEY: "
 * ("'1MiB' is not a size from 5MiB to 5GiB (e.g. 64MiB)").  The value is quoted in why only
 * for types that cannot hold a secret.  A SECRET_ENV def is always refused. */
int jp_option_check(const char *key, const struct jp_option_def *def, const char *value,
                    char *why, size_t len);

/* ---- the store ---- */

/* Adds key=value without checking it (manifest.c checks first, to place its errors); the
 * strings are copied.  where may be NULL.  JP_OK, or JP_FAILED (70) when out of memory. */
int jp_options_put(struct jp_options *s, const char *key, const char *value,
                   enum jp_option_source source, const char *where, struct jp_error *err);

/*
 * Checks and adds "KEY=VALUE" as given on the command line by flag ("-o"): a usage error (64,
 * message "FLAG KEY: reason", never showing a secret's value) when KEY is not "BACKEND.NAME" of
 * an option some backend declares, is a secret, or VALUE does not fit its type.
 */
int jp_options_set_arg(struct jp_options *s, const char *flag, const char *arg,
                       struct jp_error *err);
/* The same for an older flag that aliases an option (--part-size VALUE; value NULL for a BOOL
 * flag, which sets "true"): the message names the flag, and for a bounded size is the one the
 * flag always gave ("--part-size 1k: expected 5MiB to 5GiB").  Unknown flag: 70. */
int jp_options_set_alias(struct jp_options *s, const char *alias, const char *value,
                         struct jp_error *err);

/* Every value of src replaces dst's for the same key (the command line over the manifest). */
int jp_options_merge(struct jp_options *dst, const struct jp_options *src, struct jp_error *err);

/* The value of key, or NULL when not given (s may be NULL). */
const char *jp_options_get(const struct jp_options *s, const char *key);
/* Where key's value came from ("-o", "m.yaml:3:14"), or NULL when not given. */
const char *jp_options_where(const struct jp_options *s, const char *key);
/* Typed reads of checked values; def when the key was not given. */
int jp_options_bool(const struct jp_options *s, const char *key, int def);
uint64_t jp_options_size(const struct jp_options *s, const char *key, uint64_t def);
long long jp_options_int(const struct jp_options *s, const char *key, long long def);

void jp_options_free(struct jp_options *s); /* empties s; s may be NULL */

/* ---- the command line ---- */

/* The i-th alias flag over every backend's table (0, 1, ...): its name ("identity"), whether
 * it takes a value (non-BOOL), and the value's name for help ("FILE"); NULL past the last. */
const char *jp_options_alias(size_t i, int *has_arg);

/* Prints every backend's options for --help and `jobpub help options`: key, type, default,
 * help line, alias flag, and for a secret the variable to set. */
void jp_options_print_help(FILE *fp);

#endif

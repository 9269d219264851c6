/*
 * cmd-gc.c - `jobpub gc`: find what killed publishers left behind, and what the catalogue and
 * the destinations disagree on.
 *
 * Deletes only jobpub's own temporary names (".jobpub-<token>.<name>") older than the limit
 * and not held by a live lease, and only with --apply.  Missing and unreferenced files are
 * reported, never touched: they are someone's data.
 */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog.h"
#include "cmd.h"
#include "dest.h"
#include "json.h"
#include "log.h"
#include "util.h"

static int cmd_gc(int argc, char **argv);

const struct jp_cmd jp_cmd_gc = {
	.name = "gc",
	.summary = "List (and with --apply delete) temporary files left by killed publishers.",
	.usage = "jobpub gc [--db FILE] [--dest URL] [--older-than DURATION] [--apply] [--json]\n"
	         "                 [--identity FILE] [--known-hosts FILE] [--timeout SECONDS]\n"
	         "                 [--s3-endpoint URL]",
	.options =
		JP_CMD_HELP_DB
		"      --dest URL            look only here (default: every destination the catalogue knows)\n"
		"      --older-than DURATION only temporary files older than this (default 24h; 90s, 15m, 2d)\n"
		"      --apply               delete them (default: only list)\n"
		JP_CMD_HELP_JSON
		JP_CMD_NET_HELP
		JP_CMD_HELP_HELP
		"Also reports catalogue rows whose files are missing and files no row references;\n"
		"those are never deleted.\n",
	.exec = cmd_gc,
};

/* The catalogue's files under one destination: key -> seen in the listing. */
struct known {
	char **keys;
	char **jobs;
	char **urls;
	int *seen;
	size_t n;
};

struct gc {
	struct jp_catalog *cat;
	struct jp_dest *d;
	const char *url;
	long older_s;
	int apply;
	struct jp_json *j;
	struct known k;
	size_t temps, deleted, missing, unreferenced, in_use, displaced;
	uint64_t temp_bytes;
	int worst;
};

static int
collect_file(void *arg, const char *job, const struct jp_file_info *f)
{
	struct gc *g = arg;
	struct known *k = &g->k;

	if (f->destination == NULL || f->key == NULL || strcmp(f->destination, g->url) != 0)
		return 0;
	k->keys = realloc(k->keys, (k->n + 1) * sizeof(char *));
	k->jobs = realloc(k->jobs, (k->n + 1) * sizeof(char *));
	k->urls = realloc(k->urls, (k->n + 1) * sizeof(char *));
	k->seen = realloc(k->seen, (k->n + 1) * sizeof(int));
	if (!k->keys || !k->jobs || !k->urls || !k->seen)
		return 1;
	k->keys[k->n] = strdup(f->key);
	k->jobs[k->n] = strdup(job);
	k->urls[k->n] = strdup(f->remote);
	k->seen[k->n] = 0;
	k->n++;
	return 0;
}

static void
line(struct gc *g, const char *kind, const char *url, const char *job, int64_t size, int64_t age,
     const char *action)
{
	char sz[32];

	if (g->j != NULL) {
		jp_json_object(g->j, NULL);
		jp_json_str(g->j, "kind", kind);
		jp_json_str(g->j, "remote", url);
		if (job) jp_json_str(g->j, "job", job);
		if (size >= 0) jp_json_int(g->j, "size", size);
		if (age >= 0) jp_json_int(g->j, "age_s", age);
		if (action) jp_json_str(g->j, "action", action);
		jp_json_end(g->j, '}');
		return;
	}
	printf("  %-12s %s", kind, url);
	if (job)
		printf("  (job %s)", job);
	if (size >= 0)
		printf("  %s", jp_human_size((uint64_t)size, sz, sizeof(sz)));
	if (age >= 0)
		printf("  %.1f h old", (double)age / 3600.0);
	if (action)
		printf("  %s", action);
	putchar('\n');
}

/* The token of a temporary name: the 16 hex digits after the prefix. */
static int
temp_token(const char *base, char tok[17])
{
	size_t n = strlen(JP_TMP_PREFIX);

	if (strncmp(base, JP_TMP_PREFIX, n) != 0)
		return 0;
	base += n;
	if (strncmp(base, "old-", 4) == 0)
		base += 4;
	if (strspn(base, "0123456789abcdef") < 16)
		return 0;
	memcpy(tok, base, 16);
	tok[16] = '\0';
	return 1;
}

/*
 * An incomplete multipart upload (S3): staged data no listing of objects shows, billed until
 * aborted.  Its key is the final name, so it carries no token: one initiated after a live lease
 * began may belong to that publisher and is kept; others are aborted once old enough.
 */
static void
visit_upload(struct gc *g, const char *key, const char *url, const struct jp_stat *st,
             int64_t age)
{
	struct jp_error e;

	if (jp_catalog_lease_since(g->cat, st->mtime)) {
		g->in_use++;
		line(g, "in-use", url, NULL, -1, age,
		     "kept: incomplete upload started while a publisher holds a lease");
		return;
	}
	if (age < g->older_s)
		return;
	g->temps++;
	jp_error_clear(&e);
	if (!g->apply) {
		line(g, "upload", url, NULL, -1, age, "incomplete upload; would abort (--apply)");
	} else if (jp_dest_abort_upload(g->d, key, st->upload, &e) == JP_OK) {
		g->deleted++;
		line(g, "upload", url, NULL, -1, age, "aborted");
	} else {
		line(g, "upload", url, NULL, -1, age, e.msg);
		if (g->worst == 0)
			g->worst = e.code;
	}
}

static int
visit(void *arg, const char *key, const struct jp_stat *st)
{
	struct gc *g = arg;
	const char *base = strrchr(key, '/');
	char tok[17], *url;
	int64_t age = (int64_t)(time(NULL) - st->mtime);
	size_t i;

	base = base ? base + 1 : key;
	if ((url = jp_dest_key_url(g->d, key)) == NULL)
		return 1;
	if (st->upload != NULL) {
		visit_upload(g, key, url, st, age);
		free(url);
		return 0;
	}
	if (strncmp(base, JP_TMP_PREFIX "old-", strlen(JP_TMP_PREFIX "old-")) == 0) {
		/* The old content an SFTP --overwrite moved aside: if the publish died between its two
		 * renames, this is the only copy.  Never deleted; said what it is. */
		g->displaced++;
		line(g, "displaced", url, NULL, (int64_t)st->size, age,
		     "kept: a replaced file moved aside by --overwrite; restore it if its final name is "
		     "missing, else delete it by hand");
		free(url);
		return 0;
	}
	if (temp_token(base, tok)) {
		if (jp_catalog_token_leased(g->cat, tok)) {
			g->in_use++;
			line(g, "in-use", url, NULL, (int64_t)st->size, age, "kept: its publisher holds the lease");
		} else if (age >= g->older_s) {
			struct jp_error e;

			g->temps++;
			g->temp_bytes += st->size;
			jp_error_clear(&e);
			if (!g->apply) {
				line(g, "temporary", url, NULL, (int64_t)st->size, age, "would delete (--apply)");
			} else if (jp_dest_remove(g->d, key, &e) == JP_OK) {
				g->deleted++;
				line(g, "temporary", url, NULL, (int64_t)st->size, age, "deleted");
			} else {
				line(g, "temporary", url, NULL, (int64_t)st->size, age, e.msg);
				if (g->worst == 0)
					g->worst = e.code;
			}
		}
		free(url);
		return 0;
	}
	for (i = 0; i < g->k.n; i++)
		if (strcmp(g->k.keys[i], key) == 0) {
			g->k.seen[i] = 1;
			free(url);
			return 0;
		}
	g->unreferenced++;
	line(g, "unreferenced", url, NULL, (int64_t)st->size, -1, NULL);
	free(url);
	return 0;
}

static void
known_free(struct known *k)
{
	size_t i;

	for (i = 0; i < k->n; i++) {
		free(k->keys[i]);
		free(k->jobs[i]);
		free(k->urls[i]);
	}
	free(k->keys);
	free(k->jobs);
	free(k->urls);
	free(k->seen);
	memset(k, 0, sizeof(*k));
}

/* One destination: list it, classify every object, report what the catalogue misses. */
static void
gc_one(struct gc *g, struct jp_dest_cache *cache, const struct jp_dest_opts *o)
{
	struct jp_error e;
	size_t i;

	jp_error_clear(&e);
	if (g->j == NULL)
		printf("%s:\n", g->url);
	if ((g->d = jp_dest_cache_get(cache, g->url, o, &e)) == NULL ||
	    jp_catalog_files(g->cat, NULL, collect_file, g, &e) != JP_OK ||
	    jp_dest_list(g->d, "", visit, g, &e) != JP_OK) {
		jp_log_error("%s: %s", g->url, e.msg);
		if (g->worst == 0)
			g->worst = e.code;
		known_free(&g->k);
		return;
	}
	for (i = 0; i < g->k.n; i++)
		if (!g->k.seen[i]) {
			g->missing++;
			line(g, "missing", g->k.urls[i], g->k.jobs[i], -1, -1, NULL);
		}
	known_free(&g->k);
}

static int
add_url(char ***v, size_t *n, const char *url)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if (strcmp((*v)[i], url) == 0)
			return 0;
	if ((*v = realloc(*v, (*n + 1) * sizeof(char *))) == NULL)
		return -1;
	(*v)[(*n)++] = strdup(url);
	return 0;
}

struct urls {
	char **v;
	size_t n;
};

static int
collect_dest(void *arg, const char *url)
{
	struct urls *u = arg;

	return add_url(&u->v, &u->n, url);
}

static int
cmd_gc(int argc, char **argv)
{
	static const struct option longopts[] = {
		JP_CMD_OPT_DB,
		JP_CMD_OPT_DEST,
		{"older-than", required_argument, NULL, 'o'},
		{"apply", no_argument, NULL, 'a'},
		JP_CMD_OPT_JSON,
		JP_CMD_OPT_HELP,
		JP_CMD_NET_OPTIONS,
		{NULL, 0, NULL, 0},
	};
	const struct jp_cmd *c = &jp_cmd_gc;
	struct jp_dest_cache cache;
	struct jp_dest_opts o;
	struct urls u = {NULL, 0};
	struct gc g;
	struct jp_json j;
	struct jp_error err;
	const char *db = NULL, *dest = NULL;
	int ch, json = 0, n, rc = 0;
	size_t i;

	memset(&g, 0, sizeof(g));
	memset(&o, 0, sizeof(o));
	memset(&cache, 0, sizeof(cache));
	o.readonly = 1;
	g.older_s = 24 * 3600;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if ((n = jp_cmd_net_option(c, ch, optarg, &o)) != 0) {
			if (n < 0)
				return 64;
			continue;
		}
		switch (ch) {
		case 'D': db = optarg; break;
		case 'd': dest = optarg; break;
		case 'a': g.apply = 1; break;
		case 'J': json = 1; break;
		case 'o':
			if ((g.older_s = jp_cmd_duration(optarg)) < 0)
				return jp_cmd_usage_error(c, "--older-than %s: expected a duration (90s, 15m, 24h, 2d)",
				                          optarg);
			break;
		case 'h': jp_cmd_print_help(c, stdout); return 0;
		default: return jp_cmd_getopt_error(c, ch, argv);
		}
	}
	if (optind < argc)
		return jp_cmd_usage_error(c, "unexpected argument '%s'", argv[optind]);
	jp_log_setup(JP_LOG_TEXT, 0, NULL);
	jp_error_clear(&err);
	if (jp_catalog_open(jp_cmd_db(db), 30000, JP_CATALOG_READONLY, &g.cat, &err) != JP_OK) {
		jp_log_error("%s", err.msg);
		return err.code;
	}
	if (dest != NULL)
		add_url(&u.v, &u.n, dest);
	else if (jp_catalog_destinations(g.cat, collect_dest, &u, &err) != JP_OK) {
		jp_log_error("%s", err.msg);
		rc = err.code;
		goto out;
	}
	if (json) {
		jp_json_init(&j, stdout);
		jp_json_object(&j, NULL);
		jp_json_array(&j, "objects");
		g.j = &j;
	}
	for (i = 0; i < u.n; i++) {
		g.url = u.v[i];
		gc_one(&g, &cache, &o);
	}
	if (json) {
		jp_json_end(&j, ']');
		jp_json_int(&j, "temporary", (int64_t)g.temps);
		jp_json_int(&j, "deleted", (int64_t)g.deleted);
		jp_json_int(&j, "in_use", (int64_t)g.in_use);
		jp_json_int(&j, "missing", (int64_t)g.missing);
		jp_json_int(&j, "unreferenced", (int64_t)g.unreferenced);
		jp_json_int(&j, "displaced", (int64_t)g.displaced);
		jp_json_end(&j, '}');
		putchar('\n');
	} else {
		char sz[32];
		printf("%zu destination%s: %zu temporary file%s (%s) %s, %zu in use, %zu missing, "
		       "%zu unreferenced, %zu displaced\n",
		       u.n, u.n == 1 ? "" : "s", g.temps, g.temps == 1 ? "" : "s",
		       jp_human_size(g.temp_bytes, sz, sizeof(sz)),
		       g.apply ? "deleted" : "to delete with --apply", g.in_use, g.missing, g.unreferenced,
		       g.displaced);
	}
	rc = g.worst;
out:
	for (i = 0; i < u.n; i++)
		free(u.v[i]);
	free(u.v);
	jp_dest_cache_free(&cache);
	jp_catalog_close(g.cat);
	return rc;
}

/*
 * manifest.c - loading and checking the YAML manifest with libfyaml.
 *
 * libfyaml gives the parse errors with their positions (collected on a diag object) and a mark
 * for every scalar token; we keep the position of each string so later errors (an unknown
 * variable, a path escaping the workdir) can still point into the file.
 *
 * The file is read into memory (at most JP_MANIFEST_MAX bytes) and checked to be UTF-8 text
 * without NUL bytes before libfyaml sees it: libfyaml 0.7.12 loops forever on some invalid
 * UTF-8 (the three bytes "%a\x89", a directive, spin in fy_scan_directive), so its input must be
 * text it is known to handle.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libfyaml.h>

#include "dest.h"
#include "manifest.h"
#include "tarstream.h"
#include "template.h"
#include "util.h"
#include "validate.h"

/* What a loader needs while walking the document. */
struct loader {
	struct jp_manifest *m;
	struct jp_error *err;
};

static void
diag_discard(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
}

int
jp_manifest_error(const struct jp_manifest *m, const struct jp_str *at, struct jp_error *err,
                  const char *fmt, ...)
{
	char msg[JP_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (at != NULL && at->line > 0)
		return jp_error_set(err, JP_E_DATA, "%s:%d:%d: %s", m->file, at->line, at->col, msg);
	return jp_error_set(err, JP_E_DATA, "%s: %s", m->file, msg);
}

/* Position of a node: its own token for scalars, else its first descendant's; 0:0 if none. */
static void
node_pos(struct fy_node *n, int *line, int *col)
{
	*line = *col = 0;
	while (n != NULL) {
		if (fy_node_get_type(n) == FYNT_SCALAR) {
			const struct fy_mark *mk = fy_token_start_mark(fy_node_get_scalar_token(n));
			if (mk != NULL) {
				*line = mk->line + 1;
				*col = mk->column + 1;
			}
			return;
		}
		if (fy_node_get_type(n) == FYNT_MAPPING) {
			void *it = NULL;
			struct fy_node_pair *p = fy_node_mapping_iterate(n, &it);
			n = p ? fy_node_pair_key(p) : NULL;
		} else {
			void *it = NULL;
			n = fy_node_sequence_iterate(n, &it);
		}
	}
}

static int
lerr(struct loader *L, struct fy_node *at, const char *fmt, const char *a, const char *b)
{
	struct jp_str pos = {NULL, 0, 0};
	struct fy_node *parent;

	node_pos(at, &pos.line, &pos.col);
	/* An empty value ("outputs:", a bare "-") has no token of its own: point at the key it is
	 * the value of, or at the key of the nearest enclosing value that has one. */
	for (; pos.line == 0 && at != NULL && (parent = fy_node_get_parent(at)) != NULL; at = parent) {
		void *it = NULL;
		struct fy_node_pair *p;

		if (fy_node_get_type(parent) != FYNT_MAPPING)
			continue;
		while ((p = fy_node_mapping_iterate(parent, &it)) != NULL)
			if (fy_node_pair_value(p) == at) {
				node_pos(fy_node_pair_key(p), &pos.line, &pos.col);
				break;
			}
	}
	return jp_manifest_error(L->m, &pos, L->err, fmt, a, b);
}

/* Reads a non-empty scalar into *dst (with its position).  `what` names the key for messages. */
static int
get_str(struct loader *L, struct fy_node *key, struct fy_node *val, const char *what,
        struct jp_str *dst)
{
	const char *s;
	size_t len;

	if (dst->s != NULL)
		return lerr(L, key, "%s given twice%s", what, "");
	if (val == NULL || fy_node_get_type(val) != FYNT_SCALAR)
		return lerr(L, val ? val : key, "%s: expected a string%s", what, "");
	s = fy_node_get_scalar(val, &len);
	if (s == NULL || len == 0)
		return lerr(L, key, "%s: empty value%s", what, "");
	if (memchr(s, '\0', len) != NULL)
		return lerr(L, val, "%s: NUL byte in value%s", what, "");
	dst->s = strndup(s, len);
	if (dst->s == NULL)
		return jp_error_set(L->err, JP_E_SOFTWARE, "manifest: out of memory");
	/* libfyaml marks a quoted scalar at its first character inside the quotes, so template
	 * offsets line up with columns for every style. */
	node_pos(val, &dst->line, &dst->col);
	return JP_OK;
}

static int
get_bool(struct loader *L, struct fy_node *val, const char *what, int *dst)
{
	const char *s;
	size_t len;

	if (val != NULL && fy_node_get_type(val) == FYNT_SCALAR) {
		s = fy_node_get_scalar(val, &len);
		if (len == 4 && memcmp(s, "true", 4) == 0) {
			*dst = 1;
			return JP_OK;
		}
		if (len == 5 && memcmp(s, "false", 5) == 0) {
			*dst = 0;
			return JP_OK;
		}
	}
	return lerr(L, val, "%s: expected true or false%s", what, "");
}

/* Key of a mapping pair as a C string (NULL for a non-scalar key). */
static const char *
key_of(struct fy_node_pair *p, char *buf, size_t len)
{
	struct fy_node *k = fy_node_pair_key(p);
	const char *s;
	size_t n;

	if (k == NULL || fy_node_get_type(k) != FYNT_SCALAR)
		return NULL;
	s = fy_node_get_scalar(k, &n);
	if (n >= len)
		n = len - 1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return buf;
}

static int
check_ident(struct loader *L, const struct jp_str *s, const char *what)
{
	if (s->s != NULL && !jp_is_identifier(s->s))
		return jp_manifest_error(L->m, s, L->err,
		                         "%s: '%s' is not a valid SQL name (letters, digits, _; at most "
		                         "64)",
		                         what, s->s);
	return JP_OK;
}

static int
load_catalog(struct loader *L, struct fy_node *key, struct fy_node *map)
{
	struct jp_manifest *m = L->m;
	struct fy_node_pair *p;
	void *it = NULL;
	char k[64];
	int r;

	if (fy_node_get_type(map) != FYNT_MAPPING)
		return lerr(L, map, "catalog: expected a mapping (table, id-column, status-column, "
		                    "published-status)%s%s", "", "");
	while ((p = fy_node_mapping_iterate(map, &it)) != NULL) {
		struct fy_node *kn = fy_node_pair_key(p), *v = fy_node_pair_value(p);
		const char *name = key_of(p, k, sizeof(k));

		if (name != NULL && strcmp(name, "table") == 0)
			r = get_str(L, kn, v, "catalog.table", &m->table);
		else if (name != NULL && strcmp(name, "id-column") == 0)
			r = get_str(L, kn, v, "catalog.id-column", &m->id_column);
		else if (name != NULL && strcmp(name, "status-column") == 0)
			r = get_str(L, kn, v, "catalog.status-column", &m->status_column);
		else if (name != NULL && strcmp(name, "published-status") == 0)
			r = get_str(L, kn, v, "catalog.published-status", &m->published_status);
		else
			return lerr(L, kn, "unknown key '%s' in catalog (expected table, id-column, "
			                   "status-column, published-status)%s",
			            name ? name : "?", "");
		if (r != JP_OK)
			return r;
	}
	if ((r = check_ident(L, &m->table, "catalog.table")) != JP_OK ||
	    (r = check_ident(L, &m->id_column, "catalog.id-column")) != JP_OK ||
	    (r = check_ident(L, &m->status_column, "catalog.status-column")) != JP_OK)
		return r;
	return JP_OK;
}

/* A local path that leaves the work directory whatever the job is a manifest error. */
static int
check_local(struct loader *L, const struct jp_str *s, const char *nm)
{
	const char *p = s->s;

	if (p[0] == '/')
		return jp_manifest_error(L->m, s, L->err,
		                         "output %s: '%s' is absolute; paths are relative to the work "
		                         "directory",
		                         nm, p);
	for (;;) {
		size_t n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return jp_manifest_error(L->m, s, L->err,
			                         "output %s: '%s' leaves the work directory ('..')", nm,
			                         s->s);
		if (p[n] == '\0')
			return JP_OK;
		p += n + 1;
	}
}

/* attributes: [NAME, ...] - a list of non-empty strings. */
static int
get_attributes(struct loader *L, struct fy_node *key, struct fy_node *val, struct jp_output *o)
{
	struct fy_node *item;
	void *it = NULL;
	size_t n, i = 0;

	if (o->attributes != NULL)
		return lerr(L, key, "attributes given twice%s%s", "", "");
	node_pos(key, &o->attributes_at.line, &o->attributes_at.col);
	if (val == NULL || fy_node_get_type(val) != FYNT_SEQUENCE)
		return lerr(L, val ? val : key, "attributes: expected a list of names, e.g. [n_surface, "
		                                "mass]%s%s", "", "");
	n = (size_t)fy_node_sequence_item_count(val);
	if ((o->attributes = calloc(n + 1, sizeof(char *))) == NULL)
		return jp_error_set(L->err, JP_E_SOFTWARE, "manifest: out of memory");
	while ((item = fy_node_sequence_iterate(val, &it)) != NULL) {
		struct jp_str s = {NULL, 0, 0};
		size_t j;
		int r;

		if ((r = get_str(L, key, item, "attributes", &s)) != JP_OK)
			return r;
		o->attributes[i++] = s.s;
		o->n_attributes = i;
		for (j = 0; j + 1 < i; j++)
			if (strcmp(o->attributes[j], s.s) == 0)
				return lerr(L, item, "attributes: '%s' is listed twice%s", s.s, "");
	}
	return JP_OK;
}

/* "FILE:LINE:COL: <fmt>" at the position of node at. */
static int
node_error(struct loader *L, struct fy_node *at, const char *fmt, ...)
{
	char msg[JP_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return lerr(L, at, "%s%s", msg, "");
}

/* BACKEND: {KEY: VALUE, ...} - a backend's options, checked against its table (options.h) and
 * kept with their positions for the backend: this file knows none of them. */
static int
load_backend(struct loader *L, const char *backend, struct fy_node *map)
{
	struct fy_node_pair *p;
	void *it = NULL;
	char names[256], k[64], key[160], why[512], *where;
	int r;

	jp_options_manifest_names(backend, names, sizeof(names));
	if (fy_node_get_type(map) != FYNT_MAPPING)
		return node_error(L, map, "%s: expected a mapping (%s)", backend, names);
	while ((p = fy_node_mapping_iterate(map, &it)) != NULL) {
		struct fy_node *kn = fy_node_pair_key(p), *v = fy_node_pair_value(p);
		const char *name = key_of(p, k, sizeof(k));
		const struct jp_option_def *def = NULL;
		struct jp_str val = {NULL, 0, 0};

		if (name != NULL) {
			snprintf(key, sizeof(key), "%s.%s", backend, name);
			def = jp_option_find(key);
		}
		if (def == NULL)
			return node_error(L, kn, "unknown key '%s' in %s (expected %s)", name ? name : "?",
			                  backend, names);
		if (def->type == JP_OPTION_SECRET_ENV) {
			jp_option_check(key, def, NULL, why, sizeof(why));
			return node_error(L, kn, "%s: %s", key, why);
		}
		if (def->flags & JP_OPTION_CLI_ONLY)
			return node_error(L, kn, "%s: only on the command line (-o %s=...)", key, key);
		if (jp_options_get(&L->m->options, key) != NULL)
			return node_error(L, kn, "%s given twice", key);
		if (def->type == JP_OPTION_BOOL) {
			int b = 0;

			if ((r = get_bool(L, v, key, &b)) != JP_OK)
				return r;
			if ((val.s = strdup(b ? "true" : "false")) == NULL)
				return jp_error_set(L->err, JP_E_SOFTWARE, "manifest: out of memory");
			node_pos(v, &val.line, &val.col);
		} else if ((r = get_str(L, kn, v, key, &val)) != JP_OK) {
			return r;
		} else if (jp_option_check(key, def, val.s, why, sizeof(why)) != 0) {
			r = jp_manifest_error(L->m, &val, L->err, "%s: %s", key, why);
			free(val.s);
			return r;
		}
		/* Where it came from, as this file's errors name a place. */
		where = jp_asprintf("%s:%d:%d", L->m->file, val.line, val.col);
		r = where == NULL ? jp_error_set(L->err, JP_E_SOFTWARE, "manifest: out of memory")
		                  : jp_options_put(&L->m->options, key, val.s, JP_OPTION_FROM_MANIFEST,
		                                   where, L->err);
		free(where);
		free(val.s);
		if (r != JP_OK)
			return r;
	}
	return JP_OK;
}

static int
load_output(struct loader *L, struct fy_node *item, struct jp_output *o)
{
	struct fy_node_pair *p;
	void *it = NULL;
	char k[64];
	int r;

	o->required = 1;
	node_pos(item, &o->line, &o->col);
	if (fy_node_get_type(item) != FYNT_MAPPING)
		return lerr(L, item, "outputs: each entry must be a mapping (name, path or glob, to, "
		                     "column, required)%s%s", "", "");
	while ((p = fy_node_mapping_iterate(item, &it)) != NULL) {
		struct fy_node *kn = fy_node_pair_key(p), *v = fy_node_pair_value(p);
		const char *name = key_of(p, k, sizeof(k));

		if (name == NULL)
			return lerr(L, kn, "outputs: keys must be strings%s%s", "", "");
		if (strcmp(name, "name") == 0)
			r = get_str(L, kn, v, "name", &o->name);
		else if (strcmp(name, "path") == 0)
			r = get_str(L, kn, v, "path", &o->path);
		else if (strcmp(name, "glob") == 0)
			r = get_str(L, kn, v, "glob", &o->glob);
		else if (strcmp(name, "to") == 0)
			r = get_str(L, kn, v, "to", &o->to);
		else if (strcmp(name, "column") == 0)
			r = get_str(L, kn, v, "column", &o->column);
		else if (strcmp(name, "required") == 0)
			r = get_bool(L, v, "required", &o->required);
		else if (strcmp(name, "archive") == 0)
			r = get_str(L, kn, v, "archive", &o->archive);
		else if (strcmp(name, "check") == 0)
			r = get_str(L, kn, v, "check", &o->check);
		else if (strcmp(name, "attributes") == 0)
			r = get_attributes(L, kn, v, o);
		else
			return lerr(L, kn, "unknown key '%s' in output (expected name, path, glob, to, "
			                   "column, required, archive, check, attributes)%s",
			            name, "");
		if (r != JP_OK)
			return r;
	}
	{
		struct jp_str at = {NULL, o->line, o->col};
		const char *nm = o->name.s ? o->name.s : "?";

		if (o->name.s == NULL)
			return jp_manifest_error(L->m, &at, L->err, "output without a name");
		if (strspn(o->name.s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
		    strlen(o->name.s))
			return jp_manifest_error(L->m, &o->name, L->err,
			                         "output name '%s': use letters, digits, '_', '.', '-'", nm);
		if ((o->path.s == NULL) == (o->glob.s == NULL))
			return jp_manifest_error(L->m, &at, L->err,
			                         "output %s: give exactly one of path and glob", nm);
		if (o->to.s == NULL)
			return jp_manifest_error(L->m, &at, L->err,
			                         "output %s: missing 'to' (its remote name)", nm);
		if ((r = check_ident(L, &o->column, "column")) != JP_OK ||
		    (r = check_local(L, o->path.s ? &o->path : &o->glob, nm)) != JP_OK)
			return r;
		if (o->archive.s != NULL) {
			o->archive_fmt = jp_archive_format_parse(o->archive.s);
			if (o->archive_fmt == JP_ARCHIVE_NONE)
				return jp_manifest_error(L->m, &o->archive, L->err,
				                         "output %s: archive '%s': expected tar, tar.gz or tar.zst",
				                         nm, o->archive.s);
			if (o->path.s == NULL)
				return jp_manifest_error(L->m, &o->archive, L->err,
				                         "output %s: archive needs a 'path:' naming a directory",
				                         nm);
		}
		if (o->check.s != NULL && o->archive.s != NULL)
			return jp_manifest_error(L->m, &o->check, L->err,
			                         "output %s: check applies to files, not to an archive", nm);
		if (o->check.s != NULL) {
			o->check_kind = jp_check_parse(o->check.s);
			if (o->check_kind < 0)
				return jp_manifest_error(L->m, &o->check, L->err,
				                         "output %s: check '%s': expected auto, none, hdf5 or hdf4",
				                         nm, o->check.s);
		}
		if (o->n_attributes > 0 && (o->archive.s != NULL || o->glob.s != NULL))
			return jp_manifest_error(L->m, &o->attributes_at, L->err,
			                         "output %s: attributes need a single HDF5 file ('path:', no "
			                         "archive)",
			                         nm);
		if (o->n_attributes > 0 && (o->check_kind == JP_CHECK_NONE || o->check_kind == JP_CHECK_HDF4) &&
		    o->check.s != NULL)
			return jp_manifest_error(L->m, &o->attributes_at, L->err,
			                         "output %s: attributes need check: hdf5 or auto", nm);
	}
	return JP_OK;
}

static int
load_outputs(struct loader *L, struct fy_node *key, struct fy_node *seq)
{
	struct jp_manifest *m = L->m;
	struct fy_node *item;
	void *it = NULL;
	size_t i, j;
	int r;

	if (fy_node_get_type(seq) != FYNT_SEQUENCE)
		return lerr(L, seq, "outputs: expected a list of outputs%s%s", "", "");
	m->n_outputs = (size_t)fy_node_sequence_item_count(seq);
	if (m->n_outputs == 0)
		return lerr(L, key, "outputs: the list is empty%s%s", "", "");
	m->outputs = calloc(m->n_outputs, sizeof(*m->outputs));
	if (m->outputs == NULL) {
		/* jp_manifest_free walks n_outputs entries of outputs. */
		m->n_outputs = 0;
		return jp_error_set(L->err, JP_E_SOFTWARE, "manifest: out of memory");
	}
	for (i = 0; (item = fy_node_sequence_iterate(seq, &it)) != NULL; i++)
		if ((r = load_output(L, item, &m->outputs[i])) != JP_OK)
			return r;
	for (i = 0; i < m->n_outputs; i++)
		for (j = 0; j < i; j++) {
			if (strcmp(m->outputs[i].name.s, m->outputs[j].name.s) == 0)
				return jp_manifest_error(m, &m->outputs[i].name, L->err,
				                         "output name '%s' is used twice (also line %d)",
				                         m->outputs[i].name.s, m->outputs[j].name.line);
			if (m->outputs[i].column.s && m->outputs[j].column.s &&
			    strcmp(m->outputs[i].column.s, m->outputs[j].column.s) == 0)
				return jp_manifest_error(m, &m->outputs[i].column, L->err,
				                         "column '%s' is filled by outputs %s and %s",
				                         m->outputs[i].column.s, m->outputs[j].name.s,
				                         m->outputs[i].name.s);
		}
	return JP_OK;
}

/* Parse errors come from libfyaml's collected diagnostics, with their positions. */
static int
parse_error(struct jp_manifest *m, struct fy_diag *diag, struct jp_error *err)
{
	struct fy_diag_error *e;
	void *it = NULL;

	while ((e = fy_diag_errors_iterate(diag, &it)) != NULL)
		if (e->type >= FYET_ERROR)
			return jp_error_set(err, JP_E_DATA, "%s:%d:%d: %s", m->file, e->line, e->column,
			                    e->msg);
	return jp_error_set(err, JP_E_DATA, "%s: not a valid YAML document", m->file);
}

static int
set_default(struct jp_str *s, const char *v)
{
	if (s->s == NULL && (s->s = strdup(v)) == NULL)
		return -1;
	return 0;
}

/* Offset of the first byte that is not part of well-formed UTF-8 (RFC 3629: no overlong forms,
 * no surrogates, nothing above U+10FFFF) or is a NUL, or len when there is none; a sequence cut
 * by the end of the file is reported at its first byte.  Hand-written: none of jobpub's
 * libraries exports a validator (libfyaml's is internal and lax). */
static size_t
utf8_bad_offset(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned c = s[i];
		size_t n, k;
		unsigned lo = 0x80, hi = 0xbf;

		if (c == 0)
			return i;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
		else
			return i;
		for (k = 1; k <= n; k++) {
			if (i + k >= len)
				return i;
			if (s[i + k] < (k == 1 ? lo : 0x80) || s[i + k] > (k == 1 ? hi : 0xbf))
				return i + k;
		}
		i += n + 1;
	}
	return len;
}

/* "FILE:LINE:COL: ..." for the byte at off of buf (valid UTF-8 before it): the column counts
 * characters, as libfyaml's positions do, and is that of the character the byte belongs to. */
static int
bad_byte(const char *file, const unsigned char *buf, size_t off, struct jp_error *err)
{
	size_t i, start = off, k;
	int line = 1, col = 1;

	/* A bad continuation byte is placed at the character it was to complete. */
	for (k = 1; k <= 3 && k <= off && (buf[off - k] & 0xc0) == 0x80; k++)
		;
	if (k <= 3 && k <= off && buf[off - k] >= 0xc2 &&
	    (size_t)(buf[off - k] >= 0xf0 ? 3 : buf[off - k] >= 0xe0 ? 2 : 1) >= k)
		start = off - k;
	for (i = 0; i < start; i++) {
		if (buf[i] == '\n')
			line++, col = 1;
		else if ((buf[i] & 0xc0) != 0x80)
			col++;
	}
	if (buf[off] == 0)
		return jp_error_set(err, JP_E_DATA,
		                    "%s:%d:%d: NUL byte at byte offset %zu: a manifest is UTF-8 text",
		                    file, line, col, off);
	return jp_error_set(err, JP_E_DATA,
	                    "%s:%d:%d: invalid UTF-8 byte 0x%02x at byte offset %zu: a manifest is "
	                    "UTF-8 text",
	                    file, line, col, buf[off], off);
}

/* Reads the whole file into *buf (NUL-terminated, *len bytes).  Errors: 66 missing, 74 unreadable,
 * 65 larger than JP_MANIFEST_MAX. */
static int
read_file(const char *file, char **buf, size_t *len, struct jp_error *err)
{
	size_t cap = 64 << 10, n = 0;
	char *b = NULL, *nb;
	int fd, r = JP_OK;

	*buf = NULL;
	*len = 0;
	/* Read errors are told apart from YAML errors: a missing manifest is missing input. */
	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0)
		return jp_error_set(err, errno == ENOENT ? JP_E_NOINPUT : JP_E_IOERR, "%s: %s", file,
		                    strerror(errno));
	for (;;) {
		ssize_t got;

		if (n + 1 >= cap || b == NULL) {
			if (b != NULL)
				cap *= 2;
			if (cap > (size_t)JP_MANIFEST_MAX + 2)
				cap = (size_t)JP_MANIFEST_MAX + 2;
			if ((nb = realloc(b, cap)) == NULL) {
				r = jp_error_set(err, JP_E_SOFTWARE, "manifest: out of memory");
				goto out;
			}
			b = nb;
		}
		got = read(fd, b + n, cap - 1 - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = jp_error_set(err, JP_E_IOERR, "%s: %s", file, strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
		if (n > JP_MANIFEST_MAX) {
			r = jp_error_set(err, JP_E_DATA,
			                 "%s: larger than %d MiB: a manifest is a small text file", file,
			                 JP_MANIFEST_MAX >> 20);
			goto out;
		}
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	b = NULL;
out:
	free(b);
	close(fd);
	return r;
}

int
jp_manifest_load(const char *file, struct jp_manifest **out, struct jp_error *err)
{
	char *text;
	size_t len;
	int r;

	*out = NULL;
	if ((r = read_file(file, &text, &len, err)) != JP_OK)
		return r;
	r = jp_manifest_load_mem(file, text, len, out, err);
	free(text);
	return r;
}

int
jp_manifest_load_mem(const char *file, const char *text, size_t text_len,
                     struct jp_manifest **out, struct jp_error *err)
{
	struct jp_manifest *m = NULL;
	struct fy_diag *diag = NULL;
	struct fy_document *doc = NULL;
	struct fy_diag_cfg dc;
	struct fy_parse_cfg pc;
	struct fy_node *root;
	struct fy_node_pair *p;
	struct loader L;
	void *it = NULL;
	char k[64];
	size_t bad;
	int r = JP_OK;

	*out = NULL;
	if (text_len > JP_MANIFEST_MAX)
		return jp_error_set(err, JP_E_DATA, "%s: larger than %d MiB: a manifest is a small text "
		                    "file", file, JP_MANIFEST_MAX >> 20);
	if ((bad = utf8_bad_offset((const unsigned char *)text, text_len)) < text_len)
		return bad_byte(file, (const unsigned char *)text, bad, err);
	m = calloc(1, sizeof(*m));
	if (m == NULL || (m->file = strdup(file)) == NULL) {
		r = jp_error_set(err, JP_E_SOFTWARE, "manifest: out of memory");
		goto out;
	}
	L.m = m;
	L.err = err;
	fy_diag_cfg_default(&dc);
	dc.fp = NULL;
	dc.output_fn = diag_discard;
	dc.colorize = false;
	if ((diag = fy_diag_create(&dc)) == NULL) {
		r = jp_error_set(err, JP_E_SOFTWARE, "manifest: out of memory");
		goto out;
	}
	fy_diag_set_collect_errors(diag, true);
	memset(&pc, 0, sizeof(pc));
	pc.flags = FYPCF_QUIET | FYPCF_COLLECT_DIAG | FYPCF_RESOLVE_DOCUMENT;
	pc.diag = diag;
	/* The document points into text, which outlives it. */
	doc = fy_document_build_from_string(&pc, text, text_len);
	if (doc == NULL) {
		struct fy_diag_error *e;
		void *dit = NULL;

		/* No error collected: the file holds no document at all (empty or only comments). */
		if ((e = fy_diag_errors_iterate(diag, &dit)) == NULL)
			r = jp_manifest_error(m, NULL, err, "empty manifest");
		else
			r = parse_error(m, diag, err);
		goto out;
	}
	root = fy_document_root(doc);
	if (root == NULL || fy_node_get_type(root) != FYNT_MAPPING) {
		/* A file with only comments parses to a scalar or nothing. */
		if (root != NULL && fy_node_get_type(root) == FYNT_SCALAR) {
			size_t len;
			fy_node_get_scalar(root, &len);
			if (len == 0)
				root = NULL;
		}
		r = root ? lerr(&L, root, "the manifest must be a mapping (destination, catalog, "
		                          "outputs)%s%s", "", "")
		         : jp_manifest_error(m, NULL, err, "empty manifest");
		goto out;
	}
	while ((p = fy_node_mapping_iterate(root, &it)) != NULL) {
		struct fy_node *kn = fy_node_pair_key(p), *v = fy_node_pair_value(p);
		const char *name = key_of(p, k, sizeof(k));

		if (v == NULL) {
			r = lerr(&L, kn, "%s: empty value%s", name ? name : "?", "");
		} else if (name != NULL && strcmp(name, "destination") == 0) {
			r = get_str(&L, kn, v, "destination", &m->destination);
		} else if (name != NULL && strcmp(name, "catalog") == 0) {
			r = load_catalog(&L, kn, v);
		} else if (name != NULL && strcmp(name, "outputs") == 0) {
			r = load_outputs(&L, kn, v);
		} else if (name != NULL && jp_options_of(name) != NULL) {
			r = load_backend(&L, name, v);
		} else {
			char backends[128];

			jp_options_backend_names(backends, sizeof(backends));
			r = node_error(&L, kn, "unknown key '%s' (expected destination, catalog, outputs%s%s)",
			               name ? name : "?", backends[0] ? ", " : "", backends);
		}
		if (r != JP_OK)
			goto out;
	}
	if (m->outputs == NULL) {
		r = jp_manifest_error(m, NULL, err, "no outputs: add an 'outputs:' list");
		goto out;
	}
	m->external = m->table.s != NULL && strcmp(m->table.s, "jobs") != 0;
	if (set_default(&m->table, "jobs") || set_default(&m->id_column, "id") ||
	    set_default(&m->status_column, "status") ||
	    set_default(&m->published_status, "published")) {
		r = jp_error_set(err, JP_E_SOFTWARE, "manifest: out of memory");
		goto out;
	}
	*out = m;
	m = NULL;
out:
	fy_document_destroy(doc);
	if (diag != NULL)
		fy_diag_destroy(diag);
	jp_manifest_free(m);
	return r;
}

static void
str_free(struct jp_str *s)
{
	free(s->s);
}

void
jp_manifest_free(struct jp_manifest *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->n_outputs; i++) {
		struct jp_output *o = &m->outputs[i];
		str_free(&o->name);
		str_free(&o->path);
		str_free(&o->glob);
		str_free(&o->to);
		str_free(&o->column);
		str_free(&o->archive);
		str_free(&o->check);
		for (size_t j = 0; j < o->n_attributes; j++)
			free(o->attributes[j]);
		free(o->attributes);
	}
	free(m->outputs);
	str_free(&m->destination);
	str_free(&m->table);
	str_free(&m->id_column);
	str_free(&m->status_column);
	str_free(&m->published_status);
	jp_options_free(&m->options);
	free(m->file);
	free(m);
}

/* Expands one template in check mode; errors point at the offending '$'. */
static int
check_one(const struct jp_manifest *m, const struct jp_str *s, const struct jp_vars *v,
          struct jp_error *err)
{
	char why[512];
	size_t off = 0;
	char *x;

	if (s->s == NULL)
		return JP_OK;
	x = jp_template_expand(s->s, v, why, sizeof(why), &off);
	if (x == NULL && errno == ENOMEM)
		return jp_error_set(err, JP_E_SOFTWARE, "manifest: out of memory");
	if (x == NULL) {
		struct jp_str at = {NULL, s->line, s->col + (int)off};
		return jp_manifest_error(m, &at, err, "%s", why);
	}
	free(x);
	return JP_OK;
}

/* A remote name that escapes the destination whatever the job (`to: ../x`, `to: /x`) is a
 * manifest error, reported before anything else happens. */
static int
check_key_shape(const struct jp_manifest *m, const struct jp_output *o, const struct jp_vars *v,
                struct jp_error *err)
{
	char why[512];
	size_t off = 0;
	char *key = jp_template_expand(o->to.s, v, why, sizeof(why), &off);
	int r = JP_OK;

	/* The template itself passed check_one: failing now, it ran out of memory. */
	if (key == NULL && errno == ENOMEM)
		return jp_error_set(err, JP_E_SOFTWARE, "manifest: out of memory");
	if (key != NULL && jp_key_check(key, why, sizeof(why)) != 0)
		r = jp_manifest_error(m, &o->to, err, "output %s: %s", o->name.s, why);
	free(key);
	return r;
}

int
jp_manifest_check_job(const struct jp_manifest *m, const char *job, const struct jp_kv *sets,
                      size_t n_sets, const struct jp_row *row, const char *dest_override,
                      struct jp_error *err)
{
	struct jp_vars v = {job ? job : "0", NULL, NULL, sets, n_sets, row, row == NULL};
	size_t i;
	int r;

	if (dest_override == NULL && (r = check_one(m, &m->destination, &v, err)) != JP_OK)
		return r;
	/* A password in a destination, written or produced by a variable, is refused before it
	 * can be recorded anywhere. */
	{
		const char *d = dest_override ? dest_override : m->destination.s;
		char why[512], *x;
		size_t off;
		int bad;

		x = d ? jp_template_expand(d, &v, why, sizeof(why), &off) : NULL;
		if (d != NULL && x == NULL && errno == ENOMEM)
			return jp_error_set(err, JP_E_SOFTWARE, "manifest: out of memory");
		bad = (d != NULL && jp_url_has_password(d)) || (x != NULL && jp_url_has_password(x));
		free(x);
		if (bad && dest_override == NULL)
			return jp_manifest_error(m, &m->destination, err,
			                         "destination: a password in the URL is refused (it would "
			                         "be stored and logged); use a key");
		if (bad)
			return jp_error_set(err, JP_E_CONFIG,
			                    "--dest: a password in the URL is refused (it would be stored "
			                    "and logged); use a key");
	}
	if (dest_override != NULL) {
		/* --dest is a template too: an unknown variable in it is a usage error, found now. */
		char why[512];
		size_t off;
		char *x = jp_template_expand(dest_override, &v, why, sizeof(why), &off);

		if (x == NULL && errno == ENOMEM)
			return jp_error_set(err, JP_E_SOFTWARE, "manifest: out of memory");
		if (x == NULL)
			return jp_error_set(err, JP_E_USAGE, "--dest %s: %s", dest_override, why);
		free(x);
	}
	for (i = 0; i < m->n_outputs; i++) {
		const struct jp_output *o = &m->outputs[i];

		v.name = o->name.s;
		v.basename = NULL;
		if ((r = check_one(m, &o->path, &v, err)) != JP_OK ||
		    (r = check_one(m, &o->glob, &v, err)) != JP_OK)
			return r;
		v.basename = "basename";
		if ((r = check_one(m, &o->to, &v, err)) != JP_OK ||
		    (r = check_key_shape(m, o, &v, err)) != JP_OK)
			return r;
	}
	return JP_OK;
}

int
jp_manifest_check_vars(const struct jp_manifest *m, const char *job, const struct jp_kv *sets,
                       size_t n_sets, struct jp_error *err)
{
	return jp_manifest_check_job(m, job, sets, n_sets, NULL, NULL, err);
}

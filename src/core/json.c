/*
 * json.c - a minimal streaming JSON writer.
 */
#include "config.h"

#include <inttypes.h>

#include "json.h"

void
jp_json_init(struct jp_json *j, FILE *fp)
{
	j->fp = fp;
	j->depth = 0;
	j->count[0] = 0;
}

void
jp_json_quote(FILE *fp, const char *s)
{
	const unsigned char *p;

	putc('"', fp);
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		switch (*p) {
		case '"': fputs("\\\"", fp); break;
		case '\\': fputs("\\\\", fp); break;
		case '\n': fputs("\\n", fp); break;
		case '\r': fputs("\\r", fp); break;
		case '\t': fputs("\\t", fp); break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fprintf(fp, "\\u%04x", *p);
			else
				putc(*p, fp);
		}
	}
	putc('"', fp);
}

/* Comma and key before a new member of the current level. */
static void
member(struct jp_json *j, const char *key)
{
	int d = j->depth < JP_JSON_DEPTH ? j->depth : JP_JSON_DEPTH - 1;

	if (j->count[d]++ > 0)
		putc(',', j->fp);
	if (key != NULL) {
		jp_json_quote(j->fp, key);
		putc(':', j->fp);
	}
}

static void
open_level(struct jp_json *j, const char *key, char c)
{
	member(j, key);
	putc(c, j->fp);
	/* Deeper than JP_JSON_DEPTH the comma state is shared with the last level, and depth keeps
	 * counting so closes stay balanced. */
	j->depth++;
	if (j->depth < JP_JSON_DEPTH)
		j->count[j->depth] = 0;
}

void
jp_json_object(struct jp_json *j, const char *key)
{
	open_level(j, key, '{');
}

void
jp_json_array(struct jp_json *j, const char *key)
{
	open_level(j, key, '[');
}

void
jp_json_end(struct jp_json *j, char close)
{
	putc(close, j->fp);
	if (j->depth > 0)
		j->depth--;
}

void
jp_json_str(struct jp_json *j, const char *key, const char *val)
{
	member(j, key);
	if (val == NULL)
		fputs("null", j->fp);
	else
		jp_json_quote(j->fp, val);
}

void
jp_json_int(struct jp_json *j, const char *key, int64_t val)
{
	member(j, key);
	fprintf(j->fp, "%" PRId64, val);
}

void
jp_json_null(struct jp_json *j, const char *key)
{
	member(j, key);
	fputs("null", j->fp);
}

/*
 * json.h - a minimal streaming JSON writer for `--json` output and `--log-format json`.
 *
 * It writes straight to a FILE and keeps only the comma state of each open level, so output of
 * any size costs no memory.  Keys are NULL inside arrays and at the top level.
 */
#ifndef JP_JSON_H
#define JP_JSON_H

#include <stdint.h>
#include <stdio.h>

#define JP_JSON_DEPTH 16

struct jp_json {
	FILE *fp;
	int depth;
	int count[JP_JSON_DEPTH]; /* members written at each level, for commas */
};

void jp_json_init(struct jp_json *j, FILE *fp);
void jp_json_object(struct jp_json *j, const char *key); /* opens { */
void jp_json_array(struct jp_json *j, const char *key);  /* opens [ */
void jp_json_end(struct jp_json *j, char close);         /* writes } or ] */
void jp_json_str(struct jp_json *j, const char *key, const char *val); /* NULL -> null */
void jp_json_int(struct jp_json *j, const char *key, int64_t val);
void jp_json_null(struct jp_json *j, const char *key);

/* Writes s as a quoted, escaped JSON string (control characters as \u00XX; invalid UTF-8 is
 * passed through byte by byte, file names being whatever the job wrote). */
void jp_json_quote(FILE *fp, const char *s);

#endif

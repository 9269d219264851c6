/*
 * dest.h - destinations as the publish core sees them: stage, commit, abort, stat, remove.
 *
 * A destination is a URL (file:///archive/pdr, or a plain absolute path) opened once per
 * publish.  Objects in it are named by keys: relative names below the destination's prefix
 * ("pdrgrid/TEXTOUTjob1"), checked by jp_key_check() so none escapes the prefix.
 *
 * A staged upload is written under a temporary name that carries the attempt's token
 * (JP_TMP_PREFIX + token + "." + base name, beside the final name), so what a killed publisher
 * left can be found and told apart from real files.  Nothing is ever written under a final name except by commit.
 */
#ifndef JP_DEST_H
#define JP_DEST_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "error.h"

#define JP_TMP_PREFIX ".jobpub-"
/* An --overwrite that cannot replace in one step (SFTP v3) moves the original aside as
 * JP_TMP_DISPLACED + token + "." + base name until its own file is in: if the publisher dies
 * between the two renames, that is the only copy.  Whoever reads the directory (through
 * file:// as well as sftp://) must keep it. */
#define JP_TMP_DISPLACED JP_TMP_PREFIX "old-"

/* What a base name is by the naming above. */
enum jp_name_kind {
	JP_NAME_OTHER,     /* not one of jobpub's temporary names */
	JP_NAME_STAGED,    /* JP_TMP_PREFIX + 16 hex digits (the token, copied to tok) + ... */
	JP_NAME_DISPLACED, /* JP_TMP_DISPLACED + ...: an original moved aside */
};
enum jp_name_kind jp_tmp_name_kind(const char *base, char tok[17]);

struct jp_dest;
struct jp_upload;

struct jp_options;

struct jp_dest_opts {
	int overwrite;           /* commit may replace an existing object */
	int readonly;            /* inspecting only (verify, gc): create nothing, not even the prefix */
	/* network destinations; ignored by the others */
	int timeout_ms;          /* connect and per-operation limit */
	int stall_ms;            /* a transfer that moves nothing for this long fails */
	int retries;             /* tries again after a transient failure of one request, where the
	                            backend retries requests itself (0: 3; < 0: none) */
	/* The backends' own options (options.h: "BACKEND.KEY" = value), checked
	 * where they were given; read by open and check only.  NULL: none given. */
	const struct jp_options *options;
};

/* What stat tells about an object. */
struct jp_stat {
	int exists;
	int is_dir;
	uint64_t size;
	time_t mtime;
	char etag[96];       /* the store's ETag (quoted, as the store sends it) or "" */
	const char *upload;  /* list only: an incomplete upload (the store's upload ID), not an object;
	                        valid during the callback */
};

/* Opens url.  Errors: 78 unknown scheme or malformed URL; the backend's own otherwise. */
/* Every call below that takes a destination accepts NULL (a lane whose connection never
 * opened, met by a rollback): jp_dest_sync does nothing, jp_dest_key_url returns NULL, the
 * others fail with 70 "destination not open".  Never a crash. */
int jp_dest_open(const char *url, const struct jp_dest_opts *opts, struct jp_dest **out,
                 struct jp_error *err);
void jp_dest_close(struct jp_dest *d); /* d may be NULL */

/* The backend's name ("posix") and the destination URL as opened (no secrets in it). */
const char *jp_dest_backend(const struct jp_dest *d);
const char *jp_dest_url(const struct jp_dest *d);

/* The remote URL of key: destination URL + "/" + key, with the characters a URL parser would
 * misread (space, '%', '?', '#', non-ASCII, ...) percent-encoded; a destination given as a
 * plain absolute path gives a plain path, unencoded.  malloc'd; NULL when out of
 * memory.  jp_url_join does the same for a destination URL that is not open. */
char *jp_dest_key_url(const struct jp_dest *d, const char *key);
char *jp_url_join(const char *base, const char *key);

/* 1 when url carries a password (scheme://user:secret@host/...), which is always refused: it
 * would be stored in the catalogue and shown in logs and plans. */
int jp_url_has_password(const char *url);

/* Checks that url names a known backend, has no password and is well formed for its backend
 * (the backend's check slot), without opening it or connecting anywhere (dry runs, and a
 * publish before it records anything).  78 with the reason when not. */
int jp_dest_check_url(const char *url, struct jp_error *err);
/* jp_dest_check_url, then the local settings the open would read with opts (a key file that
 * cannot be read, credentials that are nowhere, a malformed endpoint: 78), still without
 * connecting. */
int jp_dest_check_settings(const char *url, const struct jp_dest_opts *opts,
                           struct jp_error *err);

/* 0 when key is a safe relative name (no leading '/', no "." or ".." component, no empty
 * component, no control character, at most 4096 bytes); else -1 with the reason in why. */
int jp_key_check(const char *key, char *why, size_t whylen);

/* Starts a staged upload of key under a temporary name carrying token.  Creates parent
 * directories where the store has them. */
int jp_dest_stage(struct jp_dest *d, const char *key, const char *token, uint64_t size_hint,
                  struct jp_upload **out, struct jp_error *err);
int jp_upload_write(struct jp_upload *u, const void *buf, size_t len, struct jp_error *err);
/* Makes the staged data durable and checks it: size must equal what was written and `size`. */
int jp_upload_finish(struct jp_upload *u, uint64_t size, const unsigned char sha256[32],
                     struct jp_error *err);
/*
 * Moves the staged data to its final name.  When the final name exists and overwrite is off,
 * nothing changes, *exists is set to 1 and JP_OK is returned: the caller decides (identical
 * content = published, different = conflict).  *replaced is set when an existing object was
 * replaced.
 */
int jp_upload_commit(struct jp_upload *u, int overwrite, int *exists, int *replaced,
                     struct jp_error *err);
/* Deletes the staged data (not a committed object).  Safe to call in any state. */
int jp_upload_abort(struct jp_upload *u, struct jp_error *err);
/* Undoes a commit: removes the committed object, unless the store can tell it is no longer
 * this upload's (another writer's object since, on a store that keeps ETags: it is kept, with
 * a warning).  Clears the committed state on JP_OK.  Safe to call in any state (JP_OK when nothing was committed). */
int jp_upload_uncommit(struct jp_upload *u, struct jp_error *err);
void jp_upload_free(struct jp_upload *u); /* aborts first if still staged; u may be NULL */
const char *jp_upload_key(const struct jp_upload *u);
/* The committed object's ETag, "" where the store has none. */
const char *jp_upload_etag(const struct jp_upload *u);
/* 1 when the final name holds the upload's data, even if the commit then reported an error. */
int jp_upload_committed(const struct jp_upload *u);
/* The destination (connection) the upload was staged on. */
struct jp_dest *jp_upload_dest(const struct jp_upload *u);

int jp_dest_stat(struct jp_dest *d, const char *key, struct jp_stat *st, struct jp_error *err);
int jp_dest_remove(struct jp_dest *d, const char *key, struct jp_error *err);
/* SHA-256 of an existing object: the store's own record where it keeps one, else read back
 * and hashed.  JP_FAILED with "not supported" when neither is possible. */
int jp_dest_digest(struct jp_dest *d, const char *key, unsigned char sha256[32],
                   struct jp_error *err);
/* SHA-256 of an object read back in full, whatever the store's metadata says (verify --deep).
 * "not supported" where the backend cannot read. */
int jp_dest_hash(struct jp_dest *d, const char *key, unsigned char sha256[32],
                 struct jp_error *err);
/* Drops an incomplete upload that jp_dest_list reported (st->upload). */
int jp_dest_abort_upload(struct jp_dest *d, const char *key, const char *upload,
                         struct jp_error *err);
/* A read-back (jp_dest_digest) asks stop() between chunks and ends with 75 when it says so
 * (a publish passes its signal flag).  stop may be NULL. */
void jp_dest_set_stop(int (*stop)(void));

/* From another thread, after a signal: makes the network waits d is blocked in end now (its
 * connection is broken; a later call may reconnect).  d may be NULL; no-op where every wait
 * already stops on the stop hook. */
void jp_dest_cancel(struct jp_dest *d);
/* 1 when jp_dest_cancel does something for d (a backend with waits of its own to cut). */
int jp_dest_can_cancel(const struct jp_dest *d);

/* Makes committed names durable (directory fsync on POSIX).  No-op where not needed. */
int jp_dest_sync(struct jp_dest *d, struct jp_error *err);

/* Calls fn for every object below prefix ("" for all), recursively, temporary names included.
 * fn returns 0 to go on, non-zero to stop.  "not supported" where the store cannot list. */
typedef int (*jp_list_fn)(void *arg, const char *key, const struct jp_stat *st);
int jp_dest_list(struct jp_dest *d, const char *prefix, jp_list_fn fn, void *arg,
                 struct jp_error *err);

/* Destinations opened once and kept, for what visits many files in few places (verify, gc).
 * An open that failed is remembered too: its reason is given again for each later file. */
struct jp_dest_cache {
	size_t n;
	char **urls;
	struct jp_dest **dests; /* NULL where the open failed */
	char **errors;          /* the open's error message */
	int *codes;
};
/* The open destination for url (opened with o on first use), or NULL with the remembered
 * reason on err.  c starts zeroed. */
struct jp_dest *jp_dest_cache_get(struct jp_dest_cache *c, const char *url,
                                  const struct jp_dest_opts *o, struct jp_error *err);
/* Closes every destination; c is zeroed again. */
void jp_dest_cache_free(struct jp_dest_cache *c);

#endif

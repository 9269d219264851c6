/*
 * backend.h - the contract between the publish core and a storage backend.  Only dest.c,
 * options.c and the backend-*.c files include this.
 *
 * Each backend is one file exporting one `const struct jp_backend` with designated
 * initializers, listed once in the registry (dest.c: jp_backends[]).  Adding a backend is its
 * file, its line in the registry and its tests.  Its private structs embed struct jp_dest / struct jp_upload as their FIRST
 * member, so the core's pointers can be cast to the backend's.  Every slot returns a severity
 * (error.h) and leaves the reason, prefixed with the backend's name ("posix: "), on err:
 *   JP_RETRY   transient (class 75): the same call may succeed later on the same handle;
 *   JP_FAILED  this call failed (a refusal, a missing object); the handle is still usable;
 *   JP_FATAL   the connection died (SFTP session lost, S3 connection unusable; class 75): the
 *              handle is unusable as it is.  The caller gives up (closes it) or retries, and the
 *              backend's next stage/open reconnects before new work (SFTP: `broken`; curl
 *              reconnects S3 connections itself, so S3 reports a lost one as JP_RETRY).
 * The core decides retries on JP_RETRY (and JP_FATAL of class 75), never on the class alone.
 *
 * Slots marked OPTIONAL may be NULL; dest.c turns a NULL slot into "not supported" or a
 * fallback, so callers never test them.
 */
#ifndef JP_BACKEND_H
#define JP_BACKEND_H

#include "dest.h"
#include "options.h"

/* Fields every destination has; set by dest.c after the backend's open returns. */
struct jp_dest {
	const struct jp_backend *be;
	char *url; /* as given, without secrets; no trailing '/' */
};

/* Fields every upload has; set by the backend's stage. */
struct jp_upload {
	struct jp_dest *dest;
	char *key;      /* final key (malloc'd, freed by dest.c) */
	int staged;     /* temporary data exists and must be aborted or committed */
	int committed;  /* the final name holds this upload's data */
	uint64_t written;
	char etag[96];  /* the committed object's ETag where the store has one, else "" */
};

/* Callback for streaming an object's bytes (read slot). Returns 0 to go on. */
typedef int (*jp_read_fn)(void *arg, const void *buf, size_t len);

struct jp_backend {
	const char *name;            /* "posix"; prefixes error messages */
	const char *const *schemes;  /* URL schemes handled, NULL-terminated ("file") */

	/* Opens the destination named by url (scheme already matched).  Must check the prefix is
	 * usable: exists or can be created, is a directory where that applies.  Allocates the
	 * backend's struct (embedding struct jp_dest first) into *out. */
	int (*open)(const char *url, const struct jp_dest_opts *opts, struct jp_dest **out,
	            struct jp_error *err);
	/* Releases everything; d is never NULL. */
	void (*close)(struct jp_dest *d);

	/* Creates a temporary object for key (named with token) and returns the backend's upload
	 * struct (embedding struct jp_upload first) with staged = 1.  size_hint is the size the
	 * core expects to write (UINT64_MAX: unknown, an archive); only a hint. */
	int (*stage)(struct jp_dest *d, const char *key, const char *token, uint64_t size_hint,
	             struct jp_upload **out, struct jp_error *err);
	/* Appends len bytes.  Must consume all of buf or fail. */
	int (*write)(struct jp_upload *u, const void *buf, size_t len, struct jp_error *err);
	/* Durable and verified: after JP_OK the staged data survives a crash and its size on the
	 * store equals `size`.  sha256 is the whole content's hash, for stores that keep it. */
	int (*finish)(struct jp_upload *u, uint64_t size, const unsigned char sha256[32],
	              struct jp_error *err);
	/* Final name := staged data.  Without overwrite, an existing final name is left alone and
	 * reported through *exists (JP_OK).  Sets committed, clears staged on success. */
	int (*commit)(struct jp_upload *u, int overwrite, int *exists, int *replaced,
	              struct jp_error *err);
	/* Removes the staged data; clears staged.  Called only when staged is set. */
	int (*abort)(struct jp_upload *u, struct jp_error *err);
	/* Frees the backend's part of u (dest.c frees key and the rest). */
	void (*upload_free)(struct jp_upload *u);

	/* Object metadata; a missing object is JP_OK with exists = 0. */
	int (*stat)(struct jp_dest *d, const char *key, struct jp_stat *st, struct jp_error *err);
	/* Deletes an object; a missing one is JP_OK. */
	int (*remove)(struct jp_dest *d, const char *key, struct jp_error *err);

	/* OPTIONAL: the store's own SHA-256 of an object (metadata).  NULL: dest.c reads the
	 * object back with `read` and hashes it. */
	int (*digest)(struct jp_dest *d, const char *key, unsigned char sha256[32],
	              struct jp_error *err);
	/* OPTIONAL: streams an object's content to fn.  NULL: no read-back (digest unsupported
	 * unless `digest` is set). */
	int (*read)(struct jp_dest *d, const char *key, jp_read_fn fn, void *arg,
	            struct jp_error *err);
	/* OPTIONAL: lists objects below prefix recursively.  NULL: "not supported". */
	int (*list)(struct jp_dest *d, const char *prefix, jp_list_fn fn, void *arg,
	            struct jp_error *err);
	/* OPTIONAL: drops an incomplete upload that list reported (st->upload).  NULL: "not
	 * supported". */
	int (*abort_upload)(struct jp_dest *d, const char *key, const char *upload,
	                    struct jp_error *err);
	/* OPTIONAL: undoes commit (a rollback): removes the final name only while it still holds
	 * this upload's object, which another writer may have replaced since.  NULL: dest.c
	 * removes the key with `remove`. */
	int (*uncommit)(struct jp_upload *u, struct jp_error *err);
	/* OPTIONAL: makes committed names durable.  NULL: nothing to do. */
	int (*sync)(struct jp_dest *d, struct jp_error *err);
	/* OPTIONAL: checks url the way open parses it (host, path, bucket) and, when opts is not
	 * NULL, the local settings open would read (key files, endpoint, CA file, credentials),
	 * touching nothing and connecting nowhere, so a configuration error is refused before
	 * anything is recorded.  78 with the reason.  NULL: only the scheme is checked. */
	int (*check)(const char *url, const struct jp_dest_opts *opts, struct jp_error *err);
	/* OPTIONAL: called from another thread after a signal, while d may be in use: ends every
	 * wait d is blocked in (or about to block in) at once, leaving its connection broken, so
	 * the calls in progress fail (75) and the publish can roll back.  Only async-safe work: no
	 * allocation, no lock that d's own calls hold.  NULL: the backend's waits stop on
	 * jp_dest_stopping() by themselves. */
	void (*cancel)(struct jp_dest *d);
	/* OPTIONAL: the options the backend accepts (options.h), terminated by a NULL name; their
	 * keys are "<name>.<option>", their values reach open and check in opts->options, already
	 * checked by type.  The manifest's "<name>:" section holds them too.  NULL: none. */
	const struct jp_option_def *options;
	/* OPTIONAL: checks a value of one of its options beyond its type (a region's characters):
	 * 0, or -1 with the reason in why, worded to follow "KEY: ".  NULL: the type says all. */
	int (*check_option)(const struct jp_option_def *def, const char *value, char *why,
	                    size_t len);
};

/* The registry: every backend, NULL-terminated, in the order help lists them.  The first one
 * also takes a destination given as a plain absolute path. */
extern const struct jp_backend *const jp_backends[];

/* 1 when the running command wants long operations to stop (a signal); backends ask it while
 * they wait on the network.  Asking also keeps a publish's lease alive. */
int jp_dest_stopping(void);

#endif

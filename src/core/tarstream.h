/*
 * tarstream.h - a directory as one deterministic tar stream (libarchive), for directory outputs.
 *
 * The archive is produced as a stream into a sink (the staged upload): no temporary tar file,
 * memory bounded whatever the tree's size.  It is deterministic, so an unchanged directory gives
 * byte-identical output and a re-publish finds it already published:
 *   - entries in sorted order (names compared bytewise within each directory, depth first),
 *   - pax format (ustar where possible, pax headers for long or non-ASCII names, big files),
 *   - owner and group 0 with no names, mtime in whole seconds, no atime/ctime,
 *   - gzip without a timestamp; zstd has none.
 * Entry names start with the base name of `label`, the directory as the job names it
 * ("Out/mcdrt_0001.dat", even when Out is a symlink), like `tar -C parent -cf - Out`.  Symlinks are stored as symlinks, never followed; sockets, FIFOs
 * and devices are skipped with a warning; a file that cannot be read fails (74, naming it).
 */
#ifndef JP_TARSTREAM_H
#define JP_TARSTREAM_H

#include <stdint.h>

#include "error.h"
#include "hashpipe.h"

enum jp_archive_format {
	JP_ARCHIVE_NONE = 0,
	JP_ARCHIVE_TAR,
	JP_ARCHIVE_TAR_GZ,
	JP_ARCHIVE_TAR_ZST,
};

/* "tar", "tar.gz", "tar.zst" -> format; JP_ARCHIVE_NONE for anything else. */
enum jp_archive_format jp_archive_format_parse(const char *s);

struct jp_archive_result {
	uint64_t size;    /* bytes of the archive */
	uint64_t entries; /* directories, files and symlinks stored */
	unsigned char sha256[32];
};

/*
 * Streams the archive of dir (a path, its last component not a link; `label` names it in
 * messages, e.g. "Out") to
 * sink (NULL: only hash and count).  When the sink returns non-zero the run stops and that
 * value's meaning is the sink's: JP_FAILED is returned and err is left as the sink set it.
 * Other errors: 74 unreadable entry or a file that changed size, 70 libarchive failure.
 */
int jp_archive_write(const char *dir, const char *label, enum jp_archive_format fmt,
                     jp_sink_fn sink, void *arg, struct jp_archive_result *res,
                     struct jp_error *err);

/* The same for the directory open (O_RDONLY | O_DIRECTORY) on dirfd, which is walked by
 * descriptors only (never by a path, so no symlink swapped in is followed; dirfd stays open),
 * hashing on pipe's thread (push mode, hashpipe.h) while the archive is written: SHA-256 then
 * costs no time on the archiving thread.  pipe may be NULL (hash inline). */
int jp_archive_write_piped(int dirfd, const char *label, enum jp_archive_format fmt,
                           jp_sink_fn sink, void *arg, struct jp_hashpipe *pipe,
                           struct jp_archive_result *res, struct jp_error *err);

#endif

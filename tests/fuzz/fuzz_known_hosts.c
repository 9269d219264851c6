/*
 * fuzz_known_hosts.c - fuzz target: a known_hosts file read the way src/backends/backend-sftp.c's
 * read_known_hosts reads it (line by line with fgets into an 8 KiB buffer, comments and blank
 * lines skipped, every other line given to libssh2_knownhost_readline, lines libssh2 refuses
 * passed over), then the host's key checked against it as the connection does
 * (libssh2_knownhost_checkp for the host and for [host]:port), then the host's key added and
 * written as a line as accept-new does (libssh2_knownhost_addc, libssh2_knownhost_writeline).
 *
 * Input: the known_hosts file.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libssh2.h>

#include "fuzz.h"

/* An ed25519 public key blob (type string + 32 bytes): what a server would present. */
static const unsigned char key[] = {
	0, 0, 0, 11, 's', 's', 'h', '-', 'e', 'd', '2', '5', '5', '1', '9', 0, 0, 0, 32,
	0x1f, 0x2e, 0x3d, 0x4c, 0x5b, 0x6a, 0x79, 0x88, 0x97, 0xa6, 0xb5, 0xc4, 0xd3, 0xe2, 0xf1, 0x00,
	0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78, 0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0,
};

static LIBSSH2_SESSION *session;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	LIBSSH2_KNOWNHOSTS *kh;
	struct libssh2_knownhost *found = NULL, *prev = NULL, *node;
	const char *path = fz_write("known_hosts", data, size);
	char line[8192];
	FILE *fp;
	int mask = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW |
	           LIBSSH2_KNOWNHOST_KEY_ED25519;

	if (session == NULL) {
		if (libssh2_init(0) != 0 || (session = libssh2_session_init()) == NULL)
			abort();
	}
	if ((kh = libssh2_knownhost_init(session)) == NULL)
		abort();
	if ((fp = fopen(path, "r")) == NULL)
		abort();
	while (fgets(line, sizeof(line), fp) != NULL) {
		size_t n = strlen(line);
		if (n == 0 || line[0] == '#' || line[0] == '\n')
			continue;
		libssh2_knownhost_readline(kh, line, n, LIBSSH2_KNOWNHOST_FILE_OPENSSH);
	}
	fclose(fp);
	libssh2_knownhost_checkp(kh, "archive.example.org", 22, (const char *)key, sizeof(key), mask,
	                         &found);
	libssh2_knownhost_checkp(kh, "127.0.0.1", 2222, (const char *)key, sizeof(key), mask, &found);
	/* accept-new (add_known_host): the host's entry is added and written as a line.  Only that
	 * entry is written: libssh2 1.10 reads past the end of a heap buffer when it writes back an
	 * entry read with an empty salt ("|1|| ..."), which jobpub never does. */
	if (libssh2_knownhost_addc(kh, "[127.0.0.1]:2222", NULL, (const char *)key, sizeof(key),
	                           NULL, 0, mask, &node) == 0) {
		size_t outlen;
		libssh2_knownhost_writeline(kh, node, line, sizeof(line), &outlen,
		                            LIBSSH2_KNOWNHOST_FILE_OPENSSH);
	}
	/* Every entry is visited, as a lookup does. */
	while (libssh2_knownhost_get(kh, &node, prev) == 0)
		prev = node;
	libssh2_knownhost_free(kh);
	return 0;
}

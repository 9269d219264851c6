/*
 * fuzz_sshconfig.c - fuzz target: ~/.ssh/config as src/backends/sshconfig.c reads it for a host (Host
 * patterns with * ? and !, "Keyword value" and "Keyword=value", the first value wins) and the
 * ~ %d %h %u %% expansion of file names.
 *
 * Input: "HOST\nCONFIG" (the host an sftp:// URL names, then the file).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "sshconfig.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *rest = data;
	size_t left = size, len;
	char *host = fz_cut(&rest, &left, "\n", &len), *s;
	struct jp_sshconf c;
	const char *path;

	if (strlen(host) != len || len > 1024)
		goto out; /* a host name from a URL: a C string */
	path = fz_write("config", rest, left);
	memset(&c, 0, sizeof(c));
	if (jp_sshconf_read(path, host, &c) == 0) {
		if (c.port < 0 || c.port > 65535)
			abort(); /* a port, or 0 when not given */
		jp_sshconf_free(&c);
	}
	if ((s = jp_ssh_expand(host, host)) != NULL)
		free(s);
out:
	free(host);
	return 0;
}

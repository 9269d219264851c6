/*
 * fuzz_dest.c - fuzz target: destination URLs and remote names, as --dest, $JOBPUB_DEST and a
 * manifest's destination reach them: the scheme and password checks (src/core/dest.c), joining a
 * key to the URL, the key check, opening a file:// or plain-path destination read-only (the
 * POSIX backend's URL parsing; nothing is created), and the S3 pieces that parse what a URL or
 * the environment gives (endpoint, bucket, request URL).
 *
 * Input: "URL\nKEY" (KEY optional).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dest.h"
#include "fuzz.h"
#include "s3.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *rest = data;
	size_t left = size, len;
	char *url = fz_cut(&rest, &left, "\n", &len), *key = fz_strndup(rest, left);
	struct jp_s3_endpoint ep;
	struct jp_error err;
	char why[512], *s;

	if (strlen(url) != len || len > 8192)
		goto out; /* C strings from argv or the environment: no NUL inside */
	jp_error_clear(&err);
	if (jp_dest_check_url(url, &err) != JP_OK && (err.code == JP_E_NONE || err.msg[0] == '\0'))
		abort();
	jp_url_has_password(url);
	if ((s = jp_url_join(url, key)) != NULL)
		free(s);
	jp_key_check(key, why, sizeof(why));
	jp_key_check(url, why, sizeof(why));
	/* Read-only POSIX opens of file:// URLs and absolute paths: the URL is parsed and the
	 * path resolved (realpath), nothing is created.  Network schemes would connect. */
	if ((strncmp(url, "file://", 7) == 0 || url[0] == '/') && jp_url_has_password(url) == 0) {
		struct jp_dest_opts o = {0};
		struct jp_dest *d = NULL;

		o.readonly = 1;
		jp_error_clear(&err);
		if (jp_dest_open(url, &o, &d, &err) == JP_OK) {
			if ((s = jp_dest_key_url(d, key)) != NULL)
				free(s);
			jp_dest_url(d);
			jp_dest_close(d);
		}
	}
	memset(&ep, 0, sizeof(ep));
	jp_error_clear(&err);
	if (jp_s3_endpoint_parse(url, &ep, &err) == JP_OK) {
		if (jp_s3_bucket_ok(key))
			jp_s3_path_style_default(&ep, key);
		if ((s = jp_s3_url(&ep, jp_s3_bucket_ok(key) ? key : "bucket", 1, key, "a=b")) != NULL)
			free(s);
		if ((s = jp_s3_url(&ep, "bucket", 0, key, NULL)) != NULL)
			free(s);
	}
	jp_s3_endpoint_free(&ep);
	if ((s = jp_s3_encode(url, 1)) != NULL)
		free(s);
out:
	free(url);
	free(key);
	return 0;
}

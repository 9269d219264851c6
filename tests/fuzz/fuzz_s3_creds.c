/*
 * fuzz_s3_creds.c - fuzz target: the AWS shared credentials and config files as src/backends/s3.c reads
 * them for a profile (INI sections, "key = value", comments, any line length), with the
 * environment's keys unset so the files are what is read.
 *
 * Input: "PROFILE\nCREDENTIALS-FILE\n#%%config\nCONFIG-FILE".
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "s3.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *rest = data;
	size_t left = size, len, clen;
	char *profile = fz_cut(&rest, &left, "\n", &len), *creds, *conf;
	static char home[4096];
	struct jp_s3_creds c;
	struct jp_error err;
	char dir[4096 + 8];

	creds = fz_cut(&rest, &left, "\n#%%config\n", &clen);
	conf = fz_strndup(rest, left);
	if (home[0] == '\0') {
		unsetenv("AWS_ACCESS_KEY_ID");
		unsetenv("AWS_SECRET_ACCESS_KEY");
		unsetenv("AWS_SESSION_TOKEN");
		unsetenv("AWS_SHARED_CREDENTIALS_FILE");
		unsetenv("AWS_CONFIG_FILE");
		unsetenv("AWS_DEFAULT_PROFILE");
		snprintf(home, sizeof(home), "%s", fz_dir());
		snprintf(dir, sizeof(dir), "%s/.aws", home);
		mkdir(dir, 0700);
	}
	if (strlen(profile) == len && len < 256) {
		if (len > 0)
			setenv("AWS_PROFILE", profile, 1);
		else
			unsetenv("AWS_PROFILE");
		fz_write(".aws/credentials", creds, clen);
		fz_write(".aws/config", conf, left);
		jp_error_clear(&err);
		if (jp_s3_creds_find(&c, home, &err) == JP_OK) {
			if (c.access_key == NULL || c.secret_key == NULL || c.source == NULL)
				abort();
			jp_s3_creds_free(&c);
		} else if (err.code != JP_E_CONFIG || c.access_key != NULL) {
			abort();
		}
	}
	free(profile);
	free(creds);
	free(conf);
	return 0;
}

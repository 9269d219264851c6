/*
 * fuzz_s3.c - fuzz target: an S3 answer body parsed the way src/backends/backend-s3.c reads each kind
 * with src/backends/s3.c's XML helpers: an error (Code, Message, RequestId, then the classification of
 * the code with several HTTP statuses), InitiateMultipartUpload (UploadId),
 * CompleteMultipartUploadResult (ETag), ListObjectsV2 (Contents: Key, Size, LastModified, ETag;
 * IsTruncated, NextContinuationToken) and ListMultipartUploads (Upload: Key, UploadId,
 * Initiated; IsTruncated, NextKeyMarker, NextUploadIdMarker).
 *
 * Input: the body.  It is copied to a buffer of exactly its size, as curl hands it over, so a
 * read past its end is caught.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "s3.h"

/* Every text of tag in [p, end), as a list loop reads them; the texts are checked to be shorter
 * than the element they came from (entities only shrink). */
static void
texts(const char *p, const char *end, const char *tag)
{
	char *t = NULL;

	if (jp_s3_xml_text(p, end, tag, &t) != 0)
		abort();
	if (t != NULL && strlen(t) > (size_t)(end - p))
		abort();
	free(t);
}

/* A listing: for each <entry>, the fields; then the root's truncation fields. */
static void
listing(const char *body, const char *end, const char *entry, const char *const *fields,
        const char *const *root_fields)
{
	const char *pos = body, *in, *in_end, *last = NULL;
	size_t i, n = 0;

	while (jp_s3_xml_next(&pos, end, entry, &in, &in_end)) {
		if (in < body || in_end > end || in > in_end || pos > end || (last && pos <= last))
			abort(); /* the element lies inside the body and the walk moves forward */
		last = pos;
		for (i = 0; fields[i] != NULL; i++)
			texts(in, in_end, fields[i]);
		if (++n > (size_t)(end - body))
			abort();
	}
	for (i = 0; root_fields[i] != NULL; i++)
		texts(body, end, root_fields[i]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const contents[] = {"Key", "Size", "LastModified", "ETag", NULL};
	static const char *const list_root[] = {"IsTruncated", "NextContinuationToken", NULL};
	static const char *const upload[] = {"Key", "UploadId", "Initiated", NULL};
	static const char *const uploads_root[] = {"IsTruncated", "NextKeyMarker",
	                                           "NextUploadIdMarker", NULL};
	static const long statuses[] = {0, 200, 400, 403, 404, 409, 500, 503};
	char *body = malloc(size ? size : 1), *code = NULL;
	const char *end;
	size_t i;

	if (body == NULL)
		abort();
	memcpy(body, data, size);
	end = body + size;
	/* An error answer, then how it is classified. */
	if (jp_s3_xml_text(body, end, "Code", &code) != 0)
		abort();
	texts(body, end, "Message");
	texts(body, end, "RequestId");
	for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		struct jp_s3_status st = {statuses[i], code};
		int c = jp_s3_classify(&st);

		if (c != JP_E_TEMPFAIL && c != JP_E_NOPERM && c != JP_E_UNAVAILABLE &&
		    c != JP_E_CONFIG && c != JP_E_SOFTWARE && c != JP_E_DATA)
			abort();
	}
	free(code);
	texts(body, end, "UploadId");
	texts(body, end, "ETag");
	listing(body, end, "Contents", contents, list_root);
	listing(body, end, "Upload", upload, uploads_root);
	free(body);
	return 0;
}

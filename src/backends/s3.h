/*
 * s3.h - the S3 protocol pieces that need no network: request URLs and canonical query strings
 * for SigV4, key encoding, the few XML elements S3 answers with, the AWS credential chain, error
 * classification and part sizes.  backend-s3.c sends the requests; these are unit-tested alone
 * (tests/test_s3.c) so a signing detail cannot regress silently.
 */
#ifndef JP_S3_H
#define JP_S3_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define JP_S3_MIN_PART (5ULL << 20)        /* every part but the last */
#define JP_S3_MAX_PART (5ULL << 30)
#define JP_S3_MAX_PARTS 10000
#define JP_S3_DEFAULT_PART (16ULL << 20)
#define JP_S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* SigV4 URI encoding: everything but A-Z a-z 0-9 - . _ ~ as %XX (upper-case hex); '/' kept
 * when keep_slash (object keys in a path).  malloc'd; NULL when out of memory. */
char *jp_s3_encode(const char *s, int keep_slash);

/* A query parameter; value NULL is written "name=" (curl 7.88 signs the query as given, and
 * SigV4's canonical form of a bare key has the '='). */
struct jp_s3_param {
	const char *name;
	const char *value;
};

/* The canonical query string: names and values encoded, sorted by name then value, joined by
 * '&'.  "" for n == 0.  malloc'd; NULL when out of memory. */
char *jp_s3_query(const struct jp_s3_param *p, size_t n);

/* Where requests go. */
struct jp_s3_endpoint {
	char *scheme;   /* "https" or "http" */
	char *host;     /* as given: name, IPv4 or [IPv6] */
	char *port;     /* NULL: the scheme's */
	char *path;     /* a path prefix below the host, "" or "/x" without trailing '/' */
};

/* Parses an endpoint URL ("https://s3.example.org", "http://127.0.0.1:7480").  JP_E_CONFIG
 * with the reason when it is not an http(s) URL without user, query or fragment. */
int jp_s3_endpoint_parse(const char *url, struct jp_s3_endpoint *ep, struct jp_error *err);
void jp_s3_endpoint_free(struct jp_s3_endpoint *ep);

/* The default endpoint for region: https://s3.REGION.amazonaws.com (malloc'd). */
char *jp_s3_aws_endpoint(const char *region);

/* Path-style addressing by default?  Yes for any endpoint that is not AWS's, for IP addresses,
 * and for bucket names a TLS wildcard cannot cover (a '.' in them). */
int jp_s3_path_style_default(const struct jp_s3_endpoint *ep, const char *bucket);

/* The request URL for key (NULL or "": the bucket itself) with an already canonical query (NULL
 * or "": none).  Path style: ENDPOINT/bucket/key; else scheme://bucket.host/key.  malloc'd. */
char *jp_s3_url(const struct jp_s3_endpoint *ep, const char *bucket, int path_style,
                const char *key, const char *query);

/* What curl signs a request with (CURLOPT_AWS_SIGV4): "aws:amz:REGION:s3".  malloc'd; NULL
 * when out of memory. */
char *jp_s3_sigv4(const char *region);

struct curl_slist;

/* The headers every request carries, in this order: "x-amz-content-sha256: PAYLOAD_SHA" (curl
 * 7.88 signs whatever it says and hashes no body itself: without it the signature covers an
 * empty body and the server answers SignatureDoesNotMatch), "x-amz-security-token: TOKEN" when
 * token is not NULL, then extra (NULL-terminated; may be NULL).  payload_sha is the body's
 * SHA-256 in hex or "UNSIGNED-PAYLOAD".  The caller frees the list with curl_slist_free_all;
 * NULL when out of memory. */
struct curl_slist *jp_s3_headers(const char *payload_sha, const char *token,
                                 const char *const *extra);

/* 1 when bucket is a valid S3 bucket name (3-63 of a-z 0-9 . -, starting and ending with a
 * letter or digit, not an IPv4 address). */
int jp_s3_bucket_ok(const char *bucket);

/*
 * XML: the text of the first <tag>...</tag> in [p, end), entities decoded, into a malloc'd
 * string (*out, NULL when absent).  Returns 0, or -1 when out of memory.  S3's answers are
 * flat, attribute-free elements below one root; this is all of XML that is needed.
 */
int jp_s3_xml_text(const char *p, const char *end, const char *tag, char **out);
/* The next <tag>...</tag> element at or after *pos: its inner text is [*inner, *inner_end) and
 * *pos moves past it.  Returns 1 when found, 0 when not. */
int jp_s3_xml_next(const char **pos, const char *end, const char *tag, const char **inner,
                   const char **inner_end);

/* An S3 error answer. */
struct jp_s3_status {
	long http;          /* 0: no answer (connection failed) */
	const char *code;   /* S3 error code ("SlowDown"), may be NULL */
};

/* How a failed request is treated: JP_E_TEMPFAIL (retry), JP_E_NOPERM (credentials, signature,
 * access: never retried), JP_E_UNAVAILABLE (missing bucket, quota exceeded and everything else
 * permanent). */
int jp_s3_classify(const struct jp_s3_status *s);

/* Credentials, found the way AWS tools find them. */
struct jp_s3_creds {
	char *access_key;
	char *secret_key;    /* secret: never printed */
	char *session_token; /* secret; may be NULL */
	char *region;        /* from the profile's config, may be NULL */
	char *source;        /* where they came from, for messages ("environment", "FILE [p]") */
};

/*
 * Environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), then for the
 * profile $AWS_PROFILE (else "default"): $AWS_SHARED_CREDENTIALS_FILE (else
 * ~/.aws/credentials) section [profile], then $AWS_CONFIG_FILE (else ~/.aws/config) section
 * [profile NAME] ([default] for default).  The region of the profile's config section is
 * returned too, for when none is given.  None found: JP_E_CONFIG naming where it looked.
 * home may be NULL ($HOME).
 */
int jp_s3_creds_find(struct jp_s3_creds *c, const char *home, struct jp_error *err);
/* Wipes the secrets and frees. */
void jp_s3_creds_free(struct jp_s3_creds *c);

/* Part size for an object of size bytes (UINT64_MAX: unknown) when base is asked for: base,
 * doubled until JP_S3_MAX_PARTS parts hold size, within [JP_S3_MIN_PART, JP_S3_MAX_PART]. */
uint64_t jp_s3_part_size(uint64_t base, uint64_t size);
/* For a stream of unknown size: the size of part number n (1-based) when parts start at base;
 * it doubles every 1000 parts, so 10,000 parts of a 16 MiB start cover 16 TiB. */
uint64_t jp_s3_stream_part_size(uint64_t base, unsigned n);

/* The ETag S3 gives a multipart object: hex MD5 of the parts' MD5s, "-" and the part count,
 * in quotes.  out holds at least 48 bytes. */
void jp_s3_multipart_etag(const unsigned char (*md5s)[16], unsigned n, char *out, size_t len);

#endif

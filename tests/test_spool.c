/*
 * test_spool.c - src/core/spool.c: the write/read round trip (sets, nulls, escapes), the file mode
 * and atomicity, the strict reader (unknown or missing keys, wrong types, another job, relative
 * paths, broken JSON: 65 naming the file), a missing entry (66), entries not safe to trust
 * (group- or world-writable, a symlink, owned by another user: 77), remove, and the default
 * spool directory, the listing of a spool; the file system failing at each step of a write, a
 * read, a removal and a listing (this binary's definitions of the libc calls stand in for
 * libc's, see "failures" below), every field the reader refuses, and the checks that depend
 * on who runs it (a non-root caller, simulated through geteuid).
 */
#include "config.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spool.h"
#include "testlib.h"

static char *dir;
static struct jp_error err;

static void
setup(void)
{
	dir = t_tempdir();
	jp_error_clear(&err);
}

static void
teardown(void)
{
	t_rmtree(dir);
	free(dir);
}

/* Writes text as dir/<job>.json, mode 0600, as a hand-made entry. */
static void
put_entry(const char *job, const char *text)
{
	char *rel, *p;

	if (asprintf(&rel, "%s.json", job) < 0)
		ck_abort_msg("out of memory");
	t_write_str(dir, rel, text);
	p = t_path(dir, rel);
	ck_assert_int_eq(chmod(p, 0600), 0);
	free(p);
	free(rel);
}

/* A valid entry for job 42 with the caller's uid and one member replaced or added: `extra` is
 * inserted before "created" (with its comma), `fmt` lets a test swap a value. */
static char *
entry_text(const char *job, const char *manifest, const char *uid, const char *extra)
{
	char *s, *u = NULL;

	if (uid == NULL) {
		if (asprintf(&u, "%u", (unsigned)geteuid()) < 0)
			ck_abort_msg("out of memory");
		uid = u;
	}
	if (asprintf(&s, "{\"job\": %s, \"manifest\": %s, \"workdir\": \"/scratch/kt/job-42\",\n"
	                 " \"db\": \"/home/u/pdr.db\", \"dest\": null,\n"
	                 " \"sets\": {\"model\": \"kosma_tau_demo\"}, \"uid\": %s,%s\n"
	                 " \"created\": \"2026-11-22T10:42:03Z\"}\n",
	             job, manifest, uid, extra) < 0)
		ck_abort_msg("out of memory");
	free(u);
	return s;
}

static void
expect_read(const char *job, int code, const char *needle)
{
	struct jp_spool_entry *e = (struct jp_spool_entry *)1;
	int r;

	jp_error_clear(&err);
	r = jp_spool_read(dir, job, &e, &err);
	ck_assert_msg(r != JP_OK, "read of job %s succeeded; expected %d (%s)", job, code, needle);
	ck_assert_ptr_null(e);
	ck_assert_msg(err.code == code, "code %d, expected %d: %s", err.code, code, err.msg);
	if (needle != NULL)
		ck_assert_msg(strstr(err.msg, needle) != NULL, "'%s' not in: %s", needle, err.msg);
}

/* The message names the file. */
static void
expect_read_file(const char *job, int code, const char *needle)
{
	char *rel, *p;

	if (asprintf(&rel, "%s.json", job) < 0)
		ck_abort_msg("out of memory");
	p = t_path(dir, rel);
	expect_read(job, code, needle);
	ck_assert_msg(strstr(err.msg, p) != NULL, "file %s not named in: %s", p, err.msg);
	free(p);
	free(rel);
}

/* ---- write and read ---- */

START_TEST(test_round_trip_with_sets)
{
	struct jp_kv sets[] = {{"model", "kosma_tau_demo"}, {"grid", "n3_chi100"}};
	struct jp_spool_entry in = {"42", "/home/u/manifest.yaml", "/scratch/u/job-42", "/home/u/pdr.db",
	                            "file:///archive/pdr/${model}", sets, 2, 1000,
	                            "2026-11-22T10:42:03Z"};
	struct jp_spool_entry *out = NULL;
	struct stat sb;
	char *p, *text;
	size_t len = 0;

	in.uid = geteuid();
	ck_assert_int_eq(jp_spool_write(dir, &in, &err), JP_OK);
	p = t_path(dir, "42.json");
	ck_assert_int_eq(stat(p, &sb), 0);
	ck_assert_msg((sb.st_mode & 07777) == 0600, "mode %04o", (unsigned)(sb.st_mode & 07777));
	ck_assert_uint_eq(t_count_prefixed(dir, ".42.json"), 0); /* no temporary left */
	ck_assert_uint_eq(t_count_entries(dir), 1);
	text = t_read(dir, "42.json", &len);
	ck_assert_msg(t_json_valid(text, len), "not JSON: %s", text);
	ck_assert_ptr_nonnull(strstr(text, "\"sets\":{\"model\":\"kosma_tau_demo\",\"grid\":"));

	ck_assert_int_eq(jp_spool_read(dir, "42", &out, &err), JP_OK);
	ck_assert_str_eq(out->job, "42");
	ck_assert_str_eq(out->manifest, in.manifest);
	ck_assert_str_eq(out->workdir, in.workdir);
	ck_assert_str_eq(out->db, in.db);
	ck_assert_str_eq(out->dest, in.dest);
	ck_assert_uint_eq(out->n_sets, 2);
	ck_assert_str_eq(out->sets[0].name, "model");
	ck_assert_str_eq(out->sets[0].value, "kosma_tau_demo");
	ck_assert_str_eq(out->sets[1].name, "grid");
	ck_assert_str_eq(out->sets[1].value, "n3_chi100");
	ck_assert_uint_eq(out->uid, geteuid());
	ck_assert_str_eq(out->created, "2026-11-22T10:42:03Z");
	jp_spool_entry_free(out);
	free(text);
	free(p);
}
END_TEST

START_TEST(test_round_trip_nulls_and_escapes)
{
	/* Paths are whatever the user has: quotes, backslashes, spaces, newlines, UTF-8. */
	struct jp_kv sets[] = {{"note", "a \"b\" \\c\td\ne\x01 \xc3\xa9t\xc3\xa9"}};
	struct jp_spool_entry in = {"123456.batch", "/home/u/my \"runs\"/m.yaml",
	                            "/scratch/u/r\xc3\xa9sum\xc3\xa9\\x", NULL, NULL, sets, 1, 0, NULL};
	struct jp_spool_entry *out = NULL;
	char now[32];

	in.uid = geteuid();
	ck_assert_int_eq(jp_spool_write(dir, &in, &err), JP_OK);
	ck_assert_int_eq(jp_spool_read(dir, "123456.batch", &out, &err), JP_OK);
	ck_assert_str_eq(out->manifest, in.manifest);
	ck_assert_str_eq(out->workdir, in.workdir);
	ck_assert_ptr_null(out->db);
	ck_assert_ptr_null(out->dest);
	ck_assert_str_eq(out->sets[0].value, sets[0].value);
	/* created defaults to now */
	jp_now_iso(now, sizeof(now));
	ck_assert_int_eq(strncmp(out->created, now, 10), 0);
	ck_assert_uint_eq(strlen(out->created), 20);
	jp_spool_entry_free(out);
}
END_TEST

START_TEST(test_no_sets)
{
	struct jp_spool_entry in = {"7", "/m.yaml", "/w", NULL, NULL, NULL, 0, 0, NULL};
	struct jp_spool_entry *out = NULL;

	in.uid = geteuid();
	ck_assert_int_eq(jp_spool_write(dir, &in, &err), JP_OK);
	ck_assert_int_eq(jp_spool_read(dir, "7", &out, &err), JP_OK);
	ck_assert_uint_eq(out->n_sets, 0);
	jp_spool_entry_free(out);
}
END_TEST

START_TEST(test_write_creates_dir_and_replaces)
{
	struct jp_spool_entry in = {"42", "/a/m.yaml", "/a/job", NULL, NULL, NULL, 0, 0, NULL};
	struct jp_spool_entry *out = NULL;
	char *sub = t_path(dir, "state/jobpub/spool"), *mid = t_path(dir, "state");
	struct stat sb;

	in.uid = geteuid();
	ck_assert_int_eq(jp_spool_write(sub, &in, &err), JP_OK);
	ck_assert_int_eq(stat(sub, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 07777, 0700);
	ck_assert_int_eq(stat(mid, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 07777, 0700);
	in.workdir = "/b/job";
	ck_assert_int_eq(jp_spool_write(sub, &in, &err), JP_OK);
	ck_assert_int_eq(jp_spool_read(sub, "42", &out, &err), JP_OK);
	ck_assert_str_eq(out->workdir, "/b/job");
	ck_assert_uint_eq(t_count_entries(sub), 1);
	jp_spool_entry_free(out);
	free(sub);
	free(mid);
}
END_TEST

/* jp_spool_add never replaces another request's entry (Slurm job 5's entry for catalogue job 1
 * when catalogue job 5 is queued), replaces the same request's, and leaves no temporary. */
START_TEST(test_add_keeps_other_entries)
{
	struct jp_spool_entry a = {"1", "/a/m.yaml", "/a/job", "/a/c.db", NULL, NULL, 0, 0, NULL};
	struct jp_spool_entry b = {"5", "/a/m.yaml", "/a/job", "/a/c.db", NULL, NULL, 0, 0, NULL};
	struct jp_spool_entry *out = NULL;

	a.uid = b.uid = geteuid();
	a.key = "5";
	ck_assert_int_eq(jp_spool_write(dir, &a, &err), JP_OK);
	ck_assert_int_ne(jp_spool_add(dir, &b, &err), JP_OK);
	ck_assert_int_eq(err.code, JP_E_UNAVAILABLE);
	ck_assert_int_eq(jp_spool_read(dir, "5", &out, &err), JP_OK);
	ck_assert_str_eq(out->job, "1");
	jp_spool_entry_free(out);
	ck_assert_uint_eq(t_count_entries(dir), 1);
	/* The same job of another catalogue is another request too. */
	jp_error_clear(&err);
	b.job = "1";
	b.key = "5";
	b.db = "/b/c.db";
	ck_assert_int_ne(jp_spool_add(dir, &b, &err), JP_OK);
	/* The same request is replaced. */
	jp_error_clear(&err);
	b.db = "/a/c.db";
	b.workdir = "/b/job";
	ck_assert_int_eq(jp_spool_add(dir, &b, &err), JP_OK);
	ck_assert_int_eq(jp_spool_read(dir, "5", &out, &err), JP_OK);
	ck_assert_str_eq(out->workdir, "/b/job");
	jp_spool_entry_free(out);
	/* A free name is taken. */
	b.key = NULL;
	b.job = "7";
	ck_assert_int_eq(jp_spool_add(dir, &b, &err), JP_OK);
	ck_assert_uint_eq(t_count_entries(dir), 2);
	ck_assert_uint_eq(t_count_prefixed(dir, ".5.json"), 0);
}
END_TEST

START_TEST(test_write_refuses_bad_entries)
{
	struct jp_kv bad_set[] = {{"not-an-identifier", "x"}};
	struct jp_spool_entry in = {"42", "m.yaml", "/w", NULL, NULL, NULL, 0, 0, NULL};

	ck_assert_int_ne(jp_spool_write(dir, &in, &err), JP_OK); /* relative manifest */
	ck_assert_int_eq(err.code, JP_E_DATA);
	jp_error_clear(&err);
	in.manifest = "/m.yaml";
	in.db = "cat.db";
	ck_assert_int_ne(jp_spool_write(dir, &in, &err), JP_OK); /* relative db */
	ck_assert_int_eq(err.code, JP_E_DATA);
	jp_error_clear(&err);
	in.db = NULL;
	in.workdir = "/w/\xff\xfe";
	ck_assert_int_ne(jp_spool_write(dir, &in, &err), JP_OK); /* not UTF-8 */
	ck_assert_int_eq(err.code, JP_E_DATA);
	ck_assert_ptr_nonnull(strstr(err.msg, "UTF-8"));
	jp_error_clear(&err);
	in.workdir = "/w";
	in.sets = bad_set;
	in.n_sets = 1;
	ck_assert_int_ne(jp_spool_write(dir, &in, &err), JP_OK);
	ck_assert_int_eq(err.code, JP_E_DATA);
	ck_assert_uint_eq(t_count_entries(dir), 0);
}
END_TEST

static const char *const bad_jobs[] = {"a/b", "", "..", ".", "../42", "4\n2"};

START_TEST(test_bad_job_ids)
{
	struct jp_spool_entry in = {NULL, "/m.yaml", "/w", NULL, NULL, NULL, 0, 0, NULL};
	struct jp_spool_entry *out = (struct jp_spool_entry *)1;

	in.job = (char *)bad_jobs[_i];
	ck_assert_int_ne(jp_spool_write(dir, &in, &err), JP_OK);
	ck_assert_int_eq(err.code, JP_E_DATA);
	jp_error_clear(&err);
	ck_assert_int_ne(jp_spool_read(dir, bad_jobs[_i], &out, &err), JP_OK);
	ck_assert_int_eq(err.code, JP_E_DATA);
	ck_assert_ptr_null(out);
	jp_error_clear(&err);
	ck_assert_int_ne(jp_spool_remove(dir, bad_jobs[_i], &err), JP_OK);
	ck_assert_int_eq(err.code, JP_E_DATA);
	ck_assert_uint_eq(t_count_entries(dir), 0);
}
END_TEST

/* ---- the strict reader ---- */

START_TEST(test_hand_written_entry_ok)
{
	struct jp_spool_entry *out = NULL;
	char *t = entry_text("\"42\"", "\"/home/u/m.yaml\"", NULL, "");

	put_entry("42", t);
	ck_assert_msg(jp_spool_read(dir, "42", &out, &err) == JP_OK, "%s", err.msg);
	ck_assert_str_eq(out->db, "/home/u/pdr.db");
	ck_assert_ptr_null(out->dest);
	jp_spool_entry_free(out);
	free(t);
}
END_TEST

START_TEST(test_unknown_key)
{
	char *t = entry_text("\"42\"", "\"/m.yaml\"", NULL, " \"overwrite\": \"yes\",");

	put_entry("42", t);
	expect_read_file("42", JP_E_DATA, ":3:");
	ck_assert_ptr_nonnull(strstr(err.msg, "unknown key 'overwrite'"));
	free(t);
}
END_TEST

START_TEST(test_wrong_job)
{
	char *t = entry_text("\"43\"", "\"/m.yaml\"", NULL, "");

	put_entry("42", t);
	expect_read_file("42", JP_E_DATA, "job is '43', expected '42'");
	free(t);
}
END_TEST

START_TEST(test_relative_manifest)
{
	char *t = entry_text("\"42\"", "\"m.yaml\"", NULL, "");

	put_entry("42", t);
	expect_read_file("42", JP_E_DATA, "manifest: 'm.yaml' is not an absolute path");
	free(t);
}
END_TEST

START_TEST(test_bad_json)
{
	put_entry("42", "{\"job\": \"42\", \"manifest\": \"/m.yaml\",\n  \"workdir\": \"/w\" \"db\"\n");
	expect_read_file("42", JP_E_DATA, NULL);
	ck_assert_msg(strstr(err.msg, ".json:2:") != NULL, "no line in: %s", err.msg);
}
END_TEST

START_TEST(test_empty_file)
{
	put_entry("42", "");
	expect_read_file("42", JP_E_DATA, NULL);
}
END_TEST

START_TEST(test_not_an_object)
{
	put_entry("42", "[\"42\"]\n");
	expect_read_file("42", JP_E_DATA, "expected a JSON object");
}
END_TEST

START_TEST(test_missing_key)
{
	char *uid = NULL;

	if (asprintf(&uid, "{\"job\": \"42\", \"manifest\": \"/m.yaml\", \"workdir\": \"/w\", "
	                   "\"db\": null, \"dest\": null, \"sets\": {}, \"uid\": %u}",
	             (unsigned)geteuid()) < 0)
		ck_abort_msg("out of memory");
	put_entry("42", uid);
	expect_read_file("42", JP_E_DATA, "missing key 'created'");
	free(uid);
}
END_TEST

START_TEST(test_duplicate_key)
{
	char *t = entry_text("\"42\"", "\"/m.yaml\"", NULL, " \"job\": \"42\",");

	put_entry("42", t);
	expect_read_file("42", JP_E_DATA, NULL);
	free(t);
}
END_TEST

/* Values of the wrong JSON type: each replaces one member of a valid entry. */
static const struct {
	const char *job, *manifest, *uid, *extra, *needle;
} bad_types[] = {
	{"42", "\"/m.yaml\"", NULL, "", "job: expected a string"},
	{"\"42\"", "null", NULL, "", "manifest: expected a string"},
	{"\"42\"", "[\"/m.yaml\"]", NULL, "", "manifest: expected a string"},
	{"\"42\"", "\"/m.yaml\"", "\"1000\"", "", "uid: expected a number"},
	{"\"42\"", "\"/m.yaml\"", "-1", "", "uid: expected a number"},
	{"\"42\"", "\"/m.yaml\"", "1.5", "", "uid: expected a number"},
	{"\"42\"", "\"/m.yaml\"", "99999999999", "", "uid: expected a number"},
	{"\"42\"", "\"/m.yaml\"", NULL, " \"sets\": [],", "duplicate key"},
	{"\"42\"", "\"/m.yaml\"", NULL, " \"x y\": 1,", "unknown key 'x y'"},
	{"\"42\"", "\"/m.yaml\"", NULL, "", NULL}, /* placeholder: uid of someone else, below */
};

START_TEST(test_bad_types)
{
	char *t, *other = NULL;
	const char *uid = bad_types[_i].uid;

	if (bad_types[_i].needle == NULL) {
		/* The entry claims another uid than the file's owner. */
		if (asprintf(&other, "%u", (unsigned)geteuid() + 1) < 0)
			ck_abort_msg("out of memory");
		uid = other;
	}
	t = entry_text(bad_types[_i].job, bad_types[_i].manifest, uid, bad_types[_i].extra);
	put_entry("42", t);
	expect_read_file("42", JP_E_DATA,
	                 bad_types[_i].needle ? bad_types[_i].needle : "does not match the file's owner");
	free(t);
	free(other);
}
END_TEST

START_TEST(test_sets_types)
{
	static const char *const sets[] = {
		"[\"model\"]", "{\"model\": 3}", "{\"model\": null}", "{\"not-ident\": \"x\"}",
		"\"model=kt\"",
	};
	size_t i;

	for (i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		char *t;

		if (asprintf(&t, "{\"job\": \"42\", \"manifest\": \"/m.yaml\", \"workdir\": \"/w\", "
		                 "\"db\": null, \"dest\": null, \"sets\": %s, \"uid\": %u, "
		                 "\"created\": \"2026-11-22T10:42:03Z\"}", sets[i],
		             (unsigned)geteuid()) < 0)
			ck_abort_msg("out of memory");
		put_entry("42", t);
		expect_read_file("42", JP_E_DATA, NULL);
		free(t);
	}
}
END_TEST

START_TEST(test_yaml_not_accepted)
{
	/* Plain YAML scalars are not JSON strings: the entry is machine-written JSON only. */
	char *t;

	if (asprintf(&t, "job: 42\nmanifest: /m.yaml\nworkdir: /w\ndb: null\ndest: null\nsets: {}\n"
	                 "uid: %u\ncreated: 2026-11-22T10:42:03Z\n", (unsigned)geteuid()) < 0)
		ck_abort_msg("out of memory");
	put_entry("42", t);
	expect_read_file("42", JP_E_DATA, NULL);
	free(t);
}
END_TEST

START_TEST(test_missing_entry)
{
	char *want;

	if (asprintf(&want, "no spool entry for job 42 in %s (run `jobpub enqueue` from the job "
	                    "script)", dir) < 0)
		ck_abort_msg("out of memory");
	expect_read("42", JP_E_NOINPUT, want);
	free(want);
}
END_TEST

/* ---- trust ---- */

static void
entry_for_me(const char *job)
{
	struct jp_spool_entry in = {NULL, "/m.yaml", "/w", NULL, NULL, NULL, 0, 0, NULL};

	in.job = (char *)job;
	in.uid = geteuid();
	ck_assert_int_eq(jp_spool_write(dir, &in, &err), JP_OK);
}

START_TEST(test_group_writable)
{
	char *p = t_path(dir, "42.json");

	entry_for_me("42");
	ck_assert_int_eq(chmod(p, 0620), 0);
	expect_read_file("42", JP_E_NOPERM, "writable by group");
	ck_assert_ptr_nonnull(strstr(err.msg, "0620"));
	ck_assert_int_eq(chmod(p, 0606), 0);
	expect_read_file("42", JP_E_NOPERM, "writable by others");
	free(p);
}
END_TEST

START_TEST(test_symlink_refused)
{
	char *p = t_path(dir, "42.json"), *q = t_path(dir, "real.json");

	entry_for_me("real");
	ck_assert_int_eq(symlink(q, p), 0);
	expect_read_file("42", JP_E_NOPERM, "symbolic link");
	free(p);
	free(q);
}
END_TEST

START_TEST(test_fifo_refused)
{
	char *p = t_path(dir, "42.json");

	ck_assert_int_eq(mkfifo(p, 0600), 0);
	expect_read_file("42", JP_E_NOPERM, "not a regular file");
	free(p);
}
END_TEST

/* A root-owned *.json anywhere under /usr/share, for the owner check when not root. */
static char root_json[4096];
static int
find_root_json(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	size_t n = strlen(path);

	(void)ftw;
	if (type == FTW_F && S_ISREG(sb->st_mode) && sb->st_uid == 0 && n > 5 &&
	    strcmp(path + n - 5, ".json") == 0 && strchr(path + ftw->base, ' ') == NULL) {
		snprintf(root_json, sizeof(root_json), "%s", path);
		return 1;
	}
	return 0;
}

START_TEST(test_owned_by_another_user)
{
	struct passwd *pw = getpwnam("nobody");
	struct jp_spool_entry in = {"42", "/m.yaml", "/w", NULL, NULL, NULL, 0, 0, NULL};
	struct jp_spool_entry *out = NULL;
	char *p = t_path(dir, "42.json");
	int status;
	pid_t pid;

	if (geteuid() != 0) {
		/* Not root: an entry owned by someone else is any root-owned file. */
		char *slash;

		root_json[0] = '\0';
		nftw("/usr/share", find_root_json, 16, FTW_PHYS);
		ck_assert_msg(root_json[0] != '\0', "this test needs root or a root-owned *.json");
		slash = strrchr(root_json, '/');
		*slash = '\0';
		slash[strlen(slash + 1) - 4] = '\0'; /* drop ".json" */
		free(dir);
		dir = strdup(root_json);
		jp_error_clear(&err);
		ck_assert_int_ne(jp_spool_read(root_json, slash + 1, &out, &err), JP_OK);
		ck_assert_msg(err.code == JP_E_NOPERM && strstr(err.msg, "owned by root"), "%s",
		              err.msg);
		/* teardown must not remove /usr/share */
		dir = t_tempdir();
		free(p);
		return;
	}
	ck_assert_ptr_nonnull(pw);
	/* Root may read an entry a user owns (the epilogue finds the user's entry). */
	in.uid = pw->pw_uid;
	ck_assert_int_eq(jp_spool_write(dir, &in, &err), JP_OK);
	ck_assert_int_eq(chown(p, pw->pw_uid, pw->pw_gid), 0);
	ck_assert_msg(jp_spool_read(dir, "42", &out, &err) == JP_OK, "%s", err.msg);
	ck_assert_uint_eq(out->uid, pw->pw_uid);
	jp_spool_entry_free(out);
	out = NULL;

	/* A user may not read one root owns: the check runs in a child as nobody. */
	in.uid = 0;
	ck_assert_int_eq(jp_spool_write(dir, &in, &err), JP_OK);
	ck_assert_int_eq(chmod(p, 0644), 0); /* readable, so the refusal is jobpub's */
	ck_assert_int_eq(chmod(dir, 0755), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
			_exit(99);
		jp_error_clear(&err);
		if (jp_spool_read(dir, "42", &out, &err) == JP_OK)
			_exit(1);
		if (err.code != JP_E_NOPERM)
			_exit(2);
		if (strstr(err.msg, "owned by root (uid 0)") == NULL || strstr(err.msg, p) == NULL ||
		    strstr(err.msg, "refused") == NULL)
			_exit(3);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child check %d failed",
	              WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	free(p);
}
END_TEST

START_TEST(test_write_permission_denied)
{
	struct passwd *pw = getpwnam("nobody");
	struct jp_spool_entry in = {"42", "/m.yaml", "/w", NULL, NULL, NULL, 0, 0, NULL};
	int status;
	pid_t pid;

	ck_assert_int_eq(chmod(dir, 0555), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (geteuid() == 0 && (pw == NULL || setgid(pw->pw_gid) != 0 ||
		                       setuid(pw->pw_uid) != 0))
			_exit(99);
		in.uid = geteuid();
		jp_error_clear(&err);
		if (jp_spool_write(dir, &in, &err) == JP_OK)
			_exit(1);
		_exit(err.code == JP_E_NOPERM ? 0 : 2);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	chmod(dir, 0700);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child check %d failed",
	              WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	ck_assert_uint_eq(t_count_entries(dir), 0);
}
END_TEST

/* ---- remove, the default directory ---- */

START_TEST(test_remove)
{
	entry_for_me("42");
	entry_for_me("43");
	ck_assert_int_eq(jp_spool_remove(dir, "42", &err), JP_OK);
	ck_assert(!t_exists(dir, "42.json"));
	ck_assert(t_exists(dir, "43.json"));
	expect_read("42", JP_E_NOINPUT, "no spool entry for job 42");
	jp_error_clear(&err);
	ck_assert_int_eq(jp_spool_remove(dir, "42", &err), JP_OK); /* already gone */
}
END_TEST

/* jp_spool_list: every <key>.json in name order, unreadable ones with their reason, temporaries
 * and other names skipped; a missing directory has no entries; the callback may stop it. */
struct seen_list {
	char keys[8][32];
	int ok[8];
	size_t n;
	int stop_after;
};

static int
on_entry(void *arg, const char *key, const struct jp_spool_entry *e, const struct jp_error *why,
         long long mtime)
{
	struct seen_list *L = arg;

	ck_assert_int_gt(mtime, 0);
	ck_assert_msg((e == NULL) != (why == NULL), "exactly one of entry and reason");
	if (e != NULL)
		ck_assert_str_eq(e->job, key);
	else
		ck_assert_msg(strstr(why->msg, key) != NULL, "reason does not name %s: %s", key,
		              why->msg);
	snprintf(L->keys[L->n], sizeof(L->keys[0]), "%s", key);
	L->ok[L->n++] = e != NULL;
	return L->stop_after != 0 && (int)L->n == L->stop_after;
}

START_TEST(test_list)
{
	struct seen_list L;
	char *missing;

	memset(&L, 0, sizeof(L));
	entry_for_me("43");
	entry_for_me("42");
	put_entry("44", "not json");
	t_write_str(dir, ".42.json.tmp123", "x");
	t_write_str(dir, "notes.txt", "x");
	ck_assert_int_eq(jp_spool_list(dir, on_entry, &L, &err), JP_OK);
	ck_assert_int_eq((int)L.n, 3);
	ck_assert_str_eq(L.keys[0], "42");
	ck_assert_str_eq(L.keys[1], "43");
	ck_assert_str_eq(L.keys[2], "44");
	ck_assert(L.ok[0] && L.ok[1] && !L.ok[2]);

	memset(&L, 0, sizeof(L));
	L.stop_after = 1;
	ck_assert_int_eq(jp_spool_list(dir, on_entry, &L, &err), JP_OK);
	ck_assert_int_eq((int)L.n, 1);

	memset(&L, 0, sizeof(L));
	missing = t_path(dir, "no-such-spool");
	ck_assert_int_eq(jp_spool_list(missing, on_entry, &L, &err), JP_OK);
	ck_assert_int_eq((int)L.n, 0);
	free(missing);
}
END_TEST

/* readdir failing (EIO on a sick filesystem) after the first name: this binary's readdir stands
 * in for libc's, which it calls otherwise.  A failure is not the end of the directory. */
static int readdir_fails;

struct dirent *
readdir(DIR *d)
{
	static struct dirent *(*real)(DIR *);
	static int calls;

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "readdir");
	if (readdir_fails && ++calls > 1) {
		errno = EIO;
		return NULL;
	}
	return real(d);
}

START_TEST(test_list_readdir_error)
{
	struct seen_list L;

	memset(&L, 0, sizeof(L));
	entry_for_me("42");
	entry_for_me("43");
	readdir_fails = 1;
	ck_assert_int_ne(jp_spool_list(dir, on_entry, &L, &err), JP_OK);
	readdir_fails = 0;
	ck_assert_int_eq(err.code, JP_E_IOERR);
	ck_assert_msg(strstr(err.msg, "cannot list") != NULL && strstr(err.msg, strerror(EIO)) != NULL,
	              "%s", err.msg);
	ck_assert_int_eq((int)L.n, 0); /* nothing from a partial listing */
}
END_TEST

START_TEST(test_spool_dir)
{
	struct passwd *pw = getpwnam("nobody");
	char *d;
	int status;
	pid_t pid;

	setenv("JOBPUB_SPOOL", "/var/spool/jobpub/alice", 1);
	d = jp_spool_dir();
	ck_assert_str_eq(d, "/var/spool/jobpub/alice");
	free(d);
	unsetenv("JOBPUB_SPOOL");
	setenv("HOME", "/home/alice", 1);
	unsetenv("XDG_STATE_HOME");
	d = jp_spool_dir();
	ck_assert_str_eq(d, geteuid() == 0 ? "/var/spool/jobpub"
	                                   : "/home/alice/.local/state/jobpub/spool");
	free(d);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (geteuid() == 0 && (pw == NULL || setgid(pw->pw_gid) != 0 ||
		                       setuid(pw->pw_uid) != 0))
			_exit(99);
		d = jp_spool_dir();
		if (strcmp(d, "/home/alice/.local/state/jobpub/spool") != 0)
			_exit(1);
		free(d);
		setenv("XDG_STATE_HOME", "/home/alice/state", 1);
		d = jp_spool_dir();
		if (strcmp(d, "/home/alice/state/jobpub/spool") != 0)
			_exit(2);
		free(d);
		setenv("XDG_STATE_HOME", "relative", 1); /* ignored, as the XDG spec says */
		d = jp_spool_dir();
		if (strcmp(d, "/home/alice/.local/state/jobpub/spool") != 0)
			_exit(3);
		free(d);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child check %d failed",
	              WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}
END_TEST

/* ---- failures: the file system failing at one step ----
 *
 * spool.c is linked into this program, so the definitions below stand in for libc's in its
 * calls (and in the libraries', which is harmless: nothing fails unless a test arms it).  Each
 * passes the call on to libc unless the test armed it: then the nth call from now fails with
 * the errno given, once. */
static const char *fail_fn; /* the function armed, or NULL */
static int fail_nth, fail_errno;
static uid_t fake_euid = (uid_t)-1; /* geteuid's answer when not (uid_t)-1 */

static void
arm(const char *fn, int nth, int e)
{
	fail_fn = fn;
	fail_nth = nth;
	fail_errno = e;
}

/* 1 when this call of fn must fail (errno is then set). */
static int
failing(const char *fn)
{
	if (fail_fn == NULL || strcmp(fail_fn, fn) != 0 || --fail_nth > 0)
		return 0;
	fail_fn = NULL;
	errno = fail_errno;
	return 1;
}

#define REAL(type, name, args) \
	static type(*real_##name) args; \
	if (real_##name == NULL) \
		*(void **)&real_##name = dlsym(RTLD_NEXT, #name)

int
mkstemp(char *tmpl)
{
	REAL(int, mkstemp, (char *));
	return failing("mkstemp") ? -1 : real_mkstemp(tmpl);
}

int
fchmod(int fd, mode_t mode)
{
	REAL(int, fchmod, (int, mode_t));
	return failing("fchmod") ? -1 : real_fchmod(fd, mode);
}

FILE *
fdopen(int fd, const char *mode)
{
	REAL(FILE *, fdopen, (int, const char *));
	return failing("fdopen") ? NULL : real_fdopen(fd, mode);
}

int
fflush(FILE *fp)
{
	REAL(int, fflush, (FILE *));
	return failing("fflush") ? EOF : real_fflush(fp);
}

int
fsync(int fd)
{
	REAL(int, fsync, (int));
	return failing("fsync") ? -1 : real_fsync(fd);
}

/* A failing close still closes, as the kernel's does. */
int
fclose(FILE *fp)
{
	int r;
	REAL(int, fclose, (FILE *));
	r = real_fclose(fp);
	return failing("fclose") ? EOF : r;
}

int
mkdir(const char *path, mode_t mode)
{
	REAL(int, mkdir, (const char *, mode_t));
	return failing("mkdir") ? -1 : real_mkdir(path, mode);
}

char *
strdup(const char *s)
{
	REAL(char *, strdup, (const char *));
	return failing("strdup") ? NULL : real_strdup(s);
}

char *
strndup(const char *s, size_t n)
{
	REAL(char *, strndup, (const char *, size_t));
	return failing("strndup") ? NULL : real_strndup(s, n);
}

int
link(const char *from, const char *to)
{
	REAL(int, link, (const char *, const char *));
	return failing("link") ? -1 : real_link(from, to);
}

int
rename(const char *from, const char *to)
{
	REAL(int, rename, (const char *, const char *));
	return failing("rename") ? -1 : real_rename(from, to);
}

int
unlink(const char *path)
{
	REAL(int, unlink, (const char *));
	return failing("unlink") ? -1 : real_unlink(path);
}

int
fstat(int fd, struct stat *sb)
{
	REAL(int, fstat, (int, struct stat *));
	return failing("fstat") ? -1 : real_fstat(fd, sb);
}

DIR *
opendir(const char *path)
{
	REAL(DIR *, opendir, (const char *));
	return failing("opendir") ? NULL : real_opendir(path);
}

int
open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	REAL(int, open, (const char *, int, ...));
	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	return failing("open") ? -1 : real_open(path, flags, mode);
}

uid_t
geteuid(void)
{
	return fake_euid != (uid_t)-1 ? fake_euid : (uid_t)syscall(SYS_geteuid);
}

/* The names in dir other than "." and "..". */
static size_t
n_names(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL)
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	closedir(d);
	return n;
}

/* A write (exclusive: jp_spool_add) of job 42 with fn's nth call failing with e: it fails with
 * code, the message holds needle and strerror(e), and dir is left with `left` names. */
static void
expect_write_fails(int exclusive, const char *fn, int nth, int e, int code, const char *needle,
                   size_t left)
{
	struct jp_spool_entry in = {"42", "/m.yaml", "/w", "/c.db", NULL, NULL, 0, 0, NULL};
	int r;

	in.uid = geteuid();
	jp_error_clear(&err);
	arm(fn, nth, e);
	r = exclusive ? jp_spool_add(dir, &in, &err) : jp_spool_write(dir, &in, &err);
	ck_assert_msg(fail_fn == NULL, "%s was not called %d times", fn, nth);
	ck_assert_msg(r != JP_OK, "write succeeded with %s failing", fn);
	ck_assert_msg(err.code == code, "%s failing: code %d, expected %d: %s", fn, err.code, code,
	              err.msg);
	ck_assert_msg(strstr(err.msg, needle) != NULL && strstr(err.msg, strerror(e)) != NULL,
	              "%s failing: '%s' or '%s' not in: %s", fn, needle, strerror(e), err.msg);
	ck_assert_msg(n_names() == left, "%s failing: %zu names left in the spool, expected %zu", fn,
	              n_names(), left);
}

START_TEST(test_write_io_errors)
{
	/* Nothing is left behind: neither the entry nor its temporary. */
	expect_write_fails(0, "mkstemp", 1, ENOSPC, JP_E_IOERR, "cannot create a file in", 0);
	expect_write_fails(0, "fchmod", 1, EIO, JP_E_IOERR, "spool: ", 0);
	expect_write_fails(0, "fdopen", 1, ENOMEM, JP_E_IOERR, "spool: ", 0);
	expect_write_fails(0, "fflush", 1, ENOSPC, JP_E_IOERR, "writing", 0);
	expect_write_fails(0, "fsync", 1, EIO, JP_E_IOERR, "writing", 0);
	expect_write_fails(0, "fclose", 1, EDQUOT, JP_E_IOERR, "writing", 0);
	expect_write_fails(0, "rename", 1, EIO, JP_E_IOERR, "cannot rename", 0);
	expect_write_fails(1, "link", 1, EPERM, JP_E_NOPERM, "cannot link", 0);
	/* A read-only spool is refused (77), not an I/O error. */
	expect_write_fails(0, "mkstemp", 1, EROFS, JP_E_NOPERM, "cannot create a file in", 0);
	/* The directory's fsync fails after the rename: the entry is there, and the caller told
	 * that it may not survive a crash. */
	expect_write_fails(0, "fsync", 2, EIO, JP_E_IOERR, "fsync", 1);
	ck_assert(t_exists(dir, "42.json"));
	expect_write_fails(0, "open", 1, EMFILE, JP_E_IOERR, "fsync", 1);
}
END_TEST

START_TEST(test_write_cannot_create_dir)
{
	struct jp_spool_entry in = {"42", "/m.yaml", "/w", NULL, NULL, NULL, 0, 0, NULL};
	char *sub = t_path(dir, "state/jobpub/spool");

	in.uid = geteuid();
	arm("mkdir", 3, EACCES); /* "/tmp" exists; the first level under dir is refused */
	ck_assert_int_ne(jp_spool_write(sub, &in, &err), JP_OK);
	ck_assert_int_eq(err.code, JP_E_NOPERM);
	ck_assert_msg(strstr(err.msg, "cannot create") != NULL && strstr(err.msg, dir) != NULL, "%s",
	              err.msg);
	ck_assert_uint_eq(n_names(), 0);
	jp_error_clear(&err);
	arm("strdup", 1, ENOMEM);
	ck_assert_int_ne(jp_spool_write(sub, &in, &err), JP_OK);
	ck_assert_int_eq(err.code, JP_E_SOFTWARE);
	ck_assert_uint_eq(n_names(), 0);
	jp_error_clear(&err);
	ck_assert_msg(jp_spool_write(sub, &in, &err) == JP_OK, "%s", err.msg);
	free(sub);
}
END_TEST

START_TEST(test_out_of_memory)
{
	/* The reader's and the lister's copies failing: an error, never a partial entry. */
	struct seen_list L;

	entry_for_me("42");
	arm("strndup", 1, ENOMEM);
	expect_read("42", JP_E_SOFTWARE, "out of memory");
	memset(&L, 0, sizeof(L));
	arm("strndup", 1, ENOMEM);
	ck_assert_int_ne(jp_spool_list(dir, on_entry, &L, &err), JP_OK);
	ck_assert_int_eq(err.code, JP_E_SOFTWARE);
	ck_assert_int_eq((int)L.n, 0);
}
END_TEST

START_TEST(test_write_dir_fsync_unsupported)
{
	/* Some file systems cannot fsync a directory (EINVAL): the rename is as durable as it gets. */
	struct jp_spool_entry in = {"42", "/m.yaml", "/w", NULL, NULL, NULL, 0, 0, NULL};
	struct jp_spool_entry *out = NULL;

	in.uid = geteuid();
	arm("fsync", 2, EINVAL);
	ck_assert_msg(jp_spool_write(dir, &in, &err) == JP_OK, "%s", err.msg);
	ck_assert_ptr_null(fail_fn);
	ck_assert_msg(jp_spool_read(dir, "42", &out, &err) == JP_OK, "%s", err.msg);
	ck_assert_str_eq(out->workdir, "/w");
	jp_spool_entry_free(out);
}
END_TEST

START_TEST(test_write_spool_not_a_directory)
{
	struct jp_spool_entry in = {"42", "/m.yaml", "/w", NULL, NULL, NULL, 0, 0, NULL};
	char *file = t_path(dir, "spool");

	t_write_str(dir, "spool", "a file where the spool should be\n");
	in.uid = geteuid();
	ck_assert_int_ne(jp_spool_write(file, &in, &err), JP_OK);
	ck_assert_int_eq(err.code, JP_E_IOERR);
	ck_assert_msg(strstr(err.msg, file) && strstr(err.msg, "is not a directory"), "%s", err.msg);
	free(file);
}
END_TEST

START_TEST(test_write_bad_key)
{
	struct jp_spool_entry in = {"42", "/m.yaml", "/w", NULL, NULL, NULL, 0, 0, NULL};

	in.key = "../7";
	ck_assert_int_ne(jp_spool_write(dir, &in, &err), JP_OK);
	ck_assert_int_eq(err.code, JP_E_USAGE);
	ck_assert_msg(strstr(err.msg, "'../7' is not a valid spool key"), "%s", err.msg);
	ck_assert_uint_eq(n_names(), 0);
}
END_TEST

START_TEST(test_write_bad_utf8)
{
	/* Each kind of broken sequence, in each field that is written as a string. */
	static const char *const bad[] = {
		"/m\xc3(", "/m\xe2\x28\xa1", "/m\xf0\x28\x8c\xbc", "/m\xf5\x80\x80\x80", "/m\xc0\xaf",
		"/m\x80",
	};
	struct jp_kv set = {"model", NULL};
	size_t i, f;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		for (f = 0; f < 5; f++) {
			struct jp_spool_entry in = {"42", "/m.yaml", "/w", "/c.db", "file:///a", NULL, 0, 0,
			                            NULL};
			if (f == 0) in.manifest = (char *)bad[i];
			if (f == 1) in.workdir = (char *)bad[i];
			if (f == 2) in.db = (char *)bad[i];
			if (f == 3) in.dest = (char *)bad[i];
			if (f == 4) {
				set.value = bad[i];
				in.sets = &set;
				in.n_sets = 1;
			}
			jp_error_clear(&err);
			ck_assert_msg(jp_spool_write(dir, &in, &err) != JP_OK, "field %zu, value %zu", f, i);
			ck_assert_int_eq(err.code, JP_E_DATA);
		}
	/* Valid multi-byte sequences pass. */
	{
		struct jp_spool_entry in = {"42", "/m/\xc3\xa9t\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x98\x80",
		                            "/w", NULL, NULL, NULL, 0, 0, NULL};
		struct jp_spool_entry *out = NULL;
		in.uid = geteuid();
		jp_error_clear(&err);
		ck_assert_msg(jp_spool_write(dir, &in, &err) == JP_OK, "%s", err.msg);
		ck_assert_msg(jp_spool_read(dir, "42", &out, &err) == JP_OK, "%s", err.msg);
		ck_assert_str_eq(out->manifest, in.manifest);
		jp_spool_entry_free(out);
	}
	ck_assert_uint_eq(n_names(), 1);
}
END_TEST

START_TEST(test_add_same_request_rules)
{
	/* An entry filed under the key is replaced only by the same job of the same catalogue. */
	struct jp_spool_entry a = {"42", "/m.yaml", "/w", NULL, NULL, NULL, 0, 0, NULL};
	struct jp_spool_entry *out = NULL;

	a.uid = geteuid();
	a.key = "9001";
	ck_assert_int_eq(jp_spool_add(dir, &a, &err), JP_OK);
	a.workdir = "/w2"; /* same job, both without a catalogue: the same request */
	ck_assert_msg(jp_spool_add(dir, &a, &err) == JP_OK, "%s", err.msg);
	a.db = "/c.db"; /* a catalogue now, none before: another request */
	ck_assert_int_ne(jp_spool_add(dir, &a, &err), JP_OK);
	ck_assert_int_eq(err.code, JP_E_UNAVAILABLE);
	jp_error_clear(&err);
	ck_assert_int_eq(jp_spool_write(dir, &a, &err), JP_OK);
	a.db = NULL; /* the reverse */
	ck_assert_int_ne(jp_spool_add(dir, &a, &err), JP_OK);
	ck_assert_int_eq(err.code, JP_E_UNAVAILABLE);
	jp_error_clear(&err);
	a.db = "/other.db";
	ck_assert_int_ne(jp_spool_add(dir, &a, &err), JP_OK);
	ck_assert_int_eq(err.code, JP_E_UNAVAILABLE);
	jp_error_clear(&err);
	a.db = "/c.db";
	a.workdir = "/w3";
	ck_assert_msg(jp_spool_add(dir, &a, &err) == JP_OK, "%s", err.msg);
	ck_assert_msg(jp_spool_read(dir, "9001", &out, &err) == JP_OK, "%s", err.msg);
	ck_assert_str_eq(out->workdir, "/w3");
	ck_assert_str_eq(out->key, "9001");
	jp_spool_entry_free(out);
	ck_assert_uint_eq(n_names(), 1);
}
END_TEST

START_TEST(test_dir_with_trailing_slash)
{
	struct jp_spool_entry in = {"42", "/m.yaml", "/w", NULL, NULL, NULL, 0, 0, NULL};
	struct jp_spool_entry *out = NULL;
	char *d;

	if (asprintf(&d, "%s/", dir) < 0)
		ck_abort_msg("out of memory");
	in.uid = geteuid();
	ck_assert_msg(jp_spool_write(d, &in, &err) == JP_OK, "%s", err.msg);
	ck_assert(t_exists(dir, "42.json"));
	ck_assert_msg(jp_spool_read(d, "42", &out, &err) == JP_OK, "%s", err.msg);
	jp_spool_entry_free(out);
	ck_assert_int_eq(jp_spool_remove(d, "42", &err), JP_OK);
	ck_assert(!t_exists(dir, "42.json"));
	free(d);
}
END_TEST

START_TEST(test_read_io_errors)
{
	struct jp_spool_entry *out = (struct jp_spool_entry *)1;

	entry_for_me("42");
	arm("open", 1, EACCES);
	expect_read_file("42", JP_E_NOPERM, strerror(EACCES));
	arm("open", 1, EIO);
	expect_read_file("42", JP_E_IOERR, strerror(EIO));
	arm("fstat", 1, EIO);
	expect_read_file("42", JP_E_IOERR, strerror(EIO));
	arm("fdopen", 1, ENOMEM);
	expect_read_file("42", JP_E_IOERR, strerror(ENOMEM));
	/* Then it reads again. */
	ck_assert_msg(jp_spool_read(dir, "42", &out, &err) == JP_OK, "%s", err.msg);
	jp_spool_entry_free(out);
}
END_TEST

START_TEST(test_remove_fails)
{
	entry_for_me("42");
	arm("unlink", 1, EACCES);
	ck_assert_int_ne(jp_spool_remove(dir, "42", &err), JP_OK);
	ck_assert_int_eq(err.code, JP_E_NOPERM);
	ck_assert_msg(strstr(err.msg, "cannot remove") && strstr(err.msg, "42.json"), "%s", err.msg);
	ck_assert(t_exists(dir, "42.json"));
	jp_error_clear(&err);
	arm("unlink", 1, EIO);
	ck_assert_int_ne(jp_spool_remove(dir, "42", &err), JP_OK);
	ck_assert_int_eq(err.code, JP_E_IOERR);
	ck_assert(t_exists(dir, "42.json"));
}
END_TEST

static int
never_called(void *arg, const char *key, const struct jp_spool_entry *e, const struct jp_error *why,
             long long mtime)
{
	(void)arg, (void)e, (void)why, (void)mtime;
	ck_abort_msg("entry %s listed from a spool that cannot be listed", key);
	return 1;
}

START_TEST(test_list_cannot_open)
{
	entry_for_me("42");
	arm("opendir", 1, EACCES);
	ck_assert_int_ne(jp_spool_list(dir, never_called, NULL, &err), JP_OK);
	ck_assert_int_eq(err.code, JP_E_NOPERM);
	ck_assert_msg(strstr(err.msg, dir) && strstr(err.msg, strerror(EACCES)), "%s", err.msg);
	jp_error_clear(&err);
	arm("opendir", 1, EIO);
	ck_assert_int_ne(jp_spool_list(dir, never_called, NULL, &err), JP_OK);
	ck_assert_int_eq(err.code, JP_E_IOERR);
}
END_TEST

START_TEST(test_list_name_not_a_job)
{
	/* A file named like an entry whose name cannot be a job ID (a control character): listed
	 * as unreadable, with the reason. */
	struct seen_list L;

	memset(&L, 0, sizeof(L));
	entry_for_me("42");
	put_entry("4\0012", "{}");
	ck_assert_int_eq(jp_spool_list(dir, on_entry, &L, &err), JP_OK);
	ck_assert_int_eq((int)L.n, 2);
	ck_assert_str_eq(L.keys[0], "4\0012");
	ck_assert(!L.ok[0] && L.ok[1]);
}
END_TEST

/* ---- every field the reader refuses ---- */

/* An entry for job 42 filed as 42, uid the caller's, with `members` (JSON members, each with
 * its trailing comma) in place of the usual ones. */
static void
put_members(const char *key, const char *members)
{
	char *t;

	if (asprintf(&t, "{%s \"uid\": %u}\n", members, (unsigned)geteuid()) < 0)
		ck_abort_msg("out of memory");
	put_entry(key, t);
	free(t);
}

#define GOOD_JOB "\"job\": \"42\","
#define GOOD_PATHS "\"manifest\": \"/m.yaml\", \"workdir\": \"/w\", \"db\": \"/c.db\","
#define GOOD_REST "\"dest\": null, \"sets\": {}, \"created\": \"2026-11-22T10:42:03Z\","

static const struct {
	const char *key, *members, *needle;
} refused[] = {
	/* a NUL byte in a value (JSON allows \u0000; a C string cannot hold it) */
	{"42", "\"job\": \"42\", \"manifest\": \"/m\\u0000.yaml\", \"workdir\": \"/w\", \"db\": null,"
	       GOOD_REST, "manifest: NUL byte in value"},
	{"42", GOOD_JOB GOOD_PATHS "\"dest\": null, \"sets\": {\"model\": \"k\\u0000t\"},"
	       " \"created\": \"2026-11-22T10:42:03Z\",", "model: NUL byte in value"},
	/* a key that is not this file's name, or cannot be one */
	{"42", GOOD_JOB GOOD_PATHS GOOD_REST "\"key\": \"43\",", "key is '43', expected '42'"},
	{"42", GOOD_JOB GOOD_PATHS GOOD_REST "\"key\": \"..\",", "key is '..', expected '42'"},
	/* a job that is not a job ID (filed under a key, so the name does not give it away) */
	{"7", "\"job\": \"a/b\"," GOOD_PATHS GOOD_REST "\"key\": \"7\",", "job 'a/b' is not a job ID"},
	{"42", "\"job\": \"43\"," GOOD_PATHS GOOD_REST, "job is '43', expected '42'"},
	/* relative paths, empty values */
	{"42", GOOD_JOB "\"manifest\": \"/m.yaml\", \"workdir\": \"w\", \"db\": null," GOOD_REST,
	       "workdir: 'w' is not an absolute path"},
	{"42", GOOD_JOB "\"manifest\": \"/m.yaml\", \"workdir\": \"/w\", \"db\": \"c.db\"," GOOD_REST,
	       "db: 'c.db' is not an absolute path"},
	{"42", GOOD_JOB GOOD_PATHS "\"dest\": \"\", \"sets\": {}, \"created\": \"2026-11-22T10:42:03Z\",",
	       "dest: empty (use null for the manifest's)"},
	{"42", GOOD_JOB GOOD_PATHS "\"dest\": null, \"sets\": {}, \"created\": \"\",", "created: empty"},
	{"42", GOOD_JOB GOOD_PATHS "\"dest\": null, \"sets\": {}, \"created\": null,",
	       "created: expected a string"},
	{"42", GOOD_JOB GOOD_PATHS "\"dest\": 5, \"sets\": {}, \"created\": \"2026-11-22T10:42:03Z\",",
	       "dest: expected a string or null"},
	{"42", GOOD_JOB GOOD_PATHS "\"dest\": nul, \"sets\": {}, \"created\": \"2026-11-22T10:42:03Z\",",
	       NULL},
	{"42", GOOD_JOB GOOD_PATHS GOOD_REST "\"key\": 42,", "key: expected a string or null"},
	{"42", "\"job\": {}," GOOD_PATHS GOOD_REST, "job: expected a string"},
	/* a sets key that is not a string */
	{"42", GOOD_JOB GOOD_PATHS "\"dest\": null, \"sets\": {\"a\": \"1\", \"b\": [1]},"
	       " \"created\": \"2026-11-22T10:42:03Z\",", "b: expected a string"},
};

START_TEST(test_refused_fields)
{
	char *rel, *p;

	put_members(refused[_i].key, refused[_i].members);
	if (asprintf(&rel, "%s.json", refused[_i].key) < 0)
		ck_abort_msg("out of memory");
	p = t_path(dir, rel);
	expect_read(refused[_i].key, JP_E_DATA, refused[_i].needle);
	ck_assert_msg(strstr(err.msg, p) != NULL, "file %s not named in: %s", p, err.msg);
	free(p);
	free(rel);
}
END_TEST

START_TEST(test_uid_out_of_range)
{
	/* 10 digits, but not a uid: (uid_t)-1 is "no uid" to the kernel. */
	put_entry("42", "{\"job\": \"42\", \"manifest\": \"/m.yaml\", \"workdir\": \"/w\", \"db\": null,"
	                " \"dest\": null, \"sets\": {}, \"uid\": 4294967295,"
	                " \"created\": \"2026-11-22T10:42:03Z\"}");
	expect_read_file("42", JP_E_DATA, "uid: 4294967295 is out of range");
	put_entry("42", "{\"job\": \"42\", \"manifest\": \"/m.yaml\", \"workdir\": \"/w\", \"db\": null,"
	                " \"dest\": null, \"sets\": {}, \"uid\": \"\","
	                " \"created\": \"2026-11-22T10:42:03Z\"}");
	expect_read_file("42", JP_E_DATA, "uid: expected a number");
}
END_TEST

START_TEST(test_too_large)
{
	/* Over 1 MiB: refused by its size, before anything is parsed. */
	char *big = malloc(1024 * 1024 + 2);

	ck_assert_ptr_nonnull(big);
	memset(big, ' ', 1024 * 1024 + 1);
	big[1024 * 1024 + 1] = '\0';
	put_entry("42", big);
	expect_read_file("42", JP_E_DATA, "1048577 bytes: too large for a spool entry");
	free(big);
}
END_TEST

/* ---- who runs it: a user other than root (geteuid answers for this process) ---- */

START_TEST(test_user_reads_root_entry)
{
	/* The entry is root's (the test runs as root) or the caller's: geteuid says someone else,
	 * a uid without a passwd entry, named by number. */
	struct stat sb;
	char *p = t_path(dir, "42.json"), want[128];

	entry_for_me("42");
	ck_assert_int_eq(stat(p, &sb), 0);
	fake_euid = 4242424;
	ck_assert_ptr_null(getpwuid(fake_euid));
	expect_read_file("42", JP_E_NOPERM, "refused");
	snprintf(want, sizeof(want), "not by uid 4242424 (uid 4242424): refused");
	ck_assert_msg(strstr(err.msg, want) != NULL, "'%s' not in: %s", want, err.msg);
	fake_euid = (uid_t)-1;
	free(p);
}
END_TEST

START_TEST(test_spool_dir_of_a_user)
{
	/* The default directory of a user that is not root, in this process. */
	char *d;

	fake_euid = 4242424;
	unsetenv("JOBPUB_SPOOL");
	setenv("HOME", "/home/alice", 1);
	setenv("XDG_STATE_HOME", "/home/alice/state", 1);
	d = jp_spool_dir();
	ck_assert_str_eq(d, "/home/alice/state/jobpub/spool");
	free(d);
	setenv("XDG_STATE_HOME", "state", 1); /* relative: ignored, as the XDG spec says */
	d = jp_spool_dir();
	ck_assert_str_eq(d, "/home/alice/.local/state/jobpub/spool");
	free(d);
	unsetenv("XDG_STATE_HOME");
	setenv("JOBPUB_SPOOL", "", 1); /* empty: not set */
	d = jp_spool_dir();
	ck_assert_str_eq(d, "/home/alice/.local/state/jobpub/spool");
	free(d);
	/* No usable HOME and no passwd entry: a path that fails clearly, never a relative one. */
	setenv("HOME", "relative", 1);
	d = jp_spool_dir();
	ck_assert_str_eq(d, "/nonexistent/.local/state/jobpub/spool");
	free(d);
	unsetenv("HOME");
	d = jp_spool_dir();
	ck_assert_str_eq(d, "/nonexistent/.local/state/jobpub/spool");
	free(d);
	/* No usable HOME, but a passwd entry: its home directory. */
	{
		struct passwd *pw = getpwnam("daemon");
		char want[4096];

		ck_assert_msg(pw != NULL && strcmp(pw->pw_dir, "/nonexistent") != 0,
		              "this test needs a user 'daemon' with a home directory");
		snprintf(want, sizeof(want), "%s/.local/state/jobpub/spool", pw->pw_dir);
		fake_euid = pw->pw_uid;
		d = jp_spool_dir();
		ck_assert_str_eq(d, want);
		free(d);
	}
	fake_euid = (uid_t)-1;
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("spool");
	TCase *tc;

	tc = tcase_create("write");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_round_trip_with_sets);
	tcase_add_test(tc, test_round_trip_nulls_and_escapes);
	tcase_add_test(tc, test_no_sets);
	tcase_add_test(tc, test_write_creates_dir_and_replaces);
	tcase_add_test(tc, test_add_keeps_other_entries);
	tcase_add_test(tc, test_write_refuses_bad_entries);
	tcase_add_loop_test(tc, test_bad_job_ids, 0, (int)(sizeof(bad_jobs) / sizeof(bad_jobs[0])));
	suite_add_tcase(s, tc);

	tc = tcase_create("read");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_hand_written_entry_ok);
	tcase_add_test(tc, test_unknown_key);
	tcase_add_test(tc, test_wrong_job);
	tcase_add_test(tc, test_relative_manifest);
	tcase_add_test(tc, test_bad_json);
	tcase_add_test(tc, test_empty_file);
	tcase_add_test(tc, test_not_an_object);
	tcase_add_test(tc, test_missing_key);
	tcase_add_test(tc, test_duplicate_key);
	tcase_add_loop_test(tc, test_bad_types, 0, (int)(sizeof(bad_types) / sizeof(bad_types[0])));
	tcase_add_test(tc, test_sets_types);
	tcase_add_test(tc, test_yaml_not_accepted);
	tcase_add_test(tc, test_missing_entry);
	suite_add_tcase(s, tc);

	tc = tcase_create("trust");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_group_writable);
	tcase_add_test(tc, test_symlink_refused);
	tcase_add_test(tc, test_fifo_refused);
	tcase_add_test(tc, test_owned_by_another_user);
	tcase_add_test(tc, test_write_permission_denied);
	suite_add_tcase(s, tc);

	tc = tcase_create("manage");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_list);
	tcase_add_test(tc, test_list_readdir_error);
	tcase_add_test(tc, test_remove);
	tcase_add_test(tc, test_spool_dir);
	suite_add_tcase(s, tc);

	tc = tcase_create("failures");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_write_io_errors);
	tcase_add_test(tc, test_write_dir_fsync_unsupported);
	tcase_add_test(tc, test_write_cannot_create_dir);
	tcase_add_test(tc, test_out_of_memory);
	tcase_add_test(tc, test_write_spool_not_a_directory);
	tcase_add_test(tc, test_write_bad_key);
	tcase_add_test(tc, test_write_bad_utf8);
	tcase_add_test(tc, test_add_same_request_rules);
	tcase_add_test(tc, test_dir_with_trailing_slash);
	tcase_add_test(tc, test_read_io_errors);
	tcase_add_test(tc, test_remove_fails);
	tcase_add_test(tc, test_list_cannot_open);
	tcase_add_test(tc, test_list_name_not_a_job);
	suite_add_tcase(s, tc);

	tc = tcase_create("fields");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_refused_fields, 0, (int)(sizeof(refused) / sizeof(refused[0])));
	tcase_add_test(tc, test_uid_out_of_range);
	tcase_add_test(tc, test_too_large);
	suite_add_tcase(s, tc);

	tc = tcase_create("user");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_user_reads_root_entry);
	tcase_add_test(tc, test_spool_dir_of_a_user);
	suite_add_tcase(s, tc);

	return t_run(s);
}

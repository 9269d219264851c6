/*
 * test_spooled.c - src/core/spooled.c: a spool entry taken into a publish's options (what is given
 * wins, --set values merged by name, the job ID from the entry, a missing or broken entry
 * changing nothing); a publish queued under the first free name (another request's entry
 * never replaced, ten names at most); the state of a request (pending, publishing, failed,
 * published) from a real catalogue.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "testlib.h"
#include "testpub.h"

#include "spooled.h"

static char *dir, *spool;
static struct jp_error err;

static void
setup(void)
{
	dir = t_tempdir();
	spool = t_path(dir, "spool");
	jp_error_clear(&err);
}

static void
teardown(void)
{
	t_rmtree(dir);
	free(dir);
	free(spool);
}

/* Writes an entry for catalogue job `job` filed under key (NULL: job). */
static void
put(const char *job, const char *key, const char *db)
{
	static struct jp_kv sets[] = {{"model", "kt"}, {"grid", "g1"}};
	struct jp_spool_entry e;

	memset(&e, 0, sizeof(e));
	e.job = (char *)job;
	e.key = (char *)key;
	e.manifest = "/queued/manifest.yaml";
	e.workdir = "/queued/work";
	e.db = (char *)db;
	e.dest = "file:///queued/archive";
	e.sets = sets;
	e.n_sets = 2;
	e.uid = geteuid();
	ck_assert_int_eq(jp_spool_write(spool, &e, &err), JP_OK);
}

static const char *
set_of(const struct jp_publish_opts *o, const char *name)
{
	size_t i;

	for (i = 0; i < o->n_sets; i++)
		if (strcmp(o->sets[i].name, name) == 0)
			return o->sets[i].value;
	return NULL;
}

START_TEST(test_take_fills_what_is_missing)
{
	struct jp_publish_opts o;
	struct jp_spooled s;

	put("42", "5001", "/queued/cat.db");
	memset(&o, 0, sizeof(o));
	o.job = "5001";
	ck_assert_int_eq(jp_spooled_take(spool, "5001", &o, &s, &err), JP_OK);
	ck_assert_str_eq(o.job, "42"); /* the catalogue's ID, not the key */
	ck_assert_str_eq(o.manifest, "/queued/manifest.yaml");
	ck_assert_str_eq(o.workdir, "/queued/work");
	ck_assert_str_eq(o.db, "/queued/cat.db");
	ck_assert_str_eq(o.dest, "file:///queued/archive");
	ck_assert_uint_eq(o.n_sets, 2);
	ck_assert_str_eq(set_of(&o, "model"), "kt");
	ck_assert_str_eq(set_of(&o, "grid"), "g1");
	jp_spooled_free(&s);
	ck_assert_ptr_null(s.entry);
}
END_TEST

START_TEST(test_given_wins)
{
	static const struct jp_kv given[] = {{"model", "mine"}, {"extra", "x"}};
	struct jp_publish_opts o;
	struct jp_spooled s;

	put("42", NULL, "/queued/cat.db");
	memset(&o, 0, sizeof(o));
	o.job = "42";
	o.manifest = "/now/m.yaml";
	o.workdir = "/now/w";
	o.db = "/now/cat.db";
	o.dest = "file:///now/a";
	o.sets = given;
	o.n_sets = 2;
	ck_assert_int_eq(jp_spooled_take(spool, "42", &o, &s, &err), JP_OK);
	ck_assert_str_eq(o.manifest, "/now/m.yaml");
	ck_assert_str_eq(o.workdir, "/now/w");
	ck_assert_str_eq(o.db, "/now/cat.db");
	ck_assert_str_eq(o.dest, "file:///now/a");
	ck_assert_uint_eq(o.n_sets, 3);
	ck_assert_str_eq(o.sets[0].name, "model"); /* the given ones first, in their order */
	ck_assert_str_eq(o.sets[0].value, "mine");
	ck_assert_str_eq(o.sets[1].name, "extra");
	ck_assert_str_eq(set_of(&o, "grid"), "g1");
	jp_spooled_free(&s);
}
END_TEST

START_TEST(test_take_missing_changes_nothing)
{
	struct jp_publish_opts o;
	struct jp_spooled s;

	memset(&o, 0, sizeof(o));
	o.job = "7";
	ck_assert_int_ne(jp_spooled_take(spool, "7", &o, &s, &err), JP_OK);
	ck_assert_int_eq(err.code, 66);
	ck_assert_str_eq(o.job, "7");
	ck_assert_ptr_null(o.manifest);
	ck_assert_ptr_null(s.entry);
	/* A broken entry: 65, nothing taken either. */
	t_write_str(spool, "8.json", "{\"job\": 8}\n");
	jp_error_clear(&err);
	o.job = "8";
	ck_assert_int_ne(jp_spooled_take(spool, "8", &o, &s, &err), JP_OK);
	ck_assert_int_eq(err.code, 65);
	ck_assert_ptr_null(o.manifest);
}
END_TEST

START_TEST(test_queue)
{
	struct jp_publish_opts o;
	struct jp_spool_entry *e = NULL;
	char *key = NULL, *cwd = getcwd(NULL, 0), *db = t_path(dir, "cat.db");
	static const struct jp_kv sets[] = {{"model", "kt"}};

	t_write_str(dir, "m.yaml", "outputs: []\n");
	memset(&o, 0, sizeof(o));
	o.job = "42";
	o.manifest = "m.yaml"; /* relative: recorded absolute */
	o.workdir = NULL;      /* the current directory */
	o.db = db;
	o.sets = sets;
	o.n_sets = 1;
	ck_assert_int_eq(chdir(dir), 0);
	ck_assert_int_eq(jp_spooled_queue(spool, &o, &key, &err), JP_OK);
	ck_assert_str_eq(key, "42");
	free(key);
	ck_assert_int_eq(jp_spool_read(spool, "42", &e, &err), JP_OK);
	ck_assert_str_eq(e->job, "42");
	ck_assert_ptr_nonnull(strstr(e->manifest, "/m.yaml"));
	ck_assert_int_eq(e->manifest[0], '/');
	ck_assert_int_eq(e->workdir[0], '/');
	ck_assert_uint_eq(e->n_sets, 1);
	jp_spool_entry_free(e);
	/* 42.json is another request's (Slurm job 42 for catalogue job 7): never replaced. */
	ck_assert_int_eq(jp_spool_remove(spool, "42", &err), JP_OK);
	put("7", "42", db);
	ck_assert_int_eq(jp_spooled_queue(spool, &o, &key, &err), JP_OK);
	ck_assert_str_eq(key, "42~2");
	free(key);
	ck_assert_int_eq(jp_spool_read(spool, "42", &e, &err), JP_OK);
	ck_assert_str_eq(e->job, "7");
	jp_spool_entry_free(e);
	ck_assert_int_eq(chdir(cwd), 0);
	free(cwd);
	free(db);
}
END_TEST

START_TEST(test_queue_names_run_out)
{
	struct jp_publish_opts o;
	char *key = NULL, *k, *db = t_path(dir, "cat.db"), *m = t_path(dir, "m.yaml");
	int i;

	t_write_str(dir, "m.yaml", "outputs: []\n");
	put("7", "42", db);
	for (i = 2; i <= 10; i++) {
		ck_assert(asprintf(&k, "42~%d", i) > 0);
		put("7", k, db);
		free(k);
	}
	memset(&o, 0, sizeof(o));
	o.job = "42";
	o.manifest = m;
	o.workdir = dir;
	o.db = db;
	ck_assert_int_ne(jp_spooled_queue(spool, &o, &key, &err), JP_OK);
	ck_assert_int_eq(err.code, 69);
	ck_assert_ptr_null(key);
	ck_assert(!t_exists(spool, "42~11.json"));
	/* A manifest that is not there: the reason, nothing written. */
	jp_error_clear(&err);
	ck_assert_int_eq(jp_spool_remove(spool, "42", &err), JP_OK);
	o.manifest = "/nonexistent/m.yaml";
	ck_assert_int_ne(jp_spooled_queue(spool, &o, &key, &err), JP_OK);
	ck_assert_str_eq(err.msg, "spool: No such file or directory");
	ck_assert(!t_exists(spool, "42.json"));
	free(db);
	free(m);
}
END_TEST

/* ---- the state of a request, from a real catalogue ---- */

static struct t_pub P;

static void
pub_setup(void)
{
	t_pub_setup(&P);
	jp_error_clear(&err);
}

static void
pub_teardown(void)
{
	t_pub_teardown(&P);
}

/* An entry for job, created at `created`, for P's catalogue. */
static void
state_is(const char *job, const char *created, const char *db, const char *state,
         const char *note)
{
	struct jp_spool_entry e;
	char buf[JP_ERRMSG_MAX + 64];

	memset(&e, 0, sizeof(e));
	e.job = (char *)job;
	e.db = (char *)db;
	e.created = (char *)created;
	ck_assert_str_eq(jp_spooled_state(&e, buf, sizeof(buf)), state);
	if (note[0] == '\0')
		ck_assert_str_eq(buf, "");
	else
		ck_assert_ptr_nonnull(strstr(buf, note));
}

START_TEST(test_state)
{
	char *work = t_pub_work(&P, "j2"), *a = t_path(work, "out/a");

	/* No catalogue recorded, or one that cannot be read: pending, with the reason. */
	state_is("j1", NULL, NULL, "pending", "no catalogue recorded");
	state_is("j1", NULL, "/nonexistent/cat.db", "pending", "catalogue not readable: ");
	ck_assert_int_eq(t_pub_job(&P, "j1", 100, &err), 0);
	/* Published since the entry was written; an entry written after it: pending. */
	state_is("j1", "2000-01-01T00:00:00Z", P.db, "published", "");
	state_is("j1", "2999-01-01T00:00:00Z", P.db, "pending", "");
	state_is("nosuch", NULL, P.db, "pending", "");
	/* Published, then a later attempt failed: still published, said so. */
	ck_assert_int_eq(t_pub_job(&P, "j2", 100, &err), 0);
	ck_assert_int_eq(unlink(a), 0);
	{
		struct jp_publish_opts o;

		memset(&o, 0, sizeof(o));
		o.job = "j2";
		o.manifest = P.manifest;
		o.workdir = work;
		o.db = P.db;
		o.dest = P.url;
		o.db_timeout_ms = 2000;
		jp_error_clear(&err);
		ck_assert_int_eq(jp_exit_code(jp_publish(&o, &err), &err), 66);
	}
	state_is("j2", "2000-01-01T00:00:00Z", P.db, "published", "a later attempt failed_storage");
	/* Never published, the last attempt failed: failed; left running by a publisher that is
	 * gone: failed, said so. */
	{
		struct jp_publish_opts o;
		char *w3 = t_pub_work(&P, "j3");

		t_write_str(w3, "out/b.txt", "b\n");
		memset(&o, 0, sizeof(o));
		o.job = "j3";
		o.manifest = P.manifest;
		o.workdir = w3;
		o.db = P.db;
		o.dest = P.url;
		o.db_timeout_ms = 2000;
		jp_error_clear(&err);
		ck_assert_int_eq(jp_exit_code(jp_publish(&o, &err), &err), 66);
		free(w3);
	}
	state_is("j3", "2000-01-01T00:00:00Z", P.db, "failed", "");
	t_sql_exec(P.db, "UPDATE jobpub_attempts SET outcome = 'running' WHERE job = 'j3';");
	state_is("j3", "2000-01-01T00:00:00Z", P.db, "failed", "its publisher is gone");
	/* Running under a live lease (another host's, until 2100): publishing. */
	t_sql_exec(P.db, "INSERT INTO jobpub_leases (job, host, pid, token, since, expires, boot_id)"
	                 " VALUES ('j3', 'elsewhere.invalid', 1, '0123456789abcdef',"
	                 " '2020-01-01T00:00:00Z', 4102444800, 'another-boot');");
	state_is("j3", "2000-01-01T00:00:00Z", P.db, "publishing", "");
	free(a);
	free(work);
}
END_TEST

static Suite *
spooled_suite(void)
{
	Suite *s = suite_create("spooled");
	TCase *tc = tcase_create("spooled");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_take_fills_what_is_missing);
	tcase_add_test(tc, test_given_wins);
	tcase_add_test(tc, test_take_missing_changes_nothing);
	tcase_add_test(tc, test_queue);
	tcase_add_test(tc, test_queue_names_run_out);
	suite_add_tcase(s, tc);

	tc = tcase_create("state");
	tcase_add_checked_fixture(tc, pub_setup, pub_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_state);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return t_run(spooled_suite());
}

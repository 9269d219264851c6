#!/bin/sh
# `jobpub status`: a missing catalogue is 66 (and is not created), an unknown job 65; without
# an ID it counts jobs per status for every table jobpub published into; ID shows the row, the
# files and the attempts (with the error of a failed one); --json is one parseable document.
. "$(dirname "$0")/lib.sh"
need python3

missing_db() {
	expect_rc 66 "$JOBPUB" status --db "$T/none.db"
	assert_grep_fixed "$T/none.db" "$ERR"
	assert_absent "$T/none.db"
	expect_rc 66 "$JOBPUB" status --db "$T/none.db" 1
	assert_absent "$T/none.db"
	# The default is $JOBPUB_DB, then ./jobpub.db.
	expect_rc 66 env JOBPUB_DB="$T/env.db" "$JOBPUB" status
	assert_grep_fixed "$T/env.db" "$ERR"
	mkdir "$T/cwd"
	(cd "$T/cwd" && expect_rc 66 "$JOBPUB" status && assert_grep 'jobpub\.db' "$ERR") || exit 1
	assert_absent "$T/cwd/jobpub.db"
}

# The example published (job 1), a job of jobpub's own `jobs` table published, and a job of the
# minimal runs table that failed (missing output).
set_up() {
	make_example
	sql "$EXDB" "INSERT INTO pdr_model_jobs (id, model_job_name, status) VALUES
		(2, 'a', 'pending'), (3, 'b', 'pending'), (4, 'c', 'running')"
	expect_rc 0 publish_example
	# jobpub's own table: no catalog: section; the row is created by publish.
	mkdir -p "$T/own/out"
	printf 'x\n' >"$T/own/out/x.txt"
	write_manifest "$T/own.yaml" <<EOF
destination: file://$T/own-archive
outputs:
  - name: x
    path: out/x.txt
    to: \${job}/x.txt
EOF
	expect_rc 0 "$JOBPUB" publish --job run-42 --manifest "$T/own.yaml" --workdir "$T/own" \
		--db "$EXDB"
	# A failed job in the same catalogue, for the attempt's error.
	mv "$EXJOB/pdroutput/TEXTOUT" "$T/TEXTOUT"
	expect_rc 66 "$JOBPUB" publish --job 4 --manifest "$EXMAN" --workdir "$EXJOB" --db "$EXDB" \
		--dest "file://$T/archive4" --set model=x
	mv "$T/TEXTOUT" "$EXJOB/pdroutput/TEXTOUT"
}

unknown_job() {
	set_up
	expect_rc 65 "$JOBPUB" status --db "$EXDB" 99
	assert_grep '^jobpub: .*\b99\b' "$ERR"
	[ ! -s "$OUT" ] || fail "status of an unknown job printed on stdout"
}

counts() {
	set_up
	expect_rc 0 "$JOBPUB" status --db "$EXDB"
	assert_grep '^pdr_model_jobs +finished +1$' "$OUT"
	assert_grep '^pdr_model_jobs +pending +2$' "$OUT"
	assert_grep '^pdr_model_jobs +failed_storage +1$' "$OUT"
	assert_grep '^jobs +published +1$' "$OUT"
	assert_no_grep 'running' "$OUT"
	expect_rc 0 "$JOBPUB" status --db "$EXDB" --json
	python3 - "$OUT" <<'EOF' || fail "status --json counts (see above)"
import json, sys
d = json.load(open(sys.argv[1]))
got = sorted((c["table"], c["status"], c["count"]) for c in d["counts"])
want = sorted([("pdr_model_jobs", "finished", 1), ("pdr_model_jobs", "pending", 2),
               ("pdr_model_jobs", "failed_storage", 1), ("jobs", "published", 1)])
if got != want:
    print("  counts: %r\n  expected %r" % (got, want), file=sys.stderr)
    sys.exit(1)
EOF
}

one_job_text() {
	set_up
	expect_rc 0 "$JOBPUB" status --db "$EXDB" 1
	assert_grep '^job 1: finished \(table pdr_model_jobs\)' "$OUT"
	assert_grep "^  output_textout_file +$EXURL/pdrgrid/TEXTOUT$EXNAME\$" "$OUT"
	assert_grep '^files: 22$' "$OUT"
	sha=$(sha256sum "$EXJOB/pdroutput/pdrout.hdf" | cut -d' ' -f1)
	assert_grep "^  $EXURL/pdrgrid/pdr$EXNAME.hdf .*$sha" "$OUT"
	assert_grep '^attempts: 1$' "$OUT"
	expect_rc 0 "$JOBPUB" status --db "$EXDB" 4
	assert_grep '^job 4: failed_storage' "$OUT"
	assert_grep '^files: 0$' "$OUT"
	assert_grep '^attempts: 1$' "$OUT"
	assert_grep 'failed_storage.*exit 66.*pdroutput/TEXTOUT' "$OUT"
	expect_rc 0 "$JOBPUB" status --db "$EXDB" run-42
	assert_grep '^job run-42: published \(table jobs\)' "$OUT"
	assert_grep_fixed "file://$T/own-archive/run-42/x.txt" "$OUT"
}

one_job_json() {
	set_up
	expect_rc 0 "$JOBPUB" status --db "$EXDB" --json 1
	python3 - "$OUT" "$EXJOB" "$EXURL" <<'EOF' || fail "status --json 1 (see above)"
import hashlib, json, os, sys
errors = []
d = json.load(open(sys.argv[1]))
if (d.get("job"), d.get("status"), d.get("table")) != ("1", "finished", "pdr_model_jobs"):
    errors.append("job/status/table: %r" % [d.get("job"), d.get("status"), d.get("table")])
files = d.get("files", [])
if len(files) != 22:
    errors.append("%d files, expected 22" % len(files))
for f in files:
    if f["local"] == "Out":
        # the directory archive: checked against the tar.gz published at the destination
        if f.get("entries", 0) < 1001:
            errors.append("entries of Out: %r" % f)
        continue
    data = open(os.path.join(sys.argv[2], f["local"]), "rb").read()
    if f["size"] != len(data) or f["sha256"] != hashlib.sha256(data).hexdigest():
        errors.append("size/sha256 of %s" % f["local"])
    if not f["remote"].startswith(sys.argv[3] + "/"):
        errors.append("remote %s" % f["remote"])
cols = d.get("columns", {})
if not str(cols.get("output_hdf4_file", "")).startswith(sys.argv[3] + "/pdrgrid/pdr"):
    errors.append("columns: %r" % cols)
att = d.get("attempts", [])
if len(att) != 1 or att[0].get("outcome") != "published" or att[0].get("exit_code") != 0:
    errors.append("attempts: %r" % att)
for m in errors:
    print("  " + m, file=sys.stderr)
sys.exit(1 if errors else 0)
EOF
	expect_rc 0 "$JOBPUB" status --db "$EXDB" --json 4
	python3 - "$OUT" <<'EOF' || fail "status --json 4 (see above)"
import json, sys
d = json.load(open(sys.argv[1]))
a = d["attempts"]
ok = (d["status"] == "failed_storage" and d["files"] == [] and len(a) == 1
      and a[0]["outcome"] == "failed_storage" and a[0]["exit_code"] == 66
      and "pdroutput/TEXTOUT" in (a[0]["message"] or ""))
if not ok:
    print("  %r" % d, file=sys.stderr)
sys.exit(0 if ok else 1)
EOF
}

# A job someone is publishing now (a live lease: this shell's PID on this host): shown in the
# text and in JSON; attempts whose numbers were never recorded are null in JSON.  An argument
# too many is a usage error.
being_published() {
	set_up
	sql "$EXDB" "INSERT INTO jobpub_leases (job, host, pid, token, since, expires) VALUES
		('run-42', '$(hostname)', $$, 'feedface', '2026-12-07T10:42:03Z',
		CAST(strftime('%s', 'now') AS INTEGER) + 3600);
		INSERT INTO jobpub_attempts (job, token, started_at, job_table, id_column, status_column,
		outcome) VALUES ('run-42', 'feedface', '2026-12-07T10:42:03Z', 'jobs', 'id', 'status',
		'running')"
	expect_rc 0 "$JOBPUB" status --db "$EXDB" run-42
	assert_grep "^being published now by $(hostname):$$ since 2026-12-07T10:42:03Z\$" "$OUT"
	expect_rc 0 "$JOBPUB" status --db "$EXDB" --json run-42
	python3 - "$OUT" "$(hostname)" "$$" <<'PY' || { show "$OUT"; fail "status --json of a job being published"; }
import json, sys
d = json.load(open(sys.argv[1]))
p = d["publishing_now"]
assert p == {"host": sys.argv[2], "pid": int(sys.argv[3]), "since": "2026-12-07T10:42:03Z"}, p
last = d["attempts"][-1]
assert last["outcome"] == "running" and last["exit_code"] is None and last["bytes"] is None \
    and last["duration_ms"] is None, last
PY
	expect_rc 64 "$JOBPUB" status --db "$EXDB" 1 2
	assert_grep "^jobpub: unexpected argument '2'" "$ERR"
}

run_case missing_db
run_case unknown_job
run_case counts
run_case one_job_text
run_case one_job_json
run_case being_published
finish

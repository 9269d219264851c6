#!/bin/sh
# 50 publishers of 50 jobs at once into one catalogue (issue 13, defect 9).  With the default
# --db-timeout every one succeeds, on a catalogue they create and migrate together.  With
# --db-timeout 1 some may give up (75) while the catalogue is busy, but none is lost: every job
# not published is one `jobpub republish` finds (failed_storage, left `publishing` by a
# publisher that is gone, or -- when not even its attempt could be recorded -- queued in the
# spool), and republish then publishes them all.  Opening a current catalogue takes no write
# lock, so publishers do not queue for a schema migration that is not needed.
. "$(dirname "$0")/lib.sh"
need seq

N=50
DB=$T/catalog.db
ARCH=$T/archive
MAN=$T/manifest.yaml
W=$T/w
JOBPUB_SPOOL=$T/spool
export JOBPUB_SPOOL

write_manifest "$MAN" <<EOF
destination: file://$ARCH
catalog:
  table: runs
  id-column: id
  status-column: status
  published-status: finished
outputs:
  - name: result
    path: out/result.txt
    to: run-\${job}/result.txt
    column: result_url
EOF

# fresh_catalogue: a pdr_run-like table runs with jobs 0..N 'running', and their work
# directories.
fresh_catalogue() {
	local i
	rm -rf "$DB" "$DB-wal" "$DB-shm" "$ARCH" "$JOBPUB_SPOOL" "$W"
	{
		echo "CREATE TABLE runs (id INTEGER PRIMARY KEY, status TEXT, result_url TEXT);"
		for i in $(seq 0 $N); do
			echo "INSERT INTO runs VALUES ($i, 'running', NULL);"
		done
	} | sqlite3 "$DB"
	for i in $(seq 0 $N); do
		mkdir -p "$W/$i/out"
		printf 'result of job %s\n' "$i" >"$W/$i/out/result.txt"
	done
}

# publish_all [OPTION]...: jobs 1..N at once; exit codes in $T/rc.I.
publish_all() {
	local i p rc pids=
	for i in $(seq 1 $N); do
		"$JOBPUB" publish --job "$i" --manifest "$MAN" --workdir "$W/$i" --db "$DB" "$@" \
			>"$T/out.$i" 2>"$T/err.$i" &
		pids="$pids $!"
		bg_started "$!"
	done
	i=0
	for p in $pids; do
		i=$((i + 1))
		rc=0
		wait "$p" || rc=$?
		echo "$rc" >"$T/rc.$i"
	done
}

all_published() {
	local i
	assert_eq "$(sql "$DB" "SELECT status || ' ' || count(*) FROM runs WHERE id > 0 GROUP BY status")" \
		"finished $N" "statuses ($1)"
	for i in $(seq 1 $N); do
		cmp -s "$W/$i/out/result.txt" "$ARCH/run-$i/result.txt" || fail "job $i: not published ($1)"
	done
	assert_eq "$(sql "$DB" "SELECT count(*) FROM jobpub_leases")" 0 "leases left ($1)"
	assert_no_temps "$ARCH"
}

default_timeout() {
	local i
	fresh_catalogue
	publish_all
	for i in $(seq 1 $N); do
		[ "$(cat "$T/rc.$i")" = 0 ] || {
			show "$T/err.$i"
			fail "job $i exited $(cat "$T/rc.$i") with the default --db-timeout"
		}
	done
	all_published "default timeout"
	assert_eq "$(sql "$DB" "SELECT outcome || ' ' || count(*) FROM jobpub_attempts GROUP BY outcome")" \
		"published $N" "attempts"
	assert_absent "$JOBPUB_SPOOL"
}

timeout_1() {
	local i rc listed lost=
	fresh_catalogue
	# A current catalogue, as in production: migrated by an earlier publish.
	expect_rc 0 "$JOBPUB" publish --job 0 --manifest "$MAN" --workdir "$W/0" --db "$DB"
	publish_all --db-timeout 1
	for i in $(seq 1 $N); do
		rc=$(cat "$T/rc.$i")
		case $rc in
		0 | 75) ;;
		*) show "$T/err.$i"; fail "job $i exited $rc" ;;
		esac
	done
	expect_rc 0 "$JOBPUB" republish --db "$DB" --dry-run
	listed=$(sed -n 's/^job \([0-9]*\): would republish .*/\1/p' "$OUT" | sort -n | tr '\n' ' ')
	for i in $(sql "$DB" "SELECT id FROM runs WHERE id > 0 AND status IS NOT 'finished'"); do
		case " $listed " in
		*" $i "*) ;;
		*) lost="$lost $i" ;;
		esac
	done
	[ -z "$lost" ] || fail "jobs not published and invisible to republish:$lost"
	printf 'ok: %s of %s publishers gave up (75), all listed by republish\n' \
		"$(grep -lx 75 "$T"/rc.* | wc -l)" "$N"
	expect_rc 0 "$JOBPUB" republish --db "$DB" --parallel 4
	all_published "after republish"
	[ -z "$(ls -A "$JOBPUB_SPOOL" 2>/dev/null)" ] || fail "spool entries left: $(ls "$JOBPUB_SPOOL")"
}

run_case default_timeout
run_case timeout_1
finish

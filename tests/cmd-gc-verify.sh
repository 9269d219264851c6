#!/bin/sh
# SIGKILL a publish at three points (mid-way through a big file, as soon as the first temporary
# name appears, once final names exist), then: no final name holds a partial file; `gc` lists
# the temporary files with size and age and deletes them only with --apply, keeps young ones
# and those of a live lease, reports missing and unreferenced files without touching them;
# `republish` brings every killed job to 'published'; `verify` (and --deep) check the result and
# find a missing or changed file.
. "$(dirname "$0")/lib.sh"
need head stat cut python3 dd touch mkfifo grep

SIZE=$((256 * 1024 * 1024)) # real data: staging it lasts long enough to stop the publish in it
NMANY=100                    # small files: committing them all takes a while

DB=$T/catalog.db
ARCH=$T/archive
URL=file://$ARCH
WORK=$T/job
MAN=$T/manifest.yaml
mkdir -p "$WORK/out" "$WORK/many"
printf 'result\n' >"$WORK/out/result.txt"
head -c 65536 /dev/urandom >"$WORK/out/data.bin"
for i in $(seq 1 $NMANY); do
	printf 'small file %s\n' "$i" >"$WORK/many/f$(printf %03d "$i").txt"
done
head -c "$SIZE" /dev/zero >"$WORK/big.dat" || hard_error "cannot write $SIZE bytes in $T"
[ "$(stat -c %b "$WORK/big.dat")" -ge $((SIZE / 512)) ] || hard_error "big.dat is sparse"
NFILES=$((NMANY + 3))
# Every job publishes the same work directory under ${job}/, with the same relative names.
write_manifest "$MAN" <<EOF
destination: $URL
outputs:
  - name: result
    path: out/result.txt
    to: \${job}/out/result.txt
  - name: data
    path: out/data.bin
    to: \${job}/out/data.bin
  - name: many
    glob: many/*.txt
    to: \${job}/many/\${basename}
  - name: big
    path: big.dat
    to: \${job}/big.dat
EOF

publish() {
	local job=$1
	shift
	"$JOBPUB" publish --job "$job" --manifest "$MAN" --workdir "$WORK" --db "$DB" "$@"
}

# start_publish JOB [DB]: in the background, pid in PUB.
start_publish() {
	"$JOBPUB" publish --job "$1" --manifest "$MAN" --workdir "$WORK" --db "${2:-$DB}" \
		>"$T/pub-$1.out" 2>"$T/pub-$1.err" &
	PUB=$!
	bg_started "$PUB"
}

kill_publish() {
	kill -KILL "$PUB"
	wait "$PUB" 2>/dev/null || true
}

# stop_mid_big JOB [ARCH]: stops JOB's publisher while big.dat is staged in part.
stop_mid_big() {
	local tmp
	wait_until "$PUB" "a temporary big.dat with data (job $1)" has_temp "${2:-$ARCH}/$1" big.dat 0
	kill -STOP "$PUB"
	tmp=$(find "${2:-$ARCH}/$1" -name '.jobpub-*big.dat' | head -n 1)
	[ "$(stat -c %s "$tmp")" -lt "$SIZE" ] ||
		hard_error "publish wrote all of big.dat before it could be stopped; make SIZE larger"
}

# any_final JOB: some final (non-temporary) name of JOB exists.
any_final() {
	[ -e "$ARCH/$1/out/result.txt" ] || [ -e "$ARCH/$1/many/f001.txt" ] ||
		[ -e "$ARCH/$1/many/f$NMANY.txt" ] || [ -e "$ARCH/$1/big.dat" ]
}

# finals JOB: the job's final names, relative to $ARCH/JOB.
finals() {
	[ -d "$ARCH/$1" ] || return 0
	(cd "$ARCH/$1" && find . -type f ! -name '.jobpub-*' | sed 's|^\./||' | LC_ALL=C sort)
}

# temps [DIR]: every temporary file below DIR (default $ARCH).
temps() {
	find "${1:-$ARCH}" -name '.jobpub-*' -type f | LC_ALL=C sort
}

# finals_complete JOB: every final name of JOB holds exactly its source.
finals_complete() {
	local f
	for f in $(finals "$1"); do
		cmp -s "$WORK/$f" "$ARCH/$1/$f" || fail "job $1: final name $f does not hold its source"
	done
}

# lock_catalog: a sqlite3 of the test takes the catalogue's write lock and keeps it until
# unlock_catalog.  Returns once the lock is held.
lock_catalog() {
	local i=0
	mkfifo "$T/lockfifo"
	sqlite3 -batch -bail "$DB" <"$T/lockfifo" >"$T/lock.out" 2>&1 &
	LOCKER=$!
	bg_started "$LOCKER"
	exec 3>"$T/lockfifo"
	printf '.timeout 5000\nBEGIN EXCLUSIVE;\nSELECT %s;\n' "'lock-held'" >&3
	until grep -q '^lock-held$' "$T/lock.out"; do
		i=$((i + 1))
		if [ "$i" -ge 500 ] || ! kill -0 "$LOCKER" 2>/dev/null; then
			show "$T/lock.out"
			hard_error "could not lock $DB from another process"
		fi
		sleep 0.01
	done
}

unlock_catalog() {
	printf 'COMMIT;\n.quit\n' >&3
	exec 3>&-
	wait "$LOCKER" || fail "the locking sqlite3 failed: $(cat "$T/lock.out")"
	rm -f "$T/lockfifo"
}

# ---- the kills ----------------------------------------------------------------------------------
# Job 1: mid-way through big.dat.
start_publish 1
stop_mid_big 1
kill_publish
# Job 2: as soon as its first temporary name exists.
start_publish 2
wait_until "$PUB" "a temporary file of job 2" has_temp "$ARCH/2"
kill_publish
# Job 3: once a final name exists.  From the moment job 3 stages until it is killed, the test
# holds the catalogue's write lock: job 3 cannot record its success first, however loaded the
# machine, so the kill lands between its first commit and its catalogue record.
start_publish 3
wait_until "$PUB" "a temporary file of job 3" has_temp "$ARCH/3"
lock_catalog
until any_final 3; do
	alive "$PUB" || { show "$T/pub-3.err"; fail "job 3 ended before a final name appeared"; }
done
kill_publish
unlock_catalog
[ -n "$(finals 3)" ] || fail "job 3: no final name after the kill"
# Job 4: published, for the reports on missing and unreferenced files.
expect_rc 0 publish 4
for j in 1 2 3; do
	assert_eq "$(row_status "$DB" jobs "'$j'")" publishing "status of killed job $j"
done
[ -n "$(temps)" ] || fail "the kills left no temporary file"
printf 'killed: job 1 %s temps, job 2 %s temps, job 3 %s finals %s temps\n' \
	"$(temps "$ARCH/1" | wc -l)" "$(temps "$ARCH/2" | wc -l)" "$(finals 3 | wc -l)" \
	"$(temps "$ARCH/3" | wc -l)"

# ---- no final name holds a partial file --------------------------------------------------------
no_partial_finals() {
	local j
	assert_eq "$(finals 1)$(finals 2)" "" "final names of jobs 1 and 2 (killed before any commit)"
	for j in 1 2 3 4; do
		finals_complete "$j"
	done
	assert_eq "$(finals 4 | wc -l)" "$NFILES" "files of job 4"
}

# ---- gc, dry run: lists every temporary file with size and age, deletes nothing ----------------
gc_dry_run() {
	local f
	snapshot "$ARCH" "$T/snap1"
	expect_rc 0 "$JOBPUB" gc --db "$DB" --older-than 0
	for f in $(temps); do
		assert_grep "^ *temporary +file://$f +[0-9.]+ [KMG]?i?B +[0-9.]+ h old" "$OUT"
	done
	# Job 3's committed files have no catalogue row yet: reported, not to be deleted.
	for f in $(finals 3); do
		assert_grep "^ *unreferenced +file://$ARCH/3/$f " "$OUT"
	done
	assert_no_grep 'in-use' "$OUT"
	assert_grep "^1 destination: $(temps | wc -l) temporary files" "$OUT"
	snapshot "$ARCH" "$T/snap2"
	cmp -s "$T/snap1" "$T/snap2" || fail "gc without --apply changed the destination"
}

# ---- gc --older-than 24h --apply: young temporary files stay, an old stray one goes -------------
gc_keeps_young() {
	local stray=$ARCH/2/.jobpub-fedcba9876543210.stray
	printf 'left by a publisher long gone\n' >"$stray"
	touch -d '3 days ago' "$stray"
	temps | grep -v -F "$stray" >"$T/young1" || true
	expect_rc 0 "$JOBPUB" gc --db "$DB" --older-than 24h --apply
	assert_grep "^ *temporary +file://$stray .* deleted" "$OUT"
	assert_absent "$stray"
	temps >"$T/young2"
	cmp -s "$T/young1" "$T/young2" || fail "gc --older-than 24h deleted young temporary files"
	[ -s "$T/young2" ] || fail "no young temporary file left to check"
}

# ---- gc --apply: deletes the killed publishers' files, keeps those of a live publisher ---------
gc_apply() {
	local live f rc=0 left
	start_publish 5
	case_bg "$PUB"
	stop_mid_big 5
	temps "$ARCH/5" >"$T/live"
	expect_rc 0 "$JOBPUB" gc --db "$DB" --older-than 0 --apply
	for f in $(cat "$T/live"); do
		assert_grep "^ *in-use +file://$f " "$OUT"
		[ -e "$f" ] || fail "gc --apply deleted $f, held by a live publisher"
	done
	kill -CONT "$PUB"
	wait "$PUB" || rc=$?
	[ "$rc" -eq 0 ] || { show "$T/pub-5.err"; fail "job 5 exited $rc after gc"; }
	assert_eq "$(row_status "$DB" jobs "'5'")" published "status of job 5"
	left=$(temps "$ARCH/1"; temps "$ARCH/2"; temps "$ARCH/3")
	[ -z "$left" ] || fail "gc --older-than 0 --apply left $(echo "$left" | wc -l) temporary" \
		"files of the killed jobs, e.g. $(echo "$left" | head -n 1)"
}

# ---- gc reports missing and unreferenced files, deletes neither --------------------------------
gc_reports() {
	local gone=$ARCH/4/out/data.bin foreign=$ARCH/4/notes.txt
	mv "$gone" "$T/data.bin.saved"
	# Put everything back however the case ends: the cases after it need job 4 intact.
	trap 'mv "$T/data.bin.saved" "$ARCH/4/out/data.bin"; rm -f "$ARCH/4/notes.txt"' EXIT
	printf 'put here by hand\n' >"$foreign"
	expect_rc 0 "$JOBPUB" gc --db "$DB" --older-than 0 --apply
	assert_grep "^ *missing +file://$gone +\(job 4\)" "$OUT"
	assert_grep "^ *unreferenced +file://$foreign " "$OUT"
	assert_grep ', 1 missing, 1 unreferenced, 0 displaced$' "$OUT"
	[ -e "$foreign" ] || fail "gc --apply deleted the unreferenced $foreign"
	assert_absent "$gone"
	expect_rc 0 "$JOBPUB" gc --db "$DB" --older-than 0 --json
	assert_json "$OUT"
	python3 - "$OUT" >"$T/kinds" <<'EOF' || fail "gc --json: not the expected document"
import json, sys
d = json.load(open(sys.argv[1]))
for o in d["objects"]:
    print(o["kind"], o["remote"], o.get("job", "-"))
print("counts", d["missing"], d["unreferenced"])
EOF
	assert_grep_fixed "missing file://$gone 4" "$T/kinds"
	assert_grep_fixed "unreferenced file://$foreign -" "$T/kinds"
	assert_grep_fixed "counts 1 1" "$T/kinds"
}

# ---- gc finds a destination where a killed publish is the only trace ----------------------------
gc_killed_alone() {
	local db=$T/alone.db arch=$T/alone
	sed "s|$URL|file://$arch|" "$MAN" >"$T/alone.yaml"
	"$JOBPUB" publish --job 1 --manifest "$T/alone.yaml" --workdir "$WORK" --db "$db" \
		>"$T/alone.out" 2>"$T/alone.err" &
	PUB=$!
	case_bg "$PUB"
	stop_mid_big 1 "$arch"
	kill_publish
	[ -n "$(temps "$arch")" ] || fail "the killed publish left no temporary file"
	expect_rc 0 "$JOBPUB" gc --db "$db" --older-than 0
	for f in $(temps "$arch"); do
		assert_grep_fixed "file://$f" "$OUT"
	done
}

# ---- republish brings every killed job to 'published' ------------------------------------------
republish_killed() {
	local j
	# The killed jobs say 'publishing' (their publisher never came back): that is what to pick.
	expect_rc 0 "$JOBPUB" republish --db "$DB" --status publishing --dry-run
	for j in 1 2 3; do
		assert_grep "^job $j: would republish \(status publishing\)" "$OUT"
	done
	assert_eq "$(grep -c '^job ' "$OUT")" 3 "jobs the dry run lists"
	assert_grep '^republish: 3 jobs$' "$OUT"
	assert_eq "$(row_status "$DB" jobs "'1'")" publishing "status of job 1 after the dry run"

	expect_rc 0 "$JOBPUB" republish --db "$DB" --job 1
	assert_grep '^job 1: published$' "$OUT"
	assert_grep '^republish: 1 published, 0 still failing$' "$OUT"
	assert_eq "$(row_status "$DB" jobs "'2'")" publishing "status of job 2 after republish --job 1"

	expect_rc 0 "$JOBPUB" republish --db "$DB" --status publishing --parallel 2
	assert_grep '^job 2: published$' "$OUT"
	assert_grep '^job 3: published$' "$OUT"
	assert_grep '^republish: 2 published, 0 still failing$' "$OUT"
	for j in 1 2 3 4 5; do
		assert_eq "$(row_status "$DB" jobs "'$j'")" published "status of job $j"
	done
	for j in 1 2 3; do
		assert_eq "$(sql "$DB" "SELECT group_concat(outcome, ',') FROM (SELECT outcome FROM
			jobpub_attempts WHERE job = '$j' ORDER BY id)")" "abandoned,published" \
			"attempts of job $j"
	done
	assert_eq "$(sql "$DB" "SELECT count(*) FROM jobpub_leases")" 0 "leases left"
}

# ---- nothing left over ---------------------------------------------------------------------------
nothing_left() {
	local j
	expect_rc 0 "$JOBPUB" gc --db "$DB" --older-than 0 --apply
	assert_no_temps "$ARCH"
	expect_rc 0 "$JOBPUB" gc --db "$DB" --older-than 0
	assert_grep '^1 destination: 0 temporary files .* 0 in use, 0 missing, 0 unreferenced, 0 displaced$' "$OUT"
	for j in 1 2 3 4 5; do
		assert_eq "$(finals "$j" | wc -l)" "$NFILES" "files of job $j"
		finals_complete "$j"
	done
}

# ---- verify --------------------------------------------------------------------------------------
verify_ok() {
	local j
	expect_rc 0 "$JOBPUB" verify --db "$DB"
	for j in 1 2 3 4 5; do
		assert_grep "^job $j: $NFILES of $NFILES files as recorded - ok$" "$OUT"
	done
	expect_rc 0 "$JOBPUB" verify --db "$DB" --deep
	expect_rc 0 "$JOBPUB" verify --db "$DB" 3 4
}

verify_finds() {
	local f=$ARCH/4/out/data.bin
	cp "$f" "$T/saved"
	trap 'cp "$T/saved" "$ARCH/4/out/data.bin"' EXIT
	# One byte changed, same size: only --deep can tell. The data is random, so flip the
	# byte's bits instead of writing a fixed value it may already hold.
	python3 -c 'import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(1000); b = f.read(1); f.seek(1000); f.write(bytes([b[0] ^ 0xff]))' "$f"
	cmp -s "$f" "$T/saved" && fail "the byte did not change"
	expect_rc 0 "$JOBPUB" verify --db "$DB" 4
	expect_rc 1 "$JOBPUB" verify --db "$DB" --deep 4
	assert_grep "^job 4: file://$f: .*(differ|sha256)" "$OUT"
	assert_eq "$(grep -c 'differ' "$OUT")" 1 "files --deep finds different"
	expect_rc 1 "$JOBPUB" verify --db "$DB" --deep
	assert_grep "^job 4: file://$f: " "$OUT"
	assert_grep "^job 3: $NFILES of $NFILES files as recorded - ok$" "$OUT"

	rm "$f"
	expect_rc 1 "$JOBPUB" verify --db "$DB"
	assert_grep "^job 4: file://$f: missing$" "$OUT"
	expect_rc 1 "$JOBPUB" verify --db "$DB" --json
	assert_json "$OUT"
	python3 - "$OUT" "file://$f" >"$T/results" <<'EOF' || fail "verify --json: unexpected document"
import json, sys
d = json.load(open(sys.argv[1]))
bad = [x for x in d["files"] if x["result"] != "ok"]
print(len(d["files"]), d["ok"], d["bad"], bad[0]["job"], bad[0]["remote"] == sys.argv[2],
      bad[0]["result"])
EOF
	assert_eq "$(cat "$T/results")" "$((5 * NFILES)) $((5 * NFILES - 1)) 1 4 True missing" \
		"verify --json: files, ok, bad, and the bad one"
	cp "$T/saved" "$f"
	expect_rc 0 "$JOBPUB" verify --db "$DB" --deep 4

	expect_rc 1 "$JOBPUB" verify --db "$DB" 999
	assert_grep 'job 999' "$OUT"
}

run_case no_partial_finals
run_case gc_dry_run
run_case gc_keeps_young
run_case gc_apply
run_case gc_killed_alone
run_case republish_killed
run_case gc_reports
run_case nothing_left
run_case verify_ok
run_case verify_finds
finish

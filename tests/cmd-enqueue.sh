#!/bin/sh
# `jobpub enqueue` writes a spool entry (mode 0600, atomically, paths made absolute, $JOBPUB_DB
# and $JOBPUB_DEST captured) after checking the manifest, and publishes nothing; its errors are
# the publish's (64 usage, 65 manifest with FILE:LINE:COL, 66 missing input, 78 no
# destination) and leave no entry.  `jobpub publish --spool --job ID` then publishes from the
# entry and removes it; a failed publish keeps it (the job is failed_storage); a missing,
# corrupt or untrusted entry is 66, 65 or 77.
. "$(dirname "$0")/lib.sh"

need realpath

# jget FILE PATH: a value of the JSON file FILE ('$.manifest', '$.sets.model'), via SQLite's
# JSON functions; NULL prints as NULL.
jget() {
	sqlite3 -batch :memory: "SELECT quote(json_extract(readfile('$1'), '$2'))" ||
		fail "sqlite3 cannot read $1"
}
# jtype FILE PATH: the JSON type of a value (text, integer, null, object, ...).
jtype() {
	sqlite3 -batch :memory: "SELECT json_type(readfile('$1'), '$2')" || fail "sqlite3 cannot read $1"
}

# enqueue_mini [OPTION]...: enqueue job 1 of the minimal job into $T/spool.
enqueue_mini() {
	"$JOBPUB" enqueue --job 1 --manifest "$MMAN" --workdir "$MJOB" --db "$MDB" \
		--spool "$T/spool" "$@"
}

# A job script runs in its work directory with relative paths: the entry holds absolute ones.
relative_paths() {
	make_mini
	rm -rf "$T/spool"
	cd "$MINI" || fail "cd $MINI"
	expect_rc 0 "$JOBPUB" enqueue --job 1 --manifest manifest.yaml --workdir job \
		--db catalog.db --set model=kt --spool "$T/spool"
	e=$T/spool/1.json
	assert_eq "$(cat "$ERR")" "jobpub: job 1: queued in $T/spool/1.json" "the message"
	assert_eq "$(wc -c <"$OUT" | tr -d ' ')" 0 "stdout"
	[ -f "$e" ] || fail "no entry at $e"
	assert_eq "$(stat -c %a "$e")" 600 "the entry's mode"
	assert_eq "$(stat -c %u "$e")" "$(id -u)" "the entry's owner"
	assert_eq "$(stat -c %a "$T/spool")" 700 "the spool directory's mode (created)"
	assert_eq "$(jget "$e" '$.job')" "'1'" "job"
	assert_eq "$(jget "$e" '$.manifest')" "'$(realpath "$MMAN")'" "manifest"
	assert_eq "$(jget "$e" '$.workdir')" "'$(realpath "$MJOB")'" "workdir"
	assert_eq "$(jget "$e" '$.db')" "'$(realpath "$MDB")'" "db"
	assert_eq "$(jget "$e" '$.dest')" NULL "dest"
	assert_eq "$(jget "$e" '$.sets.model')" "'kt'" "sets.model"
	assert_eq "$(jtype "$e" '$.uid')" integer "uid type"
	assert_eq "$(jget "$e" '$.uid')" "$(id -u)" "uid"
	assert_grep '"created":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z"' "$e"
	assert_eq "$(find "$T/spool" | wc -l | tr -d ' ')" 2 "entries in the spool (no temporary)"
	# Nothing published, nothing recorded.
	assert_absent "$MARCHIVE"
	assert_eq "$(sql "$MDB" "SELECT status FROM runs WHERE id = 1")" running "status"
	assert_eq "$(n_attempts "$MDB")" 0 "attempt rows"
}

# $JOBPUB_SPOOL, $JOBPUB_DB and $JOBPUB_DEST are read at enqueue time: the epilogue has not the
# job's environment.  A catalogue that does not exist yet is made absolute by its directory.
environment() {
	make_mini
	mkdir "$T/cwd"
	cd "$T/cwd" || fail "cd $T/cwd"
	# The manifest maps to an existing table: the catalogues must exist (enqueue opens neither).
	cp "$MDB" new.db
	cp "$MDB" jobpub.db
	expect_rc 0 env JOBPUB_SPOOL="$T/envspool" JOBPUB_DB=new.db \
		JOBPUB_DEST="file://$T/elsewhere/\${model}" "$JOBPUB" enqueue --job 77 --manifest "$MMAN" --workdir "$MJOB" \
		--set model=m1
	e=$T/envspool/77.json
	assert_grep_fixed "queued in $T/envspool/77.json" "$ERR"
	assert_eq "$(jget "$e" '$.db')" "'$(realpath "$T/cwd")/new.db'" "db from \$JOBPUB_DB"
	assert_eq "$(jget "$e" '$.dest')" "'file://$T/elsewhere/\${model}'" "dest from \$JOBPUB_DEST"
	cmp -s "$MDB" "$T/cwd/new.db" || fail "enqueue changed the catalogue"
	# --dest and --db beat the environment; no --db and no $JOBPUB_DB: ./jobpub.db.
	expect_rc 0 env JOBPUB_SPOOL="$T/envspool" JOBPUB_DEST=file:///nowhere \
		"$JOBPUB" enqueue --job 78 --manifest "$MMAN" --workdir "$MJOB" \
		--dest "$MURL"
	e=$T/envspool/78.json
	assert_eq "$(jget "$e" '$.dest')" "'$MURL'" "--dest beats \$JOBPUB_DEST"
	assert_eq "$(jget "$e" '$.db')" "'$(realpath "$T/cwd")/jobpub.db'" "default db"
	assert_eq "$(jtype "$e" '$.sets')" object "sets without --set"
}

# Enqueueing again replaces the entry.
replace() {
	make_mini
	rm -rf "$T/spool"
	expect_rc 0 enqueue_mini --set model=a
	expect_rc 0 enqueue_mini --set model=b
	assert_eq "$(jget "$T/spool/1.json" '$.sets.model')" "'b'" "the second entry"
	assert_eq "$(find "$T/spool" -type f | wc -l | tr -d ' ')" 1 "files in the spool"
}

# Every error exits with the publish's code and leaves no entry.
errors() {
	make_mini
	rm -rf "$T/spool"
	expect_rc 64 "$JOBPUB" enqueue --manifest "$MMAN" --workdir "$MJOB" --spool "$T/spool"
	assert_grep '^jobpub: --job is required' "$ERR"
	assert_grep '^usage: jobpub enqueue ' "$ERR"
	expect_rc 64 "$JOBPUB" enqueue --job 1 --manifest "$MMAN" --spool "$T/spool"
	assert_grep '^jobpub: --workdir is required' "$ERR"
	expect_rc 64 enqueue_mini --job 'a/b'
	expect_rc 64 enqueue_mini --set 'no-equals'
	expect_rc 64 enqueue_mini --bogus
	expect_rc 64 enqueue_mini extra-arg

	expect_rc 66 "$JOBPUB" enqueue --job 1 --manifest "$T/nope.yaml" --workdir "$MJOB" \
		--spool "$T/spool"
	assert_grep_fixed "$T/nope.yaml" "$ERR"
	# A work directory that does not exist yet (job scripts enqueue first) is fine; one below
	# a file, or with '..' below the part that does not exist, is not.
	expect_rc 0 "$JOBPUB" enqueue --job 5 --manifest "$MMAN" --workdir "$T/nojob/run-5" \
		--db "$MDB" --spool "$T/spool"
	assert_eq "$(jget "$T/spool/5.json" '$.workdir')" "'$(realpath "$T")/nojob/run-5'" "future workdir"
	(cd "$T" && "$JOBPUB" enqueue --job 6 --manifest "$MMAN" --workdir later/run-6 \
		--db "$MDB" --spool "$T/spool") >"$OUT" 2>"$ERR" || { show "$ERR"; fail "relative future workdir"; }
	assert_eq "$(jget "$T/spool/6.json" '$.workdir')" "'$(realpath "$T")/later/run-6'" "relative future workdir"
	rm -f "$T/spool/5.json" "$T/spool/6.json"
	expect_rc 66 "$JOBPUB" enqueue --job 1 --manifest "$MMAN" --workdir "$MMAN/sub" \
		--spool "$T/spool"
	assert_grep 'Not a directory' "$ERR"
	expect_rc 66 "$JOBPUB" enqueue --job 1 --manifest "$MMAN" --workdir "$T/nojob/../x" \
		--spool "$T/spool"
	assert_grep_fixed "'.' or '..' below" "$ERR"
	expect_rc 66 "$JOBPUB" enqueue --job 1 --manifest "$MMAN" --workdir "$MMAN" \
		--spool "$T/spool"
	assert_grep 'not a directory' "$ERR"
	expect_rc 66 enqueue_mini --db "$T/no/such/dir/cat.db"
	assert_grep_fixed "$T/no/such/dir/cat.db" "$ERR"
	# The manifest maps to an existing table (runs): a catalogue that does not exist is a typo,
	# said now, while the job script runs, not later in the epilog; no entry is written.
	expect_rc 66 enqueue_mini --db "$MINI/typo.db"
	assert_grep "^jobpub: catalog: $MINI/typo.db: No such file or directory .*check --db\)\$" "$ERR"
	assert_eq "$(wc -l <"$ERR")" 1 "lines on stderr"
	assert_absent "$MINI/typo.db"
	assert_absent "$T/spool/1.json"

	# A YAML error: FILE:LINE:COL as the user wrote FILE.
	printf 'destination: %s\noutputs:\n  - name: a\n    path: [x\n' "$MURL" >"$T/bad.yaml"
	cd "$T" || fail "cd $T"
	expect_rc 65 "$JOBPUB" enqueue --job 1 --manifest bad.yaml --workdir "$MJOB" \
		--spool "$T/spool"
	assert_grep '^jobpub: bad\.yaml:[0-9]+:[0-9]+: ' "$ERR"
	# An unknown variable: where it stands.
	sed 's|results/\${row.name}/result.txt|results/${model}/result.txt|' "$MMAN" >"$T/var.yaml"
	line=$(grep -n 'results/${model}' "$T/var.yaml" | cut -d: -f1)
	col=$(grep 'results/${model}' "$T/var.yaml" | awk '{ print index($0, "${model}") }')
	expect_rc 65 "$JOBPUB" enqueue --job 1 --manifest "$T/var.yaml" --workdir "$MJOB" \
		--spool "$T/spool"
	assert_grep_fixed "jobpub: $T/var.yaml:$line:$col: " "$ERR"
	assert_grep_fixed 'model' "$ERR"
	# An unknown key.
	sed 's|^catalog:|catalogue:|' "$MMAN" >"$T/key.yaml"
	expect_rc 65 "$JOBPUB" enqueue --job 1 --manifest "$T/key.yaml" --workdir "$MJOB" \
		--spool "$T/spool"
	assert_grep_fixed "jobpub: $T/key.yaml:" "$ERR"
	assert_grep 'catalogue' "$ERR"
	# No destination anywhere.
	grep -v '^destination:' "$MMAN" >"$T/nodest.yaml"
	expect_rc 78 "$JOBPUB" enqueue --job 1 --manifest "$T/nodest.yaml" --workdir "$MJOB" \
		--spool "$T/spool"
	assert_grep 'no destination' "$ERR"
	# A --dest template with an unknown variable: usage.
	expect_rc 64 enqueue_mini --dest 'file:///x/${nope}'
	# A malformed destination, given or in the manifest: configuration, refused now.
	expect_rc 78 enqueue_mini --dest 'sftp://'
	assert_grep "^jobpub: sftp: destination 'sftp://'" "$ERR"
	sed 's|^destination:.*|destination: ftp://x|' "$MMAN" >"$T/ftp.yaml"
	expect_rc 78 "$JOBPUB" enqueue --job 1 --manifest "$T/ftp.yaml" --workdir "$MJOB" \
		--spool "$T/spool"
	assert_grep_fixed "jobpub: $T/ftp.yaml:1:" "$ERR"
	assert_grep_fixed "unknown scheme 'ftp'" "$ERR"
	assert_absent "$T/spool/1.json"
	[ ! -e "$T/spool" ] || [ -z "$(ls -A "$T/spool")" ] || fail "the spool is not empty: $(ls -A "$T/spool")"
	assert_absent "$MARCHIVE"
}

# A spool directory that cannot be written: 77 or 74, no entry.
unwritable_spool() {
	make_mini
	printf 'a file\n' >"$T/file"
	expect_rc 74 enqueue_mini --spool "$T/file/spool"
	assert_grep_fixed "$T/file" "$ERR"
}

# ---- publish --spool ----

publish_spool() {
	make_mini
	rm -rf "$T/spool"
	expect_rc 0 enqueue_mini
	# From another directory and with nothing but the job ID, as the epilogue runs it.
	cd / || fail "cd /"
	expect_rc 0 env JOBPUB_SPOOL="$T/spool" "$JOBPUB" publish --spool --job 1
	cmp -s "$MJOB/out/result.txt" "$MARCHIVE/results/run-a/result.txt" || fail "result.txt differs"
	cmp -s "$MJOB/out/data.bin" "$MARCHIVE/results/run-a/data.bin" || fail "data.bin differs"
	assert_eq "$(sql "$MDB" "SELECT status FROM runs WHERE id = 1")" published "status"
	assert_eq "$(sql "$MDB" "SELECT result_url FROM runs WHERE id = 1")" \
		"$MURL/results/run-a/result.txt" "result_url"
	assert_eq "$(sql "$MDB" "SELECT manifest || ' ' || workdir FROM jobpub_attempts")" \
		"$(realpath "$MMAN") $(realpath "$MJOB")" "the attempt's manifest and workdir"
	assert_absent "$T/spool/1.json"
	assert_no_temps "$T"
	# Again: no entry any more.
	expect_rc 66 env JOBPUB_SPOOL="$T/spool" "$JOBPUB" publish --spool --job 1
	assert_grep_fixed "no spool entry for job 1 in $T/spool (run \`jobpub enqueue\` from the job script)" "$ERR"
}

# --set values and --dest of the entry are used; the command line beats them.
publish_spool_sets() {
	make_mini
	rm -rf "$T/spool"
	expect_rc 0 enqueue_mini --dest "file://$T/out/\${model}" --set model=m7
	expect_rc 0 env JOBPUB_SPOOL="$T/spool" "$JOBPUB" publish --spool --job 1 --dry-run
	assert_grep_fixed "$T/out/m7/results/run-a/data.bin" "$OUT"
	[ -f "$T/spool/1.json" ] || fail "a dry run removed the entry"
	assert_absent "$T/out"
	expect_rc 0 env JOBPUB_SPOOL="$T/spool" "$JOBPUB" publish --spool --job 1 --set model=m8
	[ -f "$T/out/m8/results/run-a/data.bin" ] || fail "--set on the command line did not win"
	assert_absent "$T/spool/1.json"
	expect_rc 0 enqueue_mini --dest "file://$T/out/\${model}" --set model=m7
	expect_rc 0 env JOBPUB_SPOOL="$T/spool" "$JOBPUB" publish --spool --job 1
	[ -f "$T/out/m7/results/run-a/data.bin" ] || fail "not published under the entry's --dest and --set"
}

# `publish --job ID` without --manifest, and `publish --spool` in a Slurm job ($SLURM_JOB_ID),
# pick the entry up too.
publish_job_alone() {
	make_mini
	rm -rf "$T/spool"
	expect_rc 0 enqueue_mini
	cd / || fail "cd /"
	expect_rc 0 env JOBPUB_SPOOL="$T/spool" "$JOBPUB" publish --job 1
	assert_eq "$(sql "$MDB" "SELECT status FROM runs WHERE id = 1")" published "status"
	assert_absent "$T/spool/1.json"
	make_mini
	expect_rc 0 enqueue_mini
	expect_rc 0 env JOBPUB_SPOOL="$T/spool" SLURM_JOB_ID=1 "$JOBPUB" publish --spool
	assert_eq "$(sql "$MDB" "SELECT status FROM runs WHERE id = 1")" published "status"
	assert_absent "$T/spool/1.json"
}

# In a Slurm job whose catalogue ID is not the Slurm job ID (pdr_run's ids are its own), the
# entry is filed under $SLURM_JOB_ID, all the epilog knows, and publishes the catalogue's job.
slurm_key() {
	make_mini
	rm -rf "$T/spool"
	expect_rc 0 env SLURM_JOB_ID=98765 "$JOBPUB" enqueue --job 1 --manifest "$MMAN" \
		--workdir "$MJOB" --db "$MDB" --spool "$T/spool"
	assert_grep_fixed "queued in $T/spool/98765.json" "$ERR"
	[ -f "$T/spool/98765.json" ] || fail "the entry is not filed under the Slurm job ID"
	assert_absent "$T/spool/1.json"
	assert_eq "$(jget "$T/spool/98765.json" '$.job') $(jget "$T/spool/98765.json" '$.key')" \
		"'1' '98765'" "job and key of the entry"
	cd / || fail "cd /"
	expect_rc 0 env JOBPUB_SPOOL="$T/spool" SLURM_JOB_ID=98765 "$JOBPUB" publish --spool
	assert_eq "$(sql "$MDB" "SELECT status FROM runs WHERE id = 1")" published "status of job 1"
	assert_absent "$T/spool/98765.json"
	# --key names it explicitly; the same key and job give the plain entry.
	make_mini
	expect_rc 0 enqueue_mini --key 1
	[ -f "$T/spool/1.json" ] || fail "--key equal to the job should give 1.json"
	assert_eq "$(jtype "$T/spool/1.json" '$.key')" "" "no key field when it is the job's ID"
	expect_rc 64 enqueue_mini --key 'a/b'
}

# A failed publish keeps the entry and marks the job; fixed, it publishes and removes it.
publish_spool_failure() {
	make_mini
	rm -rf "$T/spool"
	expect_rc 0 enqueue_mini
	mv "$MJOB/out/data.bin" "$T/data.bin"
	expect_rc 66 env JOBPUB_SPOOL="$T/spool" "$JOBPUB" publish --spool --job 1
	assert_eq "$(sql "$MDB" "SELECT status FROM runs WHERE id = 1")" failed_storage "status"
	[ -f "$T/spool/1.json" ] || fail "the entry of a failed publish was removed"
	mv "$T/data.bin" "$MJOB/out/data.bin"
	expect_rc 0 env JOBPUB_SPOOL="$T/spool" "$JOBPUB" publish --spool --job 1
	assert_eq "$(sql "$MDB" "SELECT status FROM runs WHERE id = 1")" published "status"
	assert_absent "$T/spool/1.json"
}

# A corrupt entry (65, naming the file), an untrusted one (77); nothing is published.
publish_spool_bad_entries() {
	make_mini
	mkdir -p "$T/spool"
	chmod 700 "$T/spool"
	printf '{"job": "1", "manifest": ' >"$T/spool/1.json"
	chmod 600 "$T/spool/1.json"
	expect_rc 65 env JOBPUB_SPOOL="$T/spool" "$JOBPUB" publish --spool --job 1
	assert_grep_fixed "$T/spool/1.json:" "$ERR"
	expect_rc 0 enqueue_mini
	chmod 620 "$T/spool/1.json"
	expect_rc 77 env JOBPUB_SPOOL="$T/spool" "$JOBPUB" publish --spool --job 1
	assert_grep_fixed "$T/spool/1.json" "$ERR"
	assert_grep 'writable by group' "$ERR"
	assert_absent "$MARCHIVE"
	assert_eq "$(n_attempts "$MDB")" 0 "attempt rows"
}

"$JOBPUB" publish --help | grep -q -- '--spool' ||
	fail "jobpub publish has no --spool option"
run_case relative_paths
run_case environment
run_case replace
run_case errors
run_case unwritable_spool
run_case publish_spool
run_case publish_spool_sets
run_case publish_job_alone
run_case slurm_key
run_case publish_spool_failure
run_case publish_spool_bad_entries
finish

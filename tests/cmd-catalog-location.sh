#!/bin/sh
# The catalogue is named by a location (issue 15 part 2): a file path, or a sqlite: URL
# (sqlite:PATH, sqlite:///PATH) for the same file; a SCHEME:// URL that no engine claims is
# exit 78 naming the scheme, for every command, and creates nothing (no file named after the
# URL, no spool entry).  A path with a colon that is no URL ("my:cat.db") stays a file.
. "$(dirname "$0")/lib.sh"

make_mini

sqlite_urls() {
	expect_rc 0 publish_mini --db "sqlite://$MDB"
	assert_eq "$(row_status "$MDB" runs)" published "status after sqlite:/// publish"
	expect_rc 0 "$JOBPUB" status --db "sqlite:$MDB" 1
	assert_grep_fixed "published" "$OUT"
	# relative: sqlite:catalog.db from the catalogue's directory
	(cd "$MINI" && "$JOBPUB" status --db sqlite:catalog.db 1) >"$T/rel.out" 2>&1 ||
		fail "status --db sqlite:catalog.db: $(cat "$T/rel.out")"
	assert_grep_fixed "published" "$T/rel.out"
	# SQLite has no host
	expect_rc 78 "$JOBPUB" status --db "sqlite://node1$MDB" 1
	assert_grep "no host" "$ERR"
}

unknown_scheme() {
	make_mini
	mkdir -p "$T/cwd" "$T/spool"
	export JOBPUB_SPOOL="$T/spool"
	cd "$T/cwd"
	for cmd in "publish_mini --db postgresql://node1/jobs" \
		"publish_mini --db postgresql://node1/jobs --dry-run" \
		"$JOBPUB status --db postgresql://node1/jobs 1"; do
		# shellcheck disable=SC2086
		expect_rc 78 $cmd
		assert_grep_fixed "catalog: postgresql://node1/jobs: no catalogue engine for scheme 'postgresql'" "$ERR"
	done
	export JOBPUB_SPOOL=$T/spool
	expect_rc 78 "$JOBPUB" enqueue --job 1 --manifest "$MMAN" \
		--workdir "$MJOB" --db postgresql://node1/jobs --spool "$T/spool"
	assert_grep_fixed "no catalogue engine for scheme 'postgresql'" "$ERR"
	[ -z "$(ls -A "$T/cwd")" ] || fail "files appeared: $(ls -A "$T/cwd")"
	[ -z "$(ls -A "$T/spool")" ] || fail "spool entries appeared: $(ls -A "$T/spool")"
	assert_absent "$MARCHIVE"
}

colon_is_a_file() {
	write_manifest "$T/own.yaml" <<EOT
destination: $MURL
outputs:
  - name: result
    path: out/result.txt
    to: own/result.txt
EOT
	mkdir -p "$T/c"
	cd "$T/c"
	expect_rc 0 publish_mini --manifest "$T/own.yaml" --db "my:cat.db"
	[ -f "$T/c/my:cat.db" ] || fail "no file my:cat.db"
	assert_eq "$(sql "$T/c/my:cat.db" "SELECT status FROM jobs WHERE id = '1'")" published "own table"
}

run_case sqlite_urls
run_case unknown_scheme
run_case colon_is_a_file
finish

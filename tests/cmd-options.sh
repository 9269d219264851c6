#!/bin/sh
# Backend options: -o BACKEND.KEY=VALUE and the manifest's BACKEND: section reach the backend
# (the command line's value beating the manifest's), the older flags set the same keys, and
# what no backend claims is refused where it was given, naming it: a usage error (64) on the
# command line, a manifest error (65, FILE:LINE:COL) in the manifest, before anything is
# recorded.  A secret is refused in both without its value being shown.  publish, republish,
# verify and gc take -o; `jobpub help options` lists the keys.
. "$(dirname "$0")/lib.sh"

# refused RC PATTERN [OPTION]...: publish_mini with the options exits RC with one "jobpub:" line
# matching PATTERN, and changes nothing: the catalogue byte for byte, no destination directory.
refused() {
	local rc=$1 pattern=$2
	shift 2
	cp "$MDB" "$T/before.db"
	expect_rc "$rc" env HOME="$T/nohome" AWS_ACCESS_KEY_ID=k AWS_SECRET_ACCESS_KEY=s \
		"$JOBPUB" publish --job 1 --manifest "$MMAN" --workdir "$MJOB" --db "$MDB" "$@"
	assert_grep "^jobpub: .*$pattern" "$ERR"
	assert_eq "$(grep -c '^jobpub: ' "$ERR")" 1 "jobpub: lines on stderr"
	cmp -s "$T/before.db" "$MDB" || fail "the catalogue changed"
	assert_absent "$MARCHIVE"
	assert_no_temps "$T"
}

# with_section TEXT: the mini manifest with TEXT (a backend section) appended, as $MMAN.
with_section() {
	printf '%s\n' "$1" >>"$MMAN"
}

cli_unknown_key() {
	make_mini
	refused 64 "-o s3.bogus: unknown option \(s3 has endpoint, region, path-style, part-size\)" \
		-o s3.bogus=1
	assert_grep '^usage: jobpub publish' "$ERR"
	refused 64 "-o nosuch.bucket: unknown option \(options are BACKEND.KEY, for BACKEND one of: sftp, s3" \
		--option nosuch.bucket=x
	refused 64 "-o part-size: unknown option" -o part-size=64M
	refused 64 "-o sftp.part-size: unknown option \(sftp has identity, known-hosts, accept-new-host-key\)" \
		-o sftp.part-size=64M
	refused 64 "-o s3.endpoint: expected BACKEND.KEY=VALUE" -o s3.endpoint
}

cli_bad_value() {
	make_mini
	refused 64 "-o s3.part-size: '1k' is not a size from 5MiB to 5GiB" -o s3.part-size=1k
	refused 64 "--part-size 1k: expected 5MiB to 5GiB" --part-size 1k
	refused 64 "-o s3.path-style: expected true or false" -o s3.path-style=yes
	refused 64 "-o s3.region: 'a/b' is not a region name" -o s3.region=a/b
	refused 64 "-o sftp.identity: empty value" -o sftp.identity=
}

# A secret on the command line: refused, and its value is nowhere in the output.
cli_secret() {
	make_mini
	refused 64 "-o s3.secret-access-key: a secret is read from the environment only .*set AWS_SECRET_ACCESS_KEY" \
		-o s3.secret-access-key=TopSecret42
	assert_no_grep TopSecret42 "$ERR"
	assert_no_grep TopSecret42 "$OUT"
	refused 64 "-o sftp.passphrase: .*JOBPUB_SSH_PASSPHRASE_FILE" -o sftp.passphrase=TopSecret42
	assert_no_grep TopSecret42 "$ERR"
	refused 64 "-o: expected BACKEND.KEY=VALUE" -o 'AKIA/TopSecret42'
	assert_no_grep TopSecret42 "$ERR"
}

manifest_unknown_key() {
	make_mini
	with_section "s3:
  endpoint: http://127.0.0.1:9
  bogus: 1"
	n=$(grep -n '^  bogus' "$MMAN" | cut -d: -f1)
	refused 65 "$MMAN:$n:3: unknown key 'bogus' in s3 \(expected endpoint, region, path-style, part-size\)"
	make_mini
	with_section "nosuch:
  bucket: x"
	n=$(grep -n '^nosuch:' "$MMAN" | cut -d: -f1)
	refused 65 "$MMAN:$n:1: unknown key 'nosuch' \(expected destination, catalog, outputs, sftp, s3"
	make_mini
	with_section "s3:
  part-size: 1MiB"
	n=$(grep -n 'part-size' "$MMAN" | cut -d: -f1)
	refused 65 "$MMAN:$n:14: s3.part-size: '1MiB' is not a size from 5MiB to 5GiB \(e.g. 64MiB\)"
}

manifest_secret() {
	make_mini
	with_section "s3:
  secret-access-key: TopSecret42"
	n=$(grep -n 'secret-access-key' "$MMAN" | cut -d: -f1)
	refused 65 "$MMAN:$n:3: s3.secret-access-key: a secret is read from the environment only"
	assert_no_grep TopSecret42 "$ERR"
	make_mini
	with_section "sftp:
  accept-new-host-key: true"
	n=$(grep -n 'accept-new' "$MMAN" | cut -d: -f1)
	refused 65 "$MMAN:$n:3: sftp.accept-new-host-key: only on the command line"
}

# The value reaches the backend's check (78 before anything is recorded), from the manifest or
# the command line, the command line's winning; -o and the older flag set the same key.
reaches_the_backend() {
	make_mini
	mkdir -p "$T/nohome"
	refused 78 "identity file $T/cli-key: No such file" --dest sftp://localhost/x \
		-o sftp.identity="$T/cli-key"
	refused 78 "identity file $T/flag-key: No such file" --dest sftp://localhost/x \
		--identity "$T/flag-key"
	with_section "sftp:
  identity: $T/manifest-key"
	refused 78 "identity file $T/manifest-key: No such file" --dest sftp://localhost/x
	refused 78 "identity file $T/cli-key: No such file" --dest sftp://localhost/x \
		-o sftp.identity="$T/cli-key"
	# later on the command line wins, -o or flag
	refused 78 "identity file $T/second: No such file" --dest sftp://localhost/x \
		--identity "$T/first" -o sftp.identity="$T/second"
	make_mini
	with_section "s3:
  endpoint: ftp://from-manifest"
	refused 78 "endpoint 'ftp://from-manifest'" --dest s3://bucket/x
	refused 78 "endpoint 'ftp://from-cli'" --dest s3://bucket/x -o s3.endpoint=ftp://from-cli
	refused 78 "endpoint 'ftp://from-flag'" --dest s3://bucket/x --s3-endpoint ftp://from-flag
	# another backend's option is checked but not used: the file:// publish works
	make_mini
	expect_rc 0 publish_mini -o s3.part-size=64MiB --identity "$T/no-key"
	assert_eq "$(row_status "$MDB" runs)" published "status"
}

# The other commands that open destinations take -o and the older flags too.
other_commands() {
	expect_rc 64 "$JOBPUB" verify --db "$T/nope.db" -o s3.bogus=1
	assert_grep '^jobpub: -o s3.bogus: unknown option' "$ERR"
	assert_grep '^usage: jobpub verify' "$ERR"
	expect_rc 64 "$JOBPUB" gc --db "$T/nope.db" -o s3.secret-access-key=TopSecret42
	assert_no_grep TopSecret42 "$ERR"
	expect_rc 64 "$JOBPUB" republish --db "$T/nope.db" --option s3.bogus=1
	assert_grep '^jobpub: -o s3.bogus: unknown option' "$ERR"
	# accepted: the missing catalogue is what stops them (66)
	expect_rc 66 "$JOBPUB" gc --db "$T/nope.db" -o sftp.identity=/k --older-than 1h --part-size 8M
	expect_rc 66 "$JOBPUB" verify --db "$T/nope.db" -o s3.endpoint=http://e --accept-new-host-key
	expect_rc 64 "$JOBPUB" gc --db "$T/nope.db" --older-than soon
	assert_grep 'older-than soon' "$ERR"
	assert_absent "$T/nope.db"
}

help_lists_them() {
	expect_rc 0 "$JOBPUB" help options
	cp "$OUT" "$T/options"
	for k in sftp.identity=FILE sftp.known-hosts=FILE sftp.accept-new-host-key=true s3.endpoint=URL \
		s3.region=NAME s3.path-style=true s3.part-size=SIZE s3.secret-access-key \
		s3.session-token sftp.passphrase; do
		assert_grep "^  $k" "$T/options"
	done
	assert_grep '^      --s3-endpoint URL +-o s3.endpoint=URL$' "$T/options"
	for c in publish republish verify gc; do
		expect_rc 0 "$JOBPUB" "$c" --help
		assert_grep '^  -o, --option KEY=VALUE' "$OUT"
		assert_grep '^  s3.part-size=SIZE' "$OUT"
	done
	expect_rc 0 "$JOBPUB" status --help
	assert_no_grep 's3.part-size' "$OUT"
}

run_case cli_unknown_key
run_case cli_bad_value
run_case cli_secret
run_case manifest_unknown_key
run_case manifest_secret
run_case reaches_the_backend
run_case other_commands
run_case help_lists_them
finish

#!/bin/sh
# HDF5/HDF4 validation (`check: auto | hdf5 | hdf4 | none`) and `attributes:`.  A valid HDF5 file
# is published and its requested root attributes land in jobpub_attributes; a truncated one
# fails the job before anything is staged (65, "truncated HDF5 file (EOF address A, file size
# S)", failed_storage, the reason in the attempt row), as do a corrupted one and a file without
# the signature `check:` asks for; `check: auto` refuses a file named as HDF (.h5 .hdf5 .he5 .hdf
# .h4 .hdf4, any case) without an HDF signature (empty, text) and publishes other files as they are.
# `manifest check --workdir` and `publish --dry-run` report the same errors and change nothing.
# (A user block in front of the superblock is covered by tests/test_validate.c.)
. "$(dirname "$0")/lib.sh"
need truncate dd od grep cp

[ -n "${MKHDF5:-}" ] || hard_error "MKHDF5 is not set (the path of the built mkhdf5)"
[ -x "$MKHDF5" ] || hard_error "MKHDF5=$MKHDF5 is not an executable"

H5=out/pdrstruct.hdf5 # where every case puts its file, relative to the work directory

# Fixtures, made once.  VALID has root attributes set on the command line (so their values are
# known here); DEFAULTS has mkhdf5's defaults (n_surface 1e4, mass 10).
FIX=$T/fixtures
mkdir "$FIX"
VALID=$FIX/valid.hdf5
DEFAULTS=$FIX/defaults.hdf5
"$MKHDF5" "$VALID" struct 2 n_surface=3162.5 mass=7.25 model_name=run-a-model >"$T/mk.log" 2>&1 &&
	"$MKHDF5" "$DEFAULTS" struct 2 >>"$T/mk.log" 2>&1 || { show "$T/mk.log"; hard_error "mkhdf5 failed"; }

# u64le FILE OFFSET [N]: the N-byte (default 8) little-endian unsigned number at OFFSET.
u64le() {
	od -An -tu1 -j "$2" -N "${3:-8}" -- "$1" | awk '{ for (i = NF; i >= 1; i--) v = v * 256 + $i }
		END { printf "%.0f\n", v }'
}

# eof_address FILE: the end-of-file address in FILE's superblock (at offset 0), from the file
# format specification: versions 0/1 give the size of offsets at byte 13 and the addresses from
# byte 24/28, versions 2/3 at byte 9 and from byte 12; the EOF address is the third address.
eof_address() {
	local ver soa at
	[ "$(od -An -tx1 -N8 -- "$1" | tr -d ' \n')" = 894844460d0a1a0a ] ||
		hard_error "$1 has no HDF5 signature at 0"
	ver=$(u64le "$1" 8 1)
	case $ver in
	0) soa=$(u64le "$1" 13 1) at=24 ;;
	1) soa=$(u64le "$1" 13 1) at=28 ;;
	2 | 3) soa=$(u64le "$1" 9 1) at=12 ;;
	*) hard_error "$1: superblock version $ver is not one this test knows" ;;
	esac
	u64le "$1" $((at + 2 * soa)) "$soa"
}

A=$(eof_address "$VALID")
# The library writes the EOF address as the file's size: the fixture is sound.
assert_eq "$A" "$(stat -c %s "$VALID")" "EOF address of the valid fixture"

# setup CHECK [ATTRIBUTES]: the minimal job whose outputs are result.txt, then $H5 (published
# to h5/pdrstruct.hdf5, column data_url) with `check: CHECK` and, if given, `attributes:
# [ATTRIBUTES]`.  The caller puts a file at $MJOB/$H5.  H5DEST is where it is published.
setup() {
	make_mini
	H5DEST=$MARCHIVE/h5/pdrstruct.hdf5
	{
		cat <<EOF
destination: $MURL
catalog:
  table: runs
  id-column: id
  status-column: status
outputs:
  - name: result
    path: out/result.txt
    to: results/result.txt
    column: result_url
  - name: h5
    path: $H5
    to: h5/pdrstruct.hdf5
    column: data_url
    check: $1
EOF
		[ -z "${2:-}" ] || printf '    attributes: [%s]\n' "$2"
	} | write_manifest "$MMAN"
}

# published_as_is: exit 0 and $MJOB/$H5 is at the destination unchanged, recorded with its hash.
published_as_is() {
	expect_rc 0 publish_mini
	cmp -s "$MJOB/$H5" "$H5DEST" || fail "$H5 was not published as it is"
	assert_eq "$(sql "$MDB" "SELECT sha256 FROM jobpub_files WHERE output = 'h5'")" \
		"$(sha256sum "$MJOB/$H5" | cut -d' ' -f1)" "recorded sha256"
	assert_eq "$(row_status "$MDB" runs)" published "status"
	assert_no_temps "$T"
}

# refused PATTERN: exit 65, "jobpub: " and a message matching PATTERN on stderr, and nothing happened beyond the
# failed attempt: nothing staged at the destination (no file, no directory, no temporary name),
# no bytes sent, the job failed_storage with the message in its attempt row.
refused() {
	expect_rc 65 publish_mini
	assert_grep "^jobpub: $1" "$ERR"
	[ -z "$(find "$MARCHIVE" -mindepth 1 -print 2>/dev/null)" ] ||
		fail "something was staged at the destination: $(find "$MARCHIVE" -mindepth 1)"
	assert_no_temps "$T"
	assert_eq "$(row_status "$MDB" runs)" failed_storage "status"
	assert_eq "$(sql "$MDB" "SELECT outcome || ' ' || exit_code || ' ' || bytes FROM jobpub_attempts")" \
		"failed_storage 65 0" "the attempt row (outcome exit code bytes)"
	sql "$MDB" "SELECT message FROM jobpub_attempts" >"$T/reason"
	assert_grep "^$1" "$T/reason"
	assert_eq "$(sql "$MDB" "SELECT quote(result_url) || ' ' || quote(data_url) FROM runs")" \
		"NULL NULL" "mapped columns"
	assert_eq "$(sql "$MDB" "SELECT count(*) FROM jobpub_files")" 0 "jobpub_files rows"
}

# ---- a valid file passes auto, hdf5 and none ----
case_valid() {
	for c in auto hdf5 none; do
		setup "$c"
		cp "$VALID" "$MJOB/$H5"
		published_as_is
	done
}

# ---- truncated: the exact message, with A and S, before anything is staged ----
case_truncated() {
	for s in $((A / 2)) $((A - 1)) 4096; do
		for c in hdf5 auto; do
			setup "$c"
			cp "$VALID" "$MJOB/$H5"
			truncate -s "$s" "$MJOB/$H5"
			msg="validate: $H5: truncated HDF5 file (EOF address $A, file size $s)"
			refused "$(printf '%s' "$msg" | sed 's/[][().*^$+?{}|\\]/\\&/g')"
			grep -Fxq "jobpub: $msg" "$ERR" || { show "$ERR"; fail "no line 'jobpub: $msg'"; }
			grep -Fxq "$msg" "$T/reason" || { show "$T/reason"; fail "attempt message is not '$msg'"; }
		done
	done
	# Cut inside the superblock itself: still refused, naming the file.
	setup auto
	cp "$VALID" "$MJOB/$H5"
	truncate -s 30 "$MJOB/$H5"
	refused "validate: $H5: .*HDF5"
	# check: none publishes it as it is.
	setup none
	cp "$VALID" "$MJOB/$H5"
	truncate -s $((A / 2)) "$MJOB/$H5"
	published_as_is
}

# ---- a few bytes corrupted: a symbol table node's signature, an object header's version ----
case_corrupt() {
	snods=$(grep -obUa SNOD "$VALID" | cut -d: -f1)
	[ -n "$snods" ] || hard_error "no symbol table node (SNOD) in the mkhdf5 fixture"
	first=$(printf '%s\n' "$snods" | head -n 1)
	last=$(printf '%s\n' "$snods" | tail -n 1)
	# The node's first entry: link name offset (8 bytes), then its object header's address.
	ohdr=$(u64le "$VALID" $((last + 16)))
	[ "$ohdr" -gt 0 ] && [ "$ohdr" -lt "$A" ] || hard_error "object header address $ohdr out of range"
	assert_eq "$(u64le "$VALID" "$ohdr" 1)" 1 "version of the object header at $ohdr"

	setup hdf5
	cp "$VALID" "$MJOB/$H5"
	printf 'XXXX' | dd of="$MJOB/$H5" bs=1 seek="$first" conv=notrunc status=none
	refused "validate: $H5: .*(corrupt|invalid)"

	setup auto
	cp "$VALID" "$MJOB/$H5"
	printf '\377\377' | dd of="$MJOB/$H5" bs=1 seek="$ohdr" conv=notrunc status=none
	refused "validate: $H5: .*(corrupt|invalid)"
}

# ---- signatures: not HDF5, HDF4 ----
case_signatures() {
	setup hdf5
	printf 'plain text, not HDF\n' >"$MJOB/$H5"
	refused "validate: $H5: not an HDF5 file"
	setup auto
	printf 'plain text, not HDF\n' >"$MJOB/$H5"
	refused "validate: $H5: not an HDF file \(no HDF5 or HDF4 signature; a \.hdf5 name must carry"
	for c in auto hdf4; do
		setup "$c"
		printf '\016\003\023\001\000\000\000\000HDF4 data descriptor block' >"$MJOB/$H5"
		published_as_is
	done
	setup hdf4
	printf 'plain text, not HDF\n' >"$MJOB/$H5"
	refused "validate: $H5: not an HDF4 file"
	setup hdf4
	cp "$VALID" "$MJOB/$H5"
	refused "validate: $H5: not an HDF4 file"
}

# ---- auto goes by the name: an HDF extension without an HDF signature is refused ----
# (A crashed model run leaves empty or half-written pdrstruct_s.hdf5 files.)
case_auto_names() {
	local keep=$H5 name ext
	for name in out/pdrstruct_s.hdf5 out/run.H5 out/s.he5 out/d.hdf out/d.h4 out/d.HDF4; do
		H5=$name
		ext=.${name##*.}
		setup auto
		: >"$MJOB/$H5"
		refused "validate: $H5: not an HDF file \(empty; a \\$ext name must carry an HDF5 or HDF4 signature\)"
		setup auto
		printf 'plain text, not HDF\n' >"$MJOB/$H5"
		refused "validate: $H5: not an HDF file \(no HDF5 or HDF4 signature"
		# check: none publishes it as it is; so does auto with a valid file under that name.
		setup none
		printf 'plain text, not HDF\n' >"$MJOB/$H5"
		published_as_is
	done
	H5=out/d.HDF5
	setup auto
	cp "$VALID" "$MJOB/$H5"
	published_as_is
	# Other names keep auto's old rule: published as they are.
	for name in out/pdrstruct.txt out/pdrstruct.hdf5.bak out/h5; do
		H5=$name
		setup auto
		: >"$MJOB/$H5"
		published_as_is
		setup auto
		printf 'plain text, not HDF\n' >"$MJOB/$H5"
		published_as_is
	done
	H5=$keep
}

# ---- attributes ----
# attrs: "name=value" per row of jobpub_attributes for job 1, output h5, in name order.
attrs() {
	sql "$MDB" "SELECT name || '=' || value FROM jobpub_attributes WHERE job = '1' AND output = 'h5'
		ORDER BY name"
}
case_attributes() {
	setup auto "n_surface, mass"
	cp "$VALID" "$MJOB/$H5"
	published_as_is
	assert_eq "$(attrs | tr '\n' ' ')" "mass=7.25 n_surface=3162.5 " "attributes (mkhdf5 n_surface=3162.5 mass=7.25)"
	# Published again, unchanged: the rows stay, once each.
	expect_rc 0 publish_mini
	assert_eq "$(attrs | tr '\n' ' ')" "mass=7.25 n_surface=3162.5 " "attributes after a re-publish"

	setup hdf5 "n_surface, mass, model_name, n_depth"
	cp "$DEFAULTS" "$MJOB/$H5"
	published_as_is
	assert_eq "$(attrs | tr '\n' ' ')" "mass=10 model_name=100_40_10_20_00 n_depth=400 n_surface=10000 " \
		"attributes of mkhdf5's defaults (float, string, integer)"

	setup auto "n_surface, no_such_attribute"
	cp "$VALID" "$MJOB/$H5"
	refused "validate: $H5: .*no_such_attribute"
	assert_eq "$(sql "$MDB" "SELECT count(*) FROM jobpub_attributes")" 0 "jobpub_attributes rows"

	# Attributes need an HDF5 file.
	setup auto "n_surface"
	printf 'plain text, not HDF\n' >"$MJOB/$H5"
	refused "validate: $H5: "
}

# ---- manifest check --workdir and publish --dry-run validate too, and change nothing ----
case_dry_run() {
	setup auto "n_surface"
	cp "$VALID" "$MJOB/$H5"
	truncate -s $((A / 2)) "$MJOB/$H5"
	msg="jobpub: validate: $H5: truncated HDF5 file (EOF address $A, file size $((A / 2)))"
	db_sum=$(sha256sum <"$MDB")
	snapshot "$MINI" "$T/before"

	expect_rc 65 "$JOBPUB" manifest check "$MMAN" --workdir "$MJOB" --job 1 --db "$MDB"
	grep -Fxq "$msg" "$ERR" || { show "$ERR"; fail "manifest check: no line '$msg'"; }
	expect_rc 65 "$JOBPUB" manifest check "$MMAN" --workdir "$MJOB"
	grep -Fxq "$msg" "$ERR" || { show "$ERR"; fail "manifest check without --db: no line '$msg'"; }
	expect_rc 65 publish_mini --dry-run
	grep -Fxq "$msg" "$ERR" || { show "$ERR"; fail "publish --dry-run: no line '$msg'"; }

	assert_eq "$(sha256sum <"$MDB")" "$db_sum" "sha256 of the catalogue"
	snapshot "$MINI" "$T/after"
	cmp -s "$T/before" "$T/after" || { diff "$T/before" "$T/after" >&2 || true; fail "the job or catalogue directory changed"; }
	assert_absent "$MARCHIVE"
	assert_no_temps "$T"
	assert_eq "$(row_status "$MDB" runs)" running "status"

	# The same commands on the valid file succeed (so the 65 above came from the check).
	cp "$VALID" "$MJOB/$H5"
	expect_rc 0 "$JOBPUB" manifest check "$MMAN" --workdir "$MJOB" --job 1 --db "$MDB"
	expect_rc 0 publish_mini --dry-run
	assert_absent "$MARCHIVE"
	assert_eq "$(sha256sum <"$MDB")" "$db_sum" "sha256 of the catalogue after the valid dry run"

	# A text file where HDF5 is required, and a missing attribute.
	setup hdf5
	printf 'plain text, not HDF\n' >"$MJOB/$H5"
	expect_rc 65 "$JOBPUB" manifest check "$MMAN" --workdir "$MJOB"
	assert_grep "^jobpub: validate: $H5: not an HDF5 file" "$ERR"
	setup auto "no_such_attribute"
	cp "$VALID" "$MJOB/$H5"
	expect_rc 65 publish_mini --dry-run
	assert_grep "^jobpub: validate: $H5: .*no_such_attribute" "$ERR"
	assert_absent "$MARCHIVE"
}

run_case case_valid
run_case case_truncated
run_case case_corrupt
run_case case_signatures
run_case case_auto_names
run_case case_attributes
run_case case_dry_run
finish

#!/bin/sh
# Directory outputs (`archive: tar | tar.gz | tar.zst`): the published archive lists every entry
# with GNU tar and bsdtar and extracts to a tree identical to the job's (symlinks kept as
# symlinks, also one pointing outside the work directory; names with spaces and UTF-8);
# jobpub_files.entries counts them; no temporary file anywhere, not even in $TMPDIR; an unchanged
# directory is "already there"; a changed one is a conflict (69) unless --overwrite.  Errors: a
# directory without `archive:` or `archive:` on a file (65), an unreadable file (74, as `nobody`
# when root), SIGTERM in the middle of a big archive (75).  FIFOs are skipped with a warning, an
# empty directory gives a one-entry archive, an optional absent directory is skipped.
. "$(dirname "$0")/lib.sh"
need tar bsdtar zstd gzip diff mkfifo timeout head od

# Listing and extracting UTF-8 names needs a UTF-8 locale (bsdtar refuses them under C).
UTF8=
for l in C.UTF-8 C.utf8 en_US.UTF-8 en_US.utf8; do
	if locale -a 2>/dev/null | grep -qx "$l"; then
		UTF8=$l
		break
	fi
done
[ -n "$UTF8" ] || hard_error "no UTF-8 locale (C.UTF-8) to list archives with UTF-8 names"

UNAME=$(printf '\303\274n\303\257c\303\270d\303\251 \342\202\254.txt') # "ünïcødé €.txt"

# make_tree DIR: the tree every case archives (no special files).
make_tree() {
	mkdir -p "$1/sub/deep" "$1/sub/empty" "$1/z"
	printf 'mcdrt output 1\n' >"$1/mcdrt_0001.dat"
	head -c 300000 /dev/urandom >"$1/mcdrt_0002.dat"
	printf 'spaces\n' >"$1/name with spaces.txt"
	printf 'utf-8\n' >"$1/$UNAME"
	printf '#!/bin/sh\necho run\n' >"$1/run.sh"
	chmod 755 "$1/run.sh"
	printf 'private\n' >"$1/private.txt"
	chmod 600 "$1/private.txt"
	printf 'deep\n' >"$1/sub/deep/f"
	: >"$1/z/zero-length"
	printf 'outside the work directory\n' >"$T/outside.txt"
	ln -s mcdrt_0001.dat "$1/link-in"
	ln -s "$T/outside.txt" "$1/link-out-abs"      # absolute, outside the work directory
	ln -s ../../outside.txt "$1/link-out-rel"     # relative, outside the work directory
	ln -s ../../sub "$1/sub/deep/up"              # a directory, inside
	ln -s does/not/exist "$1/dangling"
}

# setup FMT [REQUIRED]: the minimal job with a directory output Out -> mcdrt/MCDRTrun-a.FMT
# (column result_url) besides result.txt; ARCH is the archive's path, AURL its URL; TMPD an empty
# directory that publish runs use as $TMPDIR.
setup() {
	make_mini
	make_tree "$MJOB/Out"
	FMT=$1
	ARCH=$MARCHIVE/mcdrt/MCDRTrun-a.$FMT
	AURL=$MURL/mcdrt/MCDRTrun-a.$FMT
	TMPD=$T/tmpdir
	rm -rf "$TMPD"
	mkdir "$TMPD"
	write_manifest "$MMAN" <<EOF
destination: $MURL
catalog:
  table: runs
  id-column: id
  status-column: status
outputs:
  - name: result
    path: out/result.txt
    to: results/result.txt
  - name: mcdrt
    path: Out
    archive: $FMT
    to: mcdrt/MCDRT\${row.name}.$FMT
    column: result_url
    required: ${2:-true}
EOF
}

# pub [OPTION]...: publishes job 1 with $TMPD as $TMPDIR (a hang is a failure, not a stuck test).
pub() {
	TMPDIR=$TMPD timeout -k 5 60 "$JOBPUB" publish --job 1 --manifest "$MMAN" --workdir "$MJOB" \
		--db "$MDB" "$@"
}

assert_tmpdir_empty() {
	[ -z "$(ls -A "$TMPD")" ] || fail "jobpub left files in TMPDIR: $(ls -A "$TMPD")"
}

# tree_list DIR: type, mode, name and link target of every entry below DIR, plus the whole-second
# mtime of regular files (what tar keeps), sorted.
tree_list() {
	(cd "$1" && find . -mindepth 1 \( -type f -printf '%y %m %P %l %T@\n' \) -o \
		\( ! -type f -printf '%y %m %P %l\n' \)) | sed 's/\.[0-9]*$//' | LC_ALL=C sort
}

# check_archive SRC: $ARCH lists exactly the entries of SRC (named from its base name) with GNU
# tar and bsdtar, extracts with both to a tree identical to SRC, and its catalogue row is right.
check_archive() {
	local src=$1 base=${1##*/} x
	[ -f "$ARCH" ] || fail "no archive at $ARCH"
	(cd "${src%/*}" && find "$base" ! -type p ! -type s) | LC_ALL=C sort >"$T/want.list"
	for x in tar bsdtar; do
		LC_ALL=$UTF8 $x -tf "$ARCH" >"$T/$x.raw" 2>"$T/$x.err" || {
			show "$T/$x.err"
			fail "$x -t failed on ${ARCH##*/}"
		}
		sed 's:/$::' "$T/$x.raw" | LC_ALL=C sort >"$T/$x.list"
		cmp -s "$T/want.list" "$T/$x.list" || {
			diff "$T/want.list" "$T/$x.list" >&2 || true
			fail "$x -t of ${ARCH##*/} does not list the entries of $base"
		}
		rm -rf "$T/x-$x"
		mkdir "$T/x-$x"
		LC_ALL=$UTF8 $x -xpf "$ARCH" -C "$T/x-$x" 2>"$T/$x.err" || {
			show "$T/$x.err"
			fail "$x -x failed on ${ARCH##*/}"
		}
		diff -r --no-dereference "$src" "$T/x-$x/$base" >&2 ||
			fail "the tree extracted by $x differs from $src"
		tree_list "$src" >"$T/src.tree"
		tree_list "$T/x-$x/$base" >"$T/x.tree"
		cmp -s "$T/src.tree" "$T/x.tree" || {
			diff "$T/src.tree" "$T/x.tree" >&2 || true
			fail "types, modes, link targets or mtimes differ after $x -x"
		}
	done
	assert_eq "$(sql "$MDB" "SELECT entries || ' ' || size || ' ' || sha256 || ' ' || remote_url
		FROM jobpub_files WHERE output = 'mcdrt'")" \
		"$(wc -l <"$T/want.list" | tr -d ' ') $(stat -c %s "$ARCH") $(sha256sum "$ARCH" | cut -d' ' -f1) $AURL" \
		"jobpub_files row of the archive (entries size sha256 url)"
}

# ---- each format: published, read back, nothing temporary, re-published as already there ----
publish_format() {
	setup "$1"
	snapshot "$MJOB" "$T/job1"
	expect_rc 0 pub
	check_archive "$MJOB/Out"
	# The format asked for: gzip with no time stamp, zstd, or a bare (ustar/pax) tar.
	case $FMT in
	tar.gz)
		gzip -t "$ARCH" || fail "gzip -t failed on ${ARCH##*/}"
		assert_eq "$(od -An -tx1 -N8 "$ARCH" | tr -d ' \n')" 1f8b080000000000 \
			"gzip magic, method, flags and time stamp (0)" ;;
	tar.zst)
		zstd -qt "$ARCH" || fail "zstd -t failed on ${ARCH##*/}"
		assert_eq "$(od -An -tx1 -N4 "$ARCH" | tr -d ' \n')" 28b52ffd "zstd magic" ;;
	tar)
		assert_eq "$(dd if="$ARCH" bs=1 skip=257 count=5 status=none)" ustar "tar magic" ;;
	esac
	# Owner and group normalised to 0 with no names.
	LC_ALL=$UTF8 tar -tvf "$ARCH" >"$T/tv"
	assert_eq "$(awk '{print $2}' "$T/tv" | sort -u)" "0/0" "owner/group in the archive"
	assert_eq "$(sql "$MDB" "SELECT result_url FROM runs")" "$AURL" "result_url"
	assert_eq "$(row_status "$MDB" runs)" published "status"
	assert_no_temps "$T"
	assert_tmpdir_empty
	snapshot "$MJOB" "$T/job2"
	cmp -s "$T/job1" "$T/job2" || { diff "$T/job1" "$T/job2" >&2 || true; fail "the job directory changed"; }

	# Unchanged directory, a second later (a gzip header time would show): already there.
	snapshot "$MARCHIVE" "$T/dest1"
	sleep 1.1
	expect_rc 0 pub
	assert_grep 'already' "$ERR"
	assert_eq "$(sql "$MDB" "SELECT outcome || ' ' || bytes FROM jobpub_attempts ORDER BY id DESC LIMIT 1")" \
		"published 0" "re-publish attempt (outcome bytes)"
	snapshot "$MARCHIVE" "$T/dest2"
	cmp -s "$T/dest1" "$T/dest2" || { diff "$T/dest1" "$T/dest2" >&2 || true; fail "re-publish rewrote the destination"; }
	assert_no_temps "$T"
	assert_tmpdir_empty
}
case_tar_gz() { publish_format tar.gz; }
case_tar() { publish_format tar; }
case_tar_zst() { publish_format tar.zst; }

# ---- the summary line counts the archive's bytes ----
case_summary_size() {
	setup tar
	expect_rc 0 pub
	# The archive holds 300 kB of random data: the total cannot read "0 B" or a few bytes.
	assert_grep 'published 2 files \([0-9.]+ (KiB|MiB)' "$ERR"
}

# ---- a changed file: conflict, then --overwrite ----
# change FILE: new content of the same size (so that for plain tar only the checksum tells).
change() {
	local size
	size=$(stat -c %s "$1")
	head -c "$size" /dev/zero | tr '\0' 'Q' | dd of="$1" conv=notrunc status=none
}
conflict_format() {
	setup "$1"
	expect_rc 0 pub
	cp "$ARCH" "$T/old-archive"
	old_size=$(stat -c %s "$ARCH")
	change "$MJOB/Out/sub/deep/f"
	expect_rc 69 pub
	assert_grep_fixed "$AURL" "$ERR"
	assert_grep '--overwrite' "$ERR"
	cmp -s "$ARCH" "$T/old-archive" || fail "the archive was changed without --overwrite"
	assert_no_temps "$T"
	assert_tmpdir_empty
	assert_eq "$(row_status "$MDB" runs)" published "status after the conflict (stays published)"
	assert_eq "$(sql "$MDB" "SELECT outcome || ' ' || exit_code FROM jobpub_attempts ORDER BY id DESC LIMIT 1")" \
		"failed_storage 69" "the conflict's attempt row"
	expect_rc 0 pub --overwrite
	if cmp -s "$ARCH" "$T/old-archive"; then fail "--overwrite did not replace the archive"; fi
	[ "$FMT" != tar ] || assert_eq "$(stat -c %s "$ARCH")" "$old_size" "size of the new plain tar"
	check_archive "$MJOB/Out"
	assert_eq "$(row_status "$MDB" runs)" published "status after --overwrite"
	assert_no_temps "$T"
	assert_tmpdir_empty
}
case_conflict_tar_gz() { conflict_format tar.gz; }
case_conflict_tar() { conflict_format tar; }

# ---- manifest errors: a directory without archive, archive on a file ----
case_dir_without_archive() {
	setup tar.gz
	sed -i '/archive: tar.gz/d' "$MMAN"
	expect_rc 65 pub
	assert_grep '^jobpub: ' "$ERR"
	assert_grep 'Out' "$ERR"
	assert_grep "add 'archive" "$ERR"
	assert_eq "$(count_files "$MARCHIVE")" 0 "files at the destination"
	assert_no_temps "$T"
	assert_eq "$(row_status "$MDB" runs)" failed_storage "status"
	assert_eq "$(sql "$MDB" "SELECT exit_code FROM jobpub_attempts")" 65 "attempt exit code"
}
case_archive_on_file() {
	setup tar.gz
	sed -i 's|path: Out|path: out/data.bin|' "$MMAN"
	expect_rc 65 pub
	assert_grep '^jobpub: ' "$ERR"
	assert_grep 'out/data.bin' "$ERR"
	assert_grep 'archive' "$ERR"
	assert_grep 'director' "$ERR"
	assert_eq "$(count_files "$MARCHIVE")" 0 "files at the destination"
	assert_no_temps "$T"
	assert_eq "$(row_status "$MDB" runs)" failed_storage "status"
	# An unknown format is refused when the manifest is loaded.
	setup zip
	expect_rc 65 pub
	assert_grep 'archive' "$ERR"
	assert_grep 'zip' "$ERR"
	assert_eq "$(count_files "$MARCHIVE")" 0 "files at the destination (archive: zip)"
}

# ---- a FIFO is skipped with a warning naming it ----
case_fifo() {
	setup tar.gz
	mkfifo "$MJOB/Out/sub/pipe"
	expect_rc 0 pub
	assert_grep 'warning' "$ERR"
	assert_grep 'Out/sub/pipe' "$ERR"
	LC_ALL=$UTF8 bsdtar -tf "$ARCH" >"$T/list"
	assert_no_grep 'pipe' "$T/list"
	rm "$MJOB/Out/sub/pipe" # the archive must be that of the tree without it
	check_archive "$MJOB/Out"
	assert_no_temps "$T"
	assert_tmpdir_empty
}

# ---- an unreadable file: 74 naming it, nothing published ----
# as_user CMD...: runs CMD as a user who cannot read mode-000 files (nobody, when we are root).
as_user() {
	if [ "$(id -u)" -eq 0 ]; then
		setpriv --reuid="$(id -u nobody)" --regid="$(id -g nobody)" --clear-groups -- "$@"
	else
		"$@"
	fi
}
case_unreadable() {
	setup tar.gz
	printf 'secret\n' >"$MJOB/Out/sub/secret.dat"
	if [ "$(id -u)" -eq 0 ]; then
		need setpriv
		id nobody >/dev/null 2>&1 || hard_error "running as root and there is no user nobody"
		chmod -R a+rwX "$T"
	fi
	chmod 000 "$MJOB/Out/sub/secret.dat"
	as_user test -r "$MMAN" -a -w "$MDB" -a -x "$JOBPUB" ||
		hard_error "user $(as_user id -un) cannot reach $T or $JOBPUB"
	! as_user test -r "$MJOB/Out/sub/secret.dat" || hard_error "cannot make a file unreadable here"
	expect_rc 74 as_user env TMPDIR="$TMPD" timeout -k 5 60 "$JOBPUB" publish --job 1 \
		--manifest "$MMAN" --workdir "$MJOB" --db "$MDB"
	assert_grep '^jobpub: ' "$ERR"
	assert_grep 'Out/sub/secret.dat' "$ERR"
	assert_eq "$(count_files "$MARCHIVE")" 0 "files at the destination"
	assert_no_temps "$T"
	assert_tmpdir_empty
	assert_eq "$(row_status "$MDB" runs)" failed_storage "status"
	assert_eq "$(sql "$MDB" "SELECT outcome || ' ' || exit_code FROM jobpub_attempts")" \
		"failed_storage 74" "the attempt row"
	assert_grep 'Out/sub/secret.dat' /dev/stdin <<EOF
$(sql "$MDB" "SELECT message FROM jobpub_attempts")
EOF
	assert_eq "$(sql "$MDB" "SELECT count(*) FROM jobpub_files")" 0 "jobpub_files rows"
}

# ---- an empty directory: a valid archive of one entry ----
case_empty_dir() {
	setup tar.gz
	rm -rf "$MJOB/Out"
	mkdir "$MJOB/Out"
	expect_rc 0 pub
	check_archive "$MJOB/Out"
	assert_eq "$(LC_ALL=$UTF8 tar -tf "$ARCH")" "Out/" "listing of the empty directory's archive"
	assert_eq "$(sql "$MDB" "SELECT entries FROM jobpub_files WHERE output = 'mcdrt'")" 1 "entries"
	assert_no_temps "$T"
	assert_tmpdir_empty
}

# ---- an optional directory that does not exist: skipped ----
case_optional_missing() {
	setup tar.gz false
	rm -rf "$MJOB/Out"
	expect_rc 0 pub
	assert_grep 'mcdrt.*skipped|skipped.*mcdrt' "$ERR"
	assert_absent "$ARCH"
	assert_eq "$(count_files "$MARCHIVE")" 1 "files at the destination"
	assert_eq "$(sql "$MDB" "SELECT quote(result_url) FROM runs")" NULL "result_url"
	assert_eq "$(sql "$MDB" "SELECT count(*) FROM jobpub_files WHERE output = 'mcdrt'")" 0 "rows"
	assert_eq "$(row_status "$MDB" runs)" published "status"
	# Required, it is an error (66) naming it.
	setup tar.gz
	rm -rf "$MJOB/Out"
	expect_rc 66 pub
	assert_grep 'mcdrt' "$ERR"
	assert_eq "$(count_files "$MARCHIVE")" 0 "files at the destination (required)"
}

# ---- SIGTERM while a 1 GiB file is being archived ----
case_sigterm() {
	SIZE=$((1024 * 1024 * 1024))
	setup tar
	head -c "$SIZE" /dev/zero >"$MJOB/Out/sub/big.dat" || hard_error "cannot write 1 GiB in $T"
	[ "$(stat -c %b "$MJOB/Out/sub/big.dat")" -ge $((SIZE / 512)) ] || hard_error "big.dat is sparse"
	TMPDIR=$TMPD "$JOBPUB" publish --job 1 --manifest "$MMAN" --workdir "$MJOB" --db "$MDB" \
		>"$T/pub.out" 2>"$T/pub.err" &
	PUB=$!
	bg_started "$PUB"
	i=0
	while :; do
		TMPFILE=$(find "$MARCHIVE" -name '.jobpub-*.MCDRTrun-a.tar' -size +1M -print 2>/dev/null | head -n 1)
		[ -z "$TMPFILE" ] || break
		kill -0 "$PUB" 2>/dev/null || { show "$T/pub.err"; fail "publish ended before the archive was half written"; }
		i=$((i + 1))
		[ "$i" -lt 3000 ] || fail "no temporary archive after 30 s"
		sleep 0.01
	done
	kill -STOP "$PUB"
	[ "$(stat -c %s "$TMPFILE")" -lt "$SIZE" ] ||
		hard_error "the whole archive was written before it could be stopped"
	# No temporary tar elsewhere: every file jobpub holds open is the catalogue, the work
	# directory (every output is reached from it) or a job file or directory below it, the
	# staged archive (or another output staged on another lane), its own output, or a directory
	# of the destination (the staged file's parent, through which it is committed).
	# (Descriptors this shell itself holds, such as a lock of whoever runs the suite, are
	# inherited, not opened by jobpub.)
	inherited=$(for fd in /proc/$$/fd/*; do readlink "$fd" 2>/dev/null; done)
	for fd in /proc/"$PUB"/fd/*; do
		target=$(readlink "$fd") || continue
		if printf '%s\n' "$inherited" | grep -Fxq -- "$target"; then
			continue
		fi
		if [ -d "$target" ]; then
			case $target in "$MARCHIVE" | "$MARCHIVE"/*) continue ;; esac
		fi
		case $target in
		"$MDB" | "$MDB"-* | "$MJOB" | "$MJOB"/* | "$TMPFILE" | "$T"/pub.*) ;;
		# another output staged on another transfer lane at the same time
		"$MARCHIVE"/*/.jobpub-*) ;;
		/dev/* | pipe:* | socket:* | anon_inode:*) ;;
		*) fail "jobpub holds $target open while archiving" ;;
		esac
	done
	hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$PUB/status")
	# Under ASan (./configure --enable-sanitizers) the RSS also holds shadow memory and the
	# quarantine of freed blocks (34 MB measured): the bound is then 4 times wider.
	lim=32
	[ "${JP_SANITIZERS:-no}" = no ] || lim=128
	[ "$hwm" -lt $((lim * 1024)) ] ||
		fail "peak RSS ${hwm} kB while archiving 1 GiB (bounded memory: < $lim MiB)"
	kill -TERM "$PUB"
	kill -CONT "$PUB"
	rc=0
	wait "$PUB" || rc=$?
	[ "$rc" -eq 75 ] || { show "$T/pub.err"; fail "exit code $rc after SIGTERM, expected 75"; }
	assert_grep '^jobpub: ' "$T/pub.err"
	assert_absent "$ARCH"
	assert_absent "$MARCHIVE/results/result.txt"
	assert_eq "$(count_files "$MARCHIVE")" 0 "files at the destination after SIGTERM"
	assert_no_temps "$T"
	assert_tmpdir_empty
	assert_eq "$(row_status "$MDB" runs)" failed_storage "status after SIGTERM"
	assert_eq "$(sql "$MDB" "SELECT outcome || ' ' || exit_code FROM jobpub_attempts")" \
		"interrupted 75" "the attempt row after SIGTERM"
	assert_eq "$(sql "$MDB" "SELECT count(*) FROM jobpub_files")" 0 "jobpub_files rows"
	rm -f "$MJOB/Out/sub/big.dat"
}

run_case case_tar_gz
run_case case_tar
run_case case_tar_zst
run_case case_summary_size
run_case case_conflict_tar_gz
run_case case_conflict_tar
run_case case_dir_without_archive
run_case case_archive_on_file
run_case case_fifo
run_case case_unreadable
run_case case_empty_dir
run_case case_optional_missing
run_case case_sigterm
finish

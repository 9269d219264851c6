#!/bin/sh
# Regression tests of the security fixes (c98d72c, c49af9a):
#  - a password in a destination URL (--dest, $JOBPUB_DEST, the manifest's `destination:`) is
#    refused (78, or 65 with FILE:LINE:COL) before anything is recorded: the secret is in no
#    message, in no catalogue row (no attempt row either), in no spool entry, in no --dry-run
#    plan;
#  - root refuses to publish a manifest or work directory another uid owns (77, "run jobpub as
#    that user"), also through `republish`, recording and writing nothing; root's own files are
#    published, and a non-root user's own files are never refused;
#  - a POSIX destination is walked without following links: a linked directory below it is
#    refused (65, "is a symbolic link"), a linked final name is a conflict (69) and --overwrite
#    replaces the link itself, `verify --deep` reads a linked file as a link;
#  - `gc --apply` reports a displaced original (.jobpub-old-*) and never deletes it;
#  - the Slurm epilog (umask 077 itself) publishes with umask 022: files 0644, directories 0755.
. "$(dirname "$0")/lib.sh"
need grep touch chown bash timeout getent env

SECRET=S3cr3t
PWURL="sftp://bob:$SECRET@127.0.0.1:1/x"

# assert_no_secret FILE...: $SECRET occurs in none of the files (binary files included).
assert_no_secret() {
	local f
	for f in "$@"; do
		[ -e "$f" ] || continue
		if grep -aqF -e "$SECRET" -- "$f"; then
			show "$f"
			fail "the password appears in ${f#"$T"/}"
		fi
	done
}

# assert_catalogue_clean: no attempt row, the row still 'running', and the password nowhere in
# the catalogue (its SQL dump, and its files on disk with -wal/-journal).
assert_catalogue_clean() {
	assert_eq "$(n_attempts "$MDB")" 0 "attempt rows"
	assert_eq "$(row_status "$MDB" runs)" running "status"
	sqlite3 -batch "$MDB" .dump >"$T/dump.sql" 2>&1 || { show "$T/dump.sql"; fail "sqlite3 .dump failed"; }
	assert_no_secret "$T/dump.sql" "$MDB" "$MDB-wal" "$MDB-journal"
}

# ---- 1. passwords in destinations --------------------------------------------------------------
password_dest_option() {
	make_mini
	expect_rc 78 publish_mini --dest "$PWURL"
	assert_grep 'password' "$ERR"
	assert_no_secret "$OUT" "$ERR"
	assert_catalogue_clean
	assert_absent "$MARCHIVE"
	# The same through $JOBPUB_DEST.
	expect_rc 78 env JOBPUB_DEST="$PWURL" "$JOBPUB" publish --job 1 --workdir "$MJOB" --db "$MDB" \
		--manifest "$MMAN"
	assert_grep 'password' "$ERR"
	assert_no_secret "$OUT" "$ERR"
	assert_catalogue_clean
	# --dry-run prints no plan with it.
	expect_rc 78 publish_mini --dry-run --dest "$PWURL"
	assert_grep 'password' "$ERR"
	assert_no_secret "$OUT" "$ERR"
	assert_catalogue_clean
	# A spool entry would carry it to the epilog: refused, no entry.
	mkdir -p "$T/spool"
	expect_rc 78 "$JOBPUB" enqueue --job 1 --manifest "$MMAN" --workdir "$MJOB" --db "$MDB" \
		--dest "$PWURL" --spool "$T/spool"
	assert_grep 'password' "$ERR"
	assert_no_secret "$OUT" "$ERR"
	assert_eq "$(find "$T/spool" ! -type d | wc -l | tr -d ' ')" 0 "files in the spool"
	expect_rc 78 env JOBPUB_DEST="$PWURL" "$JOBPUB" enqueue --job 1 --manifest "$MMAN" \
		--workdir "$MJOB" --db "$MDB" --spool "$T/spool"
	assert_no_secret "$OUT" "$ERR"
	assert_eq "$(find "$T/spool" ! -type d | wc -l | tr -d ' ')" 0 "files in the spool (\$JOBPUB_DEST)"
	assert_catalogue_clean
	# Nothing anywhere in the test's tree holds it but this script's own command lines.
	rm -f "$OUT" "$ERR"
	hits=$(grep -rlaF -e "$SECRET" "$T" || true)
	[ -z "$hits" ] || fail "the password was written to: $hits"
}

password_in_manifest() {
	make_mini
	sed "s|^destination: .*|destination: $PWURL|" "$MMAN" >"$T/pw.yaml"
	for dry in '' --dry-run; do
		rc=0
		publish_mini --manifest "$T/pw.yaml" $dry >"$OUT" 2>"$ERR" || rc=$?
		case $rc in
		65 | 78) ;;
		*) show "$ERR"; fail "publish ${dry:+$dry }with a password in destination: exited $rc, not 65 or 78" ;;
		esac
		assert_grep_fixed "$T/pw.yaml:1:" "$ERR"
		assert_grep "pw\.yaml:1:[0-9]+: .*password" "$ERR"
		assert_no_secret "$OUT" "$ERR"
		assert_catalogue_clean
		assert_absent "$MARCHIVE"
	done
	mkdir -p "$T/spool"
	rc=0
	"$JOBPUB" enqueue --job 1 --manifest "$T/pw.yaml" --workdir "$MJOB" --db "$MDB" \
		--spool "$T/spool" >"$OUT" 2>"$ERR" || rc=$?
	[ "$rc" = 65 ] || [ "$rc" = 78 ] || { show "$ERR"; fail "enqueue exited $rc, not 65 or 78"; }
	assert_grep_fixed "$T/pw.yaml:1:" "$ERR"
	assert_no_secret "$OUT" "$ERR"
	assert_eq "$(find "$T/spool" ! -type d | wc -l | tr -d ' ')" 0 "files in the spool"
	# A user name alone is not a password: planned (--dry-run connects nowhere).
	expect_rc 0 publish_mini --dry-run --dest "sftp://bob@127.0.0.1:1/x"
}

# A password produced by a variable: a --set value, or a column of the job's row.
password_from_variables() {
	make_mini
	expect_rc 78 publish_mini --dest 'sftp://${u}@127.0.0.1:1/x' --set "u=bob:$SECRET"
	assert_grep 'password' "$ERR"
	assert_no_secret "$OUT" "$ERR"
	assert_catalogue_clean
	expect_rc 78 publish_mini --dry-run --dest 'sftp://${u}@127.0.0.1:1/x' --set "u=bob:$SECRET"
	assert_no_secret "$OUT" "$ERR"
	sed 's|^destination: .*|destination: sftp://${u}@127.0.0.1:1/x|' "$MMAN" >"$T/var.yaml"
	rc=0
	publish_mini --manifest "$T/var.yaml" --set "u=bob:$SECRET" >"$OUT" 2>"$ERR" || rc=$?
	[ "$rc" = 65 ] || [ "$rc" = 78 ] || { show "$ERR"; fail "a --set password in destination: exited $rc"; }
	assert_grep_fixed "$T/var.yaml:1:" "$ERR"
	assert_no_secret "$OUT" "$ERR"
	assert_catalogue_clean
	mkdir -p "$T/spool"
	rc=0
	"$JOBPUB" enqueue --job 1 --manifest "$T/var.yaml" --workdir "$MJOB" --db "$MDB" \
		--set "u=bob:$SECRET" --spool "$T/spool" >"$OUT" 2>"$ERR" || rc=$?
	[ "$rc" = 65 ] || [ "$rc" = 78 ] || { show "$ERR"; fail "enqueue with a --set password exited $rc"; }
	assert_no_secret "$OUT" "$ERR"
	assert_eq "$(find "$T/spool" ! -type d | wc -l | tr -d ' ')" 0 "files in the spool"
	# From the row: the catalogue holds it already, but no jobpub row may copy it.
	sql "$MDB" "UPDATE runs SET name = 'bob:$SECRET' WHERE id = 1"
	sed 's|^destination: .*|destination: sftp://${row.name}@127.0.0.1:1/x|' "$MMAN" >"$T/row.yaml"
	for dry in '' --dry-run; do
		rc=0
		publish_mini --manifest "$T/row.yaml" $dry >"$OUT" 2>"$ERR" || rc=$?
		[ "$rc" = 65 ] || [ "$rc" = 78 ] || { show "$ERR"; fail "a row password ${dry:+($dry) }exited $rc"; }
		assert_grep 'password' "$ERR"
		assert_no_secret "$OUT" "$ERR"
		assert_eq "$(n_attempts "$MDB")" 0 "attempt rows"
		assert_eq "$(row_status "$MDB" runs)" running "status"
	done
	sqlite3 -batch "$MDB" .dump | grep -v '^INSERT INTO runs' >"$T/dump.sql" || true
	assert_no_secret "$T/dump.sql"
}

# ---- 2. root and other users' files ------------------------------------------------------------
# as_nobody CMD...: CMD as nobody (only when root).
as_nobody() {
	setpriv --reuid="$(id -u nobody)" --regid="$(id -g nobody)" --clear-groups -- "$@"
}

assert_refused_as_root() {
	expect_rc 77 publish_mini "$@"
	assert_grep_fixed 'run jobpub as that user' "$ERR"
	assert_grep "belongs to uid $NOBODY" "$ERR"
	assert_eq "$(n_attempts "$MDB")" 0 "attempt rows"
	assert_eq "$(row_status "$MDB" runs)" running "status"
	assert_absent "$MARCHIVE"
}

root_guard() {
	if [ "$(id -u)" != 0 ]; then
		# Not root: the guard is root's only; a user's own files are published.
		make_mini
		expect_rc 0 publish_mini
		assert_eq "$(row_status "$MDB" runs)" published "status (not root)"
		cmp -s "$MJOB/out/result.txt" "$MARCHIVE/results/run-a/result.txt" || fail "not published"
		return 0
	fi
	need setpriv
	NOBODY=$(id -u nobody 2>/dev/null) || hard_error "running as root and there is no user nobody"
	# A manifest of another user.
	make_mini
	chown nobody "$MMAN"
	assert_refused_as_root
	assert_grep_fixed "$MMAN" "$ERR"
	expect_rc 77 publish_mini --dry-run
	assert_grep_fixed 'run jobpub as that user' "$ERR"
	assert_eq "$(n_attempts "$MDB")" 0 "attempt rows after --dry-run"
	# A work directory of another user (the manifest root's).
	chown root "$MMAN"
	chown nobody "$MJOB"
	assert_refused_as_root
	assert_grep_fixed "$MJOB" "$ERR"
	# --workdir left out: the current directory is the work directory.
	rc=0
	(cd "$MJOB" && "$JOBPUB" publish --job 1 --manifest "$MMAN" --db "$MDB") >"$OUT" 2>"$ERR" || rc=$?
	[ "$rc" = 77 ] || { show "$ERR"; fail "publish from a work directory of nobody exited $rc, not 77"; }
	assert_absent "$MARCHIVE"
	# Root's own files: published.
	chown root "$MJOB"
	expect_rc 0 publish_mini
	assert_eq "$(row_status "$MDB" runs)" published "status of root's own job"
	cmp -s "$MJOB/out/result.txt" "$MARCHIVE/results/run-a/result.txt" || fail "root's job not published"
	# nobody publishing nobody's own files (the other direction): not refused.
	chmod 711 "$T"
	mkdir "$T/nb"
	make_mini
	mv "$MINI" "$T/nb/mini"
	MINI=$T/nb/mini MJOB=$T/nb/mini/job MDB=$T/nb/mini/catalog.db MMAN=$T/nb/mini/manifest.yaml
	MARCHIVE=$MINI/archive
	sed -i "s|^destination: .*|destination: file://$MARCHIVE|" "$MMAN"
	chown -R nobody "$T/nb"
	expect_rc 0 as_nobody "$JOBPUB" publish --job 1 --manifest "$MMAN" --workdir "$MJOB" --db "$MDB"
	assert_eq "$(row_status "$MDB" runs)" published "status of nobody's job published by nobody"
	assert_eq "$(stat -c %u "$MARCHIVE/results/run-a/result.txt")" "$NOBODY" "owner of nobody's file"
}

# republish as root: the recorded work directory now belongs to nobody.
root_guard_republish() {
	[ "$(id -u)" = 0 ] || return 0 # the guard is root's only (see root_guard)
	NOBODY=$(id -u nobody 2>/dev/null) || hard_error "running as root and there is no user nobody"
	make_mini
	mv "$MJOB/out/data.bin" "$T/data.bin"
	expect_rc 66 publish_mini
	assert_eq "$(row_status "$MDB" runs)" failed_storage "status after the failed publish"
	assert_eq "$(n_attempts "$MDB")" 1 "attempt rows after the failed publish"
	mv "$T/data.bin" "$MJOB/out/data.bin"
	chown -R nobody "$MJOB"
	expect_rc 0 sh -c 'cd / && "$1" republish --db "$2" --dry-run' sh "$JOBPUB" "$MDB"
	assert_grep_fixed "job 1: would republish" "$OUT"
	expect_rc 77 sh -c 'cd / && "$1" republish --db "$2"' sh "$JOBPUB" "$MDB"
	assert_grep "^job 1: failed \\(exit 77\\): .*run jobpub as that user" "$OUT"
	assert_grep '^republish: 0 published, 1 still failing$' "$OUT"
	assert_eq "$(n_attempts "$MDB")" 1 "attempt rows after republish"
	assert_eq "$(row_status "$MDB" runs)" failed_storage "status after republish"
	assert_eq "$(count_files "$MARCHIVE")" 0 "files at the destination"
	assert_no_temps "$T"
	# Given back to root: republished.
	chown -R root "$MJOB"
	expect_rc 0 sh -c 'cd / && "$1" republish --db "$2"' sh "$JOBPUB" "$MDB"
	assert_eq "$(row_status "$MDB" runs)" published "status after republish of root's files"
}

# ---- 3. symbolic links inside a POSIX destination ----------------------------------------------
linked_directory() {
	make_mini
	mkdir -p "$MARCHIVE" "$T/outside"
	ln -s "$T/outside" "$MARCHIVE/results"
	expect_rc 65 publish_mini
	assert_grep 'is a symbolic link' "$ERR"
	assert_grep_fixed "$MARCHIVE/results" "$ERR"
	assert_eq "$(count_files "$T/outside")" 0 "files written outside the destination"
	assert_eq "$(find "$T/outside" -mindepth 1 | wc -l | tr -d ' ')" 0 "entries outside the destination"
	[ -L "$MARCHIVE/results" ] || fail "the link was replaced"
	assert_no_temps "$T"
	# Deeper: results/ is real, results/run-a is the link.
	rm "$MARCHIVE/results"
	mkdir "$MARCHIVE/results"
	ln -s "$T/outside" "$MARCHIVE/results/run-a"
	expect_rc 65 publish_mini
	assert_grep 'is a symbolic link' "$ERR"
	assert_eq "$(find "$T/outside" -mindepth 1 | wc -l | tr -d ' ')" 0 "entries outside the destination"
	assert_eq "$(row_status "$MDB" runs)" failed_storage "status"
	assert_no_temps "$T"
}

linked_final_name() {
	make_mini
	mkdir -p "$MARCHIVE/results/run-a"
	printf 'a file outside the destination, not to be touched\n' >"$T/victim"
	cp -p "$T/victim" "$T/victim.orig"
	ln -s "$T/victim" "$MARCHIVE/results/run-a/result.txt"
	stat -c '%i %s %Y %a' "$T/victim" >"$T/victim.snap1"
	expect_rc 69 publish_mini
	assert_grep '--overwrite' "$ERR"
	[ -L "$MARCHIVE/results/run-a/result.txt" ] || fail "the link was replaced without --overwrite"
	cmp -s "$T/victim" "$T/victim.orig" || fail "the file behind the link changed (no --overwrite)"
	assert_eq "$(row_status "$MDB" runs)" failed_storage "status after the conflict"
	assert_no_temps "$T"
	expect_rc 0 publish_mini --overwrite
	[ ! -L "$MARCHIVE/results/run-a/result.txt" ] || fail "--overwrite left the link"
	[ -f "$MARCHIVE/results/run-a/result.txt" ] || fail "--overwrite left no file"
	cmp -s "$MJOB/out/result.txt" "$MARCHIVE/results/run-a/result.txt" || fail "--overwrite did not publish"
	cmp -s "$T/victim" "$T/victim.orig" || fail "the file behind the link changed (--overwrite)"
	stat -c '%i %s %Y %a' "$T/victim" >"$T/victim.snap2"
	cmp -s "$T/victim.snap1" "$T/victim.snap2" || fail "the file behind the link was replaced"
	assert_eq "$(row_status "$MDB" runs)" published "status after --overwrite"
	assert_no_temps "$T"
}

# verify --deep reads a published file that became a link as a link.  The link's own size (the
# length of its target) is made the file's, so that only reading it tells: following it would
# find the very content recorded.
verify_linked_file() {
	make_mini
	expect_rc 0 publish_mini
	f=$MARCHIVE/results/run-a/result.txt
	size=$(stat -c %s "$f")
	# results/run-a/../../../ is $MINI; NAME pads the relative target to $size characters.
	n=$((size - 9))
	[ "$n" -gt 0 ] || hard_error "result.txt is too small ($size bytes) for the padded link"
	name=$(printf '%*s' "$n" '' | tr ' ' o)
	cp "$f" "$MINI/$name"
	rm "$f"
	ln -s "../../../$name" "$f"
	assert_eq "$(stat -c %s "$f")" "$size" "size of the link itself"
	cmp -s "$f" "$MJOB/out/result.txt" || hard_error "the link does not lead to the same content"
	rc=0
	"$JOBPUB" verify --db "$MDB" --deep >"$OUT" 2>"$ERR" || rc=$?
	[ "$rc" != 0 ] || { show "$OUT"; fail "verify --deep found nothing wrong with a linked file"; }
	assert_grep "results/run-a/result\.txt: .*(symbolic link|cannot be read back)" "$OUT"
	assert_grep '1 of 2 files as recorded' "$OUT"
	# A link of another size: the plain verify reports it from the link's own size.
	rm "$f"
	ln -s "$MINI/$name/../$name" "$f"
	rc=0
	"$JOBPUB" verify --db "$MDB" >"$OUT" 2>"$ERR" || rc=$?
	[ "$rc" != 0 ] || { show "$OUT"; fail "verify found nothing wrong with a linked file"; }
	assert_grep "results/run-a/result\.txt: size [0-9]+, recorded $size" "$OUT"
}

# ---- 4. gc never deletes a displaced original --------------------------------------------------
gc_displaced() {
	make_mini
	expect_rc 0 publish_mini
	old=$MARCHIVE/results/run-a/.jobpub-old-0123456789abcdef.result.txt
	tmp=$MARCHIVE/results/run-a/.jobpub-fedcba9876543210.result.txt
	printf 'the only copy of a replaced result\n' >"$old"
	printf 'a partial upload\n' >"$tmp"
	touch -d '2 days ago' "$old" "$tmp"
	expect_rc 0 "$JOBPUB" gc --db "$MDB" --older-than 0 --apply
	assert_grep "^ *displaced +file://$old " "$OUT"
	assert_grep 'displaced, [0-9]+ unreferenced|1 displaced$' "$OUT"
	[ "$(tail -n 1 "$OUT" | sed 's/.*, //')" = "1 displaced" ] || { show "$OUT"; fail "the summary does not end with '1 displaced'"; }
	[ -f "$old" ] || fail "gc --apply deleted the displaced original"
	assert_grep '^the only copy of a replaced result$' "$old"
	# The temporary file beside it (no lease) is deleted: --apply did apply.
	assert_absent "$tmp"
	assert_no_grep "unreferenced +file://$old" "$OUT"
	# --json says the same.
	expect_rc 0 "$JOBPUB" gc --db "$MDB" --older-than 0 --apply --json
	assert_grep '"displaced": *1' "$OUT"
	[ -f "$old" ] || fail "gc --apply --json deleted the displaced original"
}

# ---- 5. the Slurm epilog publishes with umask 022 ----------------------------------------------
epilog_umask() {
	EPILOG=$TOP_SRCDIR/scripts/slurm-epilog
	[ -f "$EPILOG" ] || hard_error "no $EPILOG"
	chmod 711 "$T"
	mkdir -p "$T/bin"
	cp "$JOBPUB" "$T/bin/jobpub"
	chmod 755 "$T/bin" "$T/bin/jobpub"
	printf '#!/bin/sh\nprintf "%%s\\n" "$*" >>"%s"\n' "$T/syslog" >"$T/bin/logger"
	chmod 755 "$T/bin/logger"
	: >"$T/syslog"
	chmod 666 "$T/syslog"
	if [ "$(id -u)" = 0 ]; then
		need useradd userdel setpriv
		TUSER=jp-sec-$$
		TUID=61500
		while getent passwd "$TUID" >/dev/null || getent group "$TUID" >/dev/null; do
			TUID=$((TUID + 1))
		done
		trap 'userdel "$TUSER" >/dev/null 2>&1 || true' EXIT
		useradd -M -d /nonexistent -u "$TUID" -s /bin/sh "$TUSER" >"$T/useradd.log" 2>&1 ||
			{ show "$T/useradd.log"; hard_error "useradd $TUSER failed"; }
		TGID=$(id -g "$TUSER")
		as_user() {
			setpriv --reuid="$TUID" --regid="$TGID" --init-groups -- \
				env -i HOME=/nonexistent USER="$TUSER" PATH=/usr/bin:/bin "$@"
		}
	else
		TUSER=$(id -un)
		TUID=$(id -u)
		as_user() { "$@"; }
	fi
	W=$T/ep
	mkdir -p "$W/job/out" "$W/job/sub" "$T/spool/$TUSER"
	printf 'epilog result\n' >"$W/job/out/result.txt"
	printf 'nested\n' >"$W/job/sub/nested.txt"
	cat >"$W/manifest.yaml" <<EOF
destination: file://$W/archive
catalog:
  table: runs
outputs:
  - name: result
    path: out/result.txt
    to: \${row.name}/result.txt
    column: result_url
  - name: nested
    path: sub/nested.txt
    to: \${row.name}/deeper/down/nested.txt
EOF
	[ "$(id -u)" != 0 ] || chown -R "$TUID:$TGID" "$W" "$T/spool/$TUSER"
	chmod 700 "$T/spool/$TUSER"
	as_user sqlite3 -batch -bail "$W/cat.db" "CREATE TABLE runs (id TEXT PRIMARY KEY, name TEXT,
		status TEXT, result_url TEXT); INSERT INTO runs VALUES ('7301', 'run-7301', 'running', NULL)" ||
		fail "cannot create the user's catalogue"
	as_user "$T/bin/jobpub" enqueue --job 7301 --manifest "$W/manifest.yaml" --workdir "$W/job" \
		--db "$W/cat.db" --spool "$T/spool/$TUSER" >"$T/enqueue.log" 2>&1 ||
		{ show "$T/enqueue.log"; fail "enqueue failed"; }
	[ -f "$T/spool/$TUSER/7301.json" ] || fail "no spool entry after enqueue"
	# The epilog as slurmd runs it (a bare environment), from a shell with a strict umask too.
	RC=0
	(umask 077 && exec env -i SLURM_JOB_ID=7301 SLURM_JOB_USER="$TUSER" SLURM_JOB_UID="$TUID" \
		PATH="$T/bin:/usr/sbin:/usr/bin:/sbin:/bin" JOBPUB="$T/bin/jobpub" \
		JOBPUB_SPOOL="$T/spool/%u" bash "$EPILOG") >"$OUT" 2>"$ERR" || RC=$?
	[ "$RC" = 0 ] || { show "$ERR"; fail "the epilog exited $RC"; }
	assert_grep 'job 7301: .*published \(exit 0' "$T/syslog"
	assert_eq "$(as_user sqlite3 -batch "$W/cat.db" "SELECT status FROM runs")" published "status"
	A=$W/archive/run-7301
	cmp -s "$W/job/out/result.txt" "$A/result.txt" || fail "result.txt not published"
	cmp -s "$W/job/sub/nested.txt" "$A/deeper/down/nested.txt" || fail "nested.txt not published"
	for f in "$A/result.txt" "$A/deeper/down/nested.txt"; do
		assert_eq "$(stat -c %a "$f")" 644 "mode of ${f#"$W"/}"
		assert_eq "$(stat -c %u "$f")" "$TUID" "owner of ${f#"$W"/}"
	done
	for d in "$A" "$A/deeper" "$A/deeper/down"; do
		assert_eq "$(stat -c %a "$d")" 755 "mode of the created directory ${d#"$W"/}"
	done
	assert_no_temps "$W"
}

run_case password_dest_option
run_case password_in_manifest
run_case password_from_variables
run_case root_guard
run_case root_guard_republish
run_case linked_directory
run_case linked_final_name
run_case verify_linked_file
run_case gc_displaced
run_case epilog_umask
finish

#!/usr/bin/env bash
# publish-sftp.sh [--jobpub PATH] [DATADIR]
#
# Times `jobpub publish` to an sftp:// destination against the SFTP clients people use today,
# on the same data, against the same private OpenSSH server, in one run (issue 4's bench/):
#
#   jobpub      jobpub publish, --parallel 4 (the default); for the tree also --parallel 1.
#               Per file: stage under a temporary name, fsync@openssh.com on the server, fstat
#               to check the size, rename to the final name (no overwrite), catalogue row.
#   sftp -b     OpenSSH sftp(1) in batch mode, `put` (`put -r` for the tree), with
#               `-c aes128-ctr -o MACs=hmac-sha2-256`: the cipher and MAC that Debian 12's
#               libssh2 1.10 (jobpub, curl) negotiates with OpenSSH 9.2, checked below.  sftp
#               neither fsyncs nor checks sizes, and writes under the final name.
#   curl -T     curl's SFTP upload (libssh2 too), when `curl -V` lists sftp; the tree is one curl
#               process with one url/upload-file pair per file (-K), so the connection is reused.
#   rclone      `rclone copy` to an on-the-fly sftp remote, only when rclone is installed (it is
#               not part of a Debian 12 install; this script never fetches it).
#
# Two data sets: one 1 GiB file of random bytes, and 10,000 files of 4 KiB of random bytes.
# The server is a private sshd started with tests/sshd-start.sh in the work directory (127.0.0.1,
# a free high port, its own keys) and stopped with tests/sshd-stop.sh, which signals only the PID
# in its pid file, also when this script fails or is interrupted (trap).  It is on this machine,
# so client and server share the 2 CPUs and the disk.
#
# Each measurement: GNU time's %e (wall), %M (peak RSS of the largest process: for sftp the sftp
# or its ssh child, not their sum), %U and %S (user and system CPU of the client and its waited-for
# children; the server's sshd is not in it), and the wall time from bash's microsecond clock.
# Nothing is dropped from the page cache (that needs root): one warm-up pass reads the source,
# then every method runs 3 times in rotation and the median is reported.  Before each run the
# server-side destination is removed and `sync` runs, untimed.  Round 1 of every method checks
# byte-identical results (cmp, diff -r) on the server side, untimed.
#
# Before the timed runs, a one-off check (untimed) starts the same sshd config once in the
# foreground at LogLevel DEBUG3 to log which cipher and MAC jobpub (libssh2) negotiates, and
# `sftp -D sftp-server -l DEBUG3` lists the SFTP requests `sftp -b` sends for 3 small files.
#
# DATADIR: where the source data and the server's directory go (one filesystem); default a new
# `mktemp -d` under /var/tmp.  Removed at the end.  About 2.2 GiB must be free.
# The jobpub binary: --jobpub PATH, else $JOBPUB, else `jobpub` on PATH.
# BENCH_BIG_MIB and BENCH_TREE_FILES (default 1024 and 10000) shrink the data for a quick try.
#
# Output: notes and a Markdown table on stdout (progress on stderr).
set -euo pipefail

prog=${0##*/}
here=$(cd "$(dirname "$0")" && pwd)
tests=$here/../tests
ROUNDS=3
BIG_MIB=${BENCH_BIG_MIB:-1024}
TREE_FILES=${BENCH_TREE_FILES:-10000}
CIPHER=aes128-ctr
MAC=hmac-sha2-256

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

# ---- tools -----------------------------------------------------------------------------------
need_gnu_time
find_jobpub
[[ -x $tests/sshd-start.sh && -x $tests/sshd-stop.sh ]] ||
	[[ -f $tests/sshd-start.sh && -f $tests/sshd-stop.sh ]] || die "tests/sshd-start.sh is missing"
for t in sftp ssh-keygen split cmp diff sync head awk sort df /usr/sbin/sshd; do
	command -v "$t" >/dev/null || die "$t is missing (openssh-client, openssh-server, coreutils)"
done

have_curl=0
if command -v curl >/dev/null && curl -V | grep -qw sftp; then
	have_curl=1
fi
have_rclone=0
if command -v rclone >/dev/null; then
	have_rclone=1
fi

# ---- work directory and server ---------------------------------------------------------------
if [[ -n $datadir ]]; then
	[[ -d $datadir ]] || die "DATADIR '$datadir' is not a directory"
	work=$(mktemp -d "$datadir/jobpub-bench.XXXXXX")
else
	work=$(mktemp -d /var/tmp/jobpub-bench.XXXXXX)
fi
work=$(cd "$work" && pwd -P)
dbg_pid=
cleanup() {
	if [[ -n $dbg_pid ]]; then
		kill "$dbg_pid" 2>/dev/null || true
		wait "$dbg_pid" 2>/dev/null || true
	fi
	sh "$tests/sshd-stop.sh" "$work/sshd" >/dev/null 2>&1 || true
	rm -rf -- "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

need_kib=$(((2 * BIG_MIB + 2 * TREE_FILES * 8 / 1024 + 256) * 1024))
avail_kib=$(df -Pk "$work" | awk 'NR == 2 { print $4 }')
((avail_kib > need_kib)) ||
	die "$work: $((avail_kib / 1024)) MiB free, about $((need_kib / 1024)) MiB needed"

say "jobpub: $jobpub ($("$jobpub" --version))"
say "working in $work ($(df -PT "$work" | awk 'NR == 2 { print $2 }'))"

# A HOME of our own: no ~/.ssh/config, agent or known_hosts of the user's changes what runs.
export HOME=$work/home
unset SSH_AUTH_SOCK JOBPUB_SSH_PASSPHRASE_FILE JOBPUB_DEST JOBPUB_DB
mkdir -p "$HOME/.ssh"
chmod 700 "$HOME/.ssh"

sh "$tests/sshd-start.sh" "$work/sshd" >/dev/null || die "tests/sshd-start.sh failed"
# shellcheck disable=SC1091
. "$work/sshd/env"
cp "$SSHD_KNOWN_HOSTS" "$HOME/.ssh/known_hosts"   # curl reads ~/.ssh/known_hosts
say "sshd pid $SSHD_PID on 127.0.0.1:$SSHD_PORT, start directory $SSHD_ROOT"
dst=$SSHD_ROOT/dst
url="sftp://$SSH_USER@127.0.0.1:$SSHD_PORT$dst"
hostsha=$(ssh-keygen -lf "$SSHD_HOSTKEY_PUB" | awk '{ sub(/^SHA256:/, "", $2); print $2 }')
sftp_opts=(-q -F /dev/null -c "$CIPHER" -o "MACs=$MAC" -o "IdentityFile=$SSH_KEY"
	-o IdentitiesOnly=yes -o "UserKnownHostsFile=$SSHD_KNOWN_HOSTS" -o StrictHostKeyChecking=yes
	-o BatchMode=yes -o Compression=no -P "$SSHD_PORT")
curl_opts=(-sS --key "$SSH_KEY" --pubkey "$SSH_KEY.pub" --hostpubsha256 "$hostsha")
jp_net=(--identity "$SSH_KEY" --known-hosts "$SSHD_KNOWN_HOSTS")

# ---- data ------------------------------------------------------------------------------------
src=$work/src
mkdir -p "$src/tree"
say "creating a ${BIG_MIB} MiB file and $TREE_FILES files of 4 KiB (random bytes)"
head -c $((BIG_MIB * 1024 * 1024)) /dev/urandom >"$src/big.bin"
head -c $((TREE_FILES * 4096)) /dev/urandom | (cd "$src/tree" && split -b 4096 -a 5 -d - f_)
n=$(find "$src/tree" -type f | wc -l)
[[ $n == "$TREE_FILES" ]] || die "split made $n files, not $TREE_FILES"
tree_bytes=$((TREE_FILES * 4096))

cat >"$work/big.yaml" <<'EOF'
outputs:
  - name: big
    path: big.bin
    to: big.bin
EOF
cat >"$work/tree.yaml" <<'EOF'
outputs:
  - name: tree
    glob: tree/*
    to: tree/${basename}
EOF
db=$work/catalog.db
printf 'put %s %s/big.bin\n' "$src/big.bin" "$dst" >"$work/big.batch"
printf 'put -r %s %s/tree\n' "$src/tree" "$dst" >"$work/tree.batch"
: >"$work/tree.curl"
for f in "$src"/tree/*; do
	printf 'url = "%s/tree/%s"\nupload-file = "%s"\n' "$url" "${f##*/}" "$f" >>"$work/tree.curl"
done
cat >"$work/rclone.conf" <<EOF
[bench]
type = sftp
host = 127.0.0.1
port = $SSHD_PORT
user = $SSH_USER
key_file = $SSH_KEY
known_hosts_file = $SSHD_KNOWN_HOSTS
EOF

# ---- one-off checks (untimed) ----------------------------------------------------------------
# Which cipher and MAC does libssh2 1.10 negotiate, and which SFTP requests does each side send
# per file?  A copy of the server's config at LogLevel DEBUG3 (our
# own file; tests/sshd-start.sh's is left as it is) runs once in the foreground on the same port
# while the benchmark's sshd is stopped; its PID is $!, and it is ended by that PID.
say "checking the cipher libssh2 negotiates, and the SFTP requests per file"
sh "$tests/sshd-stop.sh" "$work/sshd" >/dev/null
sed -e 's/^LogLevel .*/LogLevel DEBUG3/' \
	-e "s|^PidFile .*|PidFile $work/sshd-debug.pid|" "$SSHD_DIR/sshd_config" >"$work/sshd-debug_config"
mkdir -p "$work/tiny/in" "$dst"
for i in 1 2 3; do head -c 4096 /dev/urandom >"$work/tiny/in/r$i"; done
printf 'outputs:\n  - name: in\n    glob: in/*\n    to: check/${basename}\n' >"$work/tiny.yaml"
/usr/sbin/sshd -D -f "$work/sshd-debug_config" -E "$work/sshd-debug.log" &
dbg_pid=$!
for ((i = 0; i < 50; i++)); do
	grep -q 'Server listening' "$work/sshd-debug.log" 2>/dev/null && break
	sleep 0.1
done
"$jobpub" publish -q --job request-check --manifest "$work/tiny.yaml" --workdir "$work/tiny" \
	--db "$work/check.db" --dest "$url" --parallel 1 "${jp_net[@]}" ||
	die "jobpub publish to the debug sshd failed"
printf 'put -r %s %s/sftp-check\n' "$work/tiny/in" "$dst" >"$work/req.batch"
sftp "${sftp_opts[@]}" -b "$work/req.batch" "$SSH_USER@127.0.0.1" >/dev/null ||
	die "sftp -b to the debug sshd failed"
kill "$dbg_pid"
wait "$dbg_pid" 2>/dev/null || true
dbg_pid=
# One connection each, in this order: jobpub's (--parallel 1 opens one), then sftp's.
kex=$(grep -o 'kex: client->server cipher: [^ ]* MAC: [^ ]*' "$work/sshd-debug.log" |
	sed 's/.*cipher: \([^ ]*\) MAC: \(.*\)/\1 + \2/')
[[ $(wc -l <<<"$kex") == 2 ]] || die "expected 2 connections in the debug sshd's log: $work/sshd-debug.log"
negotiated=$(head -n 1 <<<"$kex")
negotiated_sftp=$(tail -n 1 <<<"$kex")
# sftp -b's SFTP requests for the same 3 files: sftp -D runs sftp-server locally, and its DEBUG3
# log names every request (internal-sftp's log does not reach sshd's -E file).
printf 'put -r %s %s/sftp-d-check\n' "$work/tiny/in" "$work" >"$work/req.batch"
sftp -q -b "$work/req.batch" -D "/usr/lib/openssh/sftp-server -e -l DEBUG3" >/dev/null \
	2>"$work/req.log" || die "sftp -D /usr/lib/openssh/sftp-server failed"
sftp_reqs=$(awk '/request [0-9]+: / {
		sub(/.*request [0-9]+: /, ""); split($0, w, " ")
		if (w[1] != "sent") n[w[1]]++
	}
	END { for (k in n) printf "%s %d\n", k, n[k] }' "$work/req.log" | sort |
	awk '{ printf "%s%s %s", sep, $1, $2; sep = ", " }')
rm -rf -- "$dst"
sh "$tests/sshd-start.sh" "$work/sshd" >/dev/null || die "tests/sshd-start.sh failed (restart)"
# shellcheck disable=SC1091
. "$work/sshd/env"

# ---- one measurement -------------------------------------------------------------------------
# measure SET METHOD ROUND: one timed run into a fresh destination;
# prints "wall_s rss_kib user_s sys_s wall_ms".
measure() {
	local set=$1 method=$2 round=$3 tf=$work/time.out
	local -a cmd
	local t0 t1
	rm -rf -- "$dst"
	mkdir -p "$dst"
	sync
	case $set/$method in
	big/jobpub)
		cmd=("$jobpub" publish -q --job "big-$round" --manifest "$work/big.yaml" --workdir "$src"
			--db "$db" --dest "$url" "${jp_net[@]}") ;;
	tree/jobpub)
		cmd=("$jobpub" publish -q --job "tree-$round" --manifest "$work/tree.yaml" --workdir "$src"
			--db "$db" --dest "$url" "${jp_net[@]}") ;;
	tree/jobpub-p1)
		cmd=("$jobpub" publish -q --job "tree-p1-$round" --manifest "$work/tree.yaml" --workdir "$src"
			--db "$db" --dest "$url" --parallel 1 "${jp_net[@]}") ;;
	big/sftp)
		cmd=(sftp "${sftp_opts[@]}" -b "$work/big.batch" "$SSH_USER@127.0.0.1") ;;
	tree/sftp)
		cmd=(sftp "${sftp_opts[@]}" -b "$work/tree.batch" "$SSH_USER@127.0.0.1") ;;
	big/curl)
		cmd=(curl "${curl_opts[@]}" -T "$src/big.bin" "$url/big.bin") ;;
	tree/curl)
		cmd=(curl "${curl_opts[@]}" --ftp-create-dirs -K "$work/tree.curl") ;;
	big/rclone)
		cmd=(rclone --config "$work/rclone.conf" copyto "$src/big.bin" "bench:$dst/big.bin") ;;
	tree/rclone)
		cmd=(rclone --config "$work/rclone.conf" copy "$src/tree" "bench:$dst/tree") ;;
	*) die "internal: unknown measurement $set/$method" ;;
	esac
	t0=$EPOCHREALTIME
	if ! /usr/bin/time -f '%e %M %U %S' -o "$tf" "${cmd[@]}" >"$work/cmd.out" 2>&1; then
		cat "$work/cmd.out" >&2
		die "$set/$method (round $round) failed: ${cmd[*]}"
	fi
	t1=$EPOCHREALTIME
	if [[ $round == 1 ]]; then
		if [[ $set == big ]]; then
			cmp -s "$src/big.bin" "$dst/big.bin" || die "$set/$method: the copy differs"
		else
			diff -r -q "$src/tree" "$dst/tree" >/dev/null || die "$set/$method: the copy differs"
		fi
	fi
	printf '%s %s\n' "$(tail -n 1 "$tf")" \
		"$(awk -v a="${t0/,/.}" -v b="${t1/,/.}" 'BEGIN { printf "%.1f", (b - a) * 1000 }')"
	rm -rf -- "$dst"
	sync
}

# ---- warm-up ---------------------------------------------------------------------------------
say "warm-up: reading the source data once"
cat "$src/big.bin" "$src"/tree/* >/dev/null
sync

# ---- the runs --------------------------------------------------------------------------------
big_methods=(jobpub sftp)
tree_methods=(jobpub jobpub-p1 sftp)
if ((have_curl)); then big_methods+=(curl); tree_methods+=(curl); fi
if ((have_rclone)); then big_methods+=(rclone); tree_methods+=(rclone); fi
declare -A walls rsss users syss msecs
started=$SECONDS
for set in big tree; do
	if [[ $set == big ]]; then methods=("${big_methods[@]}"); else methods=("${tree_methods[@]}"); fi
	for ((r = 1; r <= ROUNDS; r++)); do
		for m in "${methods[@]}"; do
			res=$(measure "$set" "$m" "$r")
			read -r w k u s ms <<<"$res"
			walls[$set/$m]+="$w "
			rsss[$set/$m]+="$k "
			users[$set/$m]+="$u "
			syss[$set/$m]+="$s "
			msecs[$set/$m]+="$ms "
			say "$set round $r: $m ${w} s (${ms} ms), user ${u} s, sys ${s} s, $((k / 1024)) MiB"
		done
	done
done
say "timed runs: $((SECONDS - started)) s"

# ---- output ----------------------------------------------------------------------------------
label() {
	case $1 in
	jobpub) echo '`jobpub publish` (--parallel 4)' ;;
	jobpub-p1) echo '`jobpub publish --parallel 1`' ;;
	sftp) echo "\`sftp -b\` ($CIPHER, $MAC)" ;;
	curl) echo '`curl -T sftp://`' ;;
	rclone) echo '`rclone copy`' ;;
	esac
}
echo "- server: OpenSSH $(/usr/sbin/sshd -V 2>&1 | head -n 1 | awk '{ print $1 }' | sed 's/,$//'), internal-sftp, 127.0.0.1:$SSHD_PORT (tests/sshd-start.sh)"
echo "- client: $(ssh -V 2>&1 | sed 's/,.*//'); libssh2 $(dpkg-query -W -f '${Version}' libssh2-1 2>/dev/null || echo '?'); $(curl -V 2>/dev/null | head -n 1 | awk '{ print $1, $2 }')"
echo "- cipher + MAC negotiated, from the server's DEBUG3 log: jobpub (libssh2, its defaults): $negotiated; sftp -b with -c $CIPHER -o MACs=$MAC: $negotiated_sftp; curl uses libssh2's defaults too"
echo "- SFTP requests of \`sftp -b\` (put -r) for 3 files of 4 KiB, from sftp-server's DEBUG3 log (sftp -D): $sftp_reqs"
echo "- jobpub per file: stat (is it already there?), open (temporary name, O_EXCL), write, fsync@openssh.com, fstat (size check), close, rename; sftp -b and curl do neither the fsync nor the size check, and write under the final name"
if ((have_curl)); then
	echo "- curl: $(command -v curl) (sftp in \`curl -V\`)"
else
	echo "- curl: no sftp in \`curl -V\`; not measured"
fi
if ((have_rclone)); then
	echo "- rclone: $(rclone version 2>/dev/null | head -n 1)"
else
	echo "- rclone: not installed (not part of Debian 12 by default; not fetched); not measured"
fi
echo
echo "| data | method | wall s, median (%e) | wall s, 3 runs (%e) | wall ms, median (µs clock) | MiB/s | user CPU s (median) | sys CPU s (median) | peak RSS MiB (median) | vs \`sftp -b\` |"
echo "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for set in big tree; do
	if [[ $set == big ]]; then
		methods=("${big_methods[@]}")
		what="$(size_label "$BIG_MIB") file"
		bytes=$((BIG_MIB * 1024 * 1024))
	else
		methods=("${tree_methods[@]}")
		what="$TREE_FILES files of 4 KiB"
		bytes=$tree_bytes
	fi
	# shellcheck disable=SC2086
	ref=$(median ${msecs[$set/sftp]})
	for m in "${methods[@]}"; do
		# shellcheck disable=SC2086
		{
			k=$(median ${rsss[$set/$m]})
			u=$(median ${users[$set/$m]})
			s=$(median ${syss[$set/$m]})
			ms=$(median ${msecs[$set/$m]})
		}
		result_row "$what" "$(label "$m")" "${walls[$set/$m]}" "$ms" "$k" "$u" "$s" "$bytes" "$ref"
	done
done

#!/usr/bin/env bash
# publish-s3.sh [--jobpub PATH] [DATADIR]
#
# Times `jobpub publish` to an s3:// destination against the S3 clients people use today, on the
# same data, against the same private Ceph RADOS Gateway, in one run (issue 5's bench/):
#
#   jobpub      jobpub publish, --parallel 4 (the default); for the 1000 files also --parallel 8.
#               Default part size (16 MiB); per part a Content-MD5, the payload unsigned
#               (UNSIGNED-PAYLOAD); SHA-256 of every file into the catalogue.
#   aws         Debian's awscli (v2): `aws s3 cp` for the file, `aws s3 sync` for the 1000 files,
#               its defaults (8 MiB parts, 10 requests at once).  Over http:// it signs the
#               payload, so it computes a SHA-256 of every request body.
#   rclone      `rclone copy` to a remote configured by environment variables only
#               (RCLONE_CONFIG_BENCH_*, provider Ceph), its defaults (5 MiB parts, 4 at once for
#               one file, 4 transfers).
#   curl        curl's own SigV4 (--aws-sigv4), UNSIGNED-PAYLOAD: for the file one single PUT
#               (-T), the reference; for the 1000 files one curl process with one url /
#               upload-file pair per file (-K), so one connection, one file after the other.
#
# Two data sets: one 1 GiB file of random bytes, and 1000 files of 64 KiB of random bytes.  Each
# tool writes below its own prefix of the bucket (jobpub-big/, aws-tree/, ...).
#
# The server: tests/rgw-start.sh in the work directory starts ceph-mon, ceph-osd (memstore: the
# objects are held in RAM, RGW_MEMSTORE_BYTES, default here 3 GiB) and radosgw on 127.0.0.1; a
# trap stops them with tests/rgw-stop.sh (by the PIDs in their pid files), also when this script
# fails or is interrupted.  Client and server share this machine's CPUs.
#
# Each measurement: GNU time's %e (wall), %M (peak RSS), %U and %S (user and system CPU of the
# client and its children), the wall time from bash's microsecond clock, and the CPU time (user +
# system, from /proc/PID/stat) that radosgw and ceph-osd used meanwhile.  One warm-up pass reads
# the source; then every method runs ROUNDS times (BENCH_ROUNDS, default 3) in rotation and the
# median is reported.  After each run, untimed: round 1 checks the objects (the file read back
# with a GET and compared, the 1000 files fetched with `aws s3 cp --recursive` and compared with
# diff -r); then the prefix is emptied (`aws s3 rm --recursive`) and `radosgw-admin gc process
# --include-all` hands the memory back to the memstore, so no run pays for another's garbage.
#
# DATADIR: where the source data and the cluster's directory go; default a new
# `mktemp -d` under /var/tmp.  Removed at the end.  About 1.2 GiB must be free there, and about
# RGW_MEMSTORE_BYTES of RAM.
# The jobpub binary: --jobpub PATH, else $JOBPUB, else `jobpub` on PATH.  The aws binary:
# $BENCH_AWS, else Debian's /usr/bin/aws.  BENCH_BIG_MIB and BENCH_TREE_FILES (default 1024 and
# 1000) shrink the data for a quick try.
#
# Needs: time, curl, awscli, rclone (Debian packages), the Ceph daemons of tests/rgw-start.sh
# (ceph-mon ceph-osd radosgw ceph-common).  Exit 99 when one is missing.
#
# Output: notes, the command lines, a Markdown table and the targets on stdout (progress on
# stderr).
set -euo pipefail

prog=${0##*/}
here=$(cd "$(dirname "$0")" && pwd)
tests=$here/../tests
ROUNDS=${BENCH_ROUNDS:-3}
BIG_MIB=${BENCH_BIG_MIB:-1024}
TREE_FILES=${BENCH_TREE_FILES:-1000}
TREE_KIB=64
export RGW_MEMSTORE_BYTES=${RGW_MEMSTORE_BYTES:-3221225472}
APT='apt-get install -y --no-install-recommends'

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

# missing TOOL PACKAGES: a tool the benchmark needs is not installed (exit 99, as the tests do).
missing() {
	printf '%s: %s is missing; on Debian 12: %s %s\n' "$prog" "$1" "$APT" "$2" >&2
	exit 99
}

# ---- tools -----------------------------------------------------------------------------------
if [[ ! -x /usr/bin/time ]] || ! /usr/bin/time -f '%e %M' -o /dev/null true 2>/dev/null; then
	missing "GNU time (/usr/bin/time -f '%e %M')" time
fi
need_gnu_time
find_jobpub
"$jobpub" publish --help 2>&1 | grep -q -- '--s3-endpoint' ||
	die "$jobpub has no S3 support (no --s3-endpoint in 'jobpub publish --help')"
[[ -f $tests/rgw-start.sh && -f $tests/rgw-stop.sh ]] || die "tests/rgw-start.sh is missing"
for t in ceph-mon ceph-osd radosgw radosgw-admin; do
	command -v "$t" >/dev/null || missing "$t" "ceph-mon ceph-osd radosgw ceph-common"
done
command -v curl >/dev/null || missing curl curl
aws=${BENCH_AWS:-/usr/bin/aws}
[[ -x $aws ]] || missing "aws ($aws)" awscli
command -v rclone >/dev/null || missing rclone rclone
for t in split cmp diff sync head awk sort df find; do
	command -v "$t" >/dev/null || missing "$t" "coreutils diffutils findutils gawk"
done
((ROUNDS >= 1)) || die "BENCH_ROUNDS must be at least 1"

# ---- work directory and server ---------------------------------------------------------------
if [[ -n $datadir ]]; then
	[[ -d $datadir ]] || die "DATADIR '$datadir' is not a directory"
	work=$(mktemp -d "$datadir/jobpub-bench.XXXXXX")
else
	work=$(mktemp -d /var/tmp/jobpub-bench.XXXXXX)
fi
work=$(cd "$work" && pwd -P)
rgwd=$work/rgw
cleanup() {
	sh "$tests/rgw-stop.sh" "$rgwd" >/dev/null 2>&1 || true
	rm -rf -- "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

need_kib=$(((BIG_MIB + TREE_FILES * TREE_KIB / 1024 + 128) * 1024))
avail_kib=$(df -Pk "$work" | awk 'NR == 2 { print $4 }')
((avail_kib > need_kib)) ||
	die "$work: $((avail_kib / 1024)) MiB free, about $((need_kib / 1024)) MiB needed"
mem_kib=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)
((mem_kib > RGW_MEMSTORE_BYTES / 1024 + 1048576)) ||
	die "$((mem_kib / 1024)) MiB of RAM available; the memstore (RGW_MEMSTORE_BYTES) and 1 GiB more are needed"

say "jobpub: $jobpub ($("$jobpub" --version))"
say "working in $work ($(df -PT "$work" | awk 'NR == 2 { print $2 }'))"

# A HOME of our own, and none of the user's AWS settings: only what this script sets is used.
export HOME=$work/home
mkdir -p "$HOME"
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE
unset AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 AWS_REGION AWS_DEFAULT_REGION AWS_CA_BUNDLE
unset JOBPUB_DEST JOBPUB_DB RCLONE_CONFIG
for v in $(env | sed -n 's/^\(RCLONE_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done

say "starting the Ceph RADOS Gateway (memstore $((RGW_MEMSTORE_BYTES / 1048576)) MiB)"
rc=0
sh "$tests/rgw-start.sh" "$rgwd" >"$work/rgw-start.log" 2>&1 || rc=$?
if ((rc != 0)); then
	cat "$work/rgw-start.log" >&2
	((rc == 99)) && exit 99
	die "tests/rgw-start.sh failed"
fi
# shellcheck disable=SC1091
. "$rgwd/env"
say "radosgw pid $RGW_PID on $RGW_ENDPOINT, ceph-osd pid $CEPH_OSD_PID, bucket $RGW_BUCKET"
B=$RGW_BUCKET

export AWS_ACCESS_KEY_ID=$RGW_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$RGW_SECRET_KEY
export AWS_DEFAULT_REGION=us-east-1 AWS_PAGER='' AWS_EC2_METADATA_DISABLED=true
export RCLONE_CONFIG=$work/rclone.conf  # never created: the remote is in the environment only
export RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Ceph
export RCLONE_CONFIG_BENCH_ENDPOINT=$RGW_ENDPOINT
export RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=$RGW_ACCESS_KEY RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=$RGW_SECRET_KEY
aws_opts=(--endpoint-url "$RGW_ENDPOINT" --region us-east-1)
curl_sig=(-sS -f --aws-sigv4 'aws:amz:us-east-1:s3' --user "$RGW_ACCESS_KEY:$RGW_SECRET_KEY"
	-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD')

# ---- data ------------------------------------------------------------------------------------
src=$work/src
mkdir -p "$src/tree"
say "creating a ${BIG_MIB} MiB file and $TREE_FILES files of $TREE_KIB KiB (random bytes)"
head -c $((BIG_MIB * 1024 * 1024)) /dev/urandom >"$src/big.bin"
head -c $((TREE_FILES * TREE_KIB * 1024)) /dev/urandom |
	(cd "$src/tree" && split -b $((TREE_KIB * 1024)) -a 4 -d - f_)
n=$(find "$src/tree" -type f | wc -l)
[[ $n == "$TREE_FILES" ]] || die "split made $n files, not $TREE_FILES"
tree_bytes=$((TREE_FILES * TREE_KIB * 1024))

cat >"$work/big.yaml" <<EOF
s3:
  endpoint: $RGW_ENDPOINT
outputs:
  - name: big
    path: big.bin
    to: big.bin
EOF
cat >"$work/tree.yaml" <<EOF
s3:
  endpoint: $RGW_ENDPOINT
outputs:
  - name: tree
    glob: tree/*
    to: tree/\${basename}
EOF
db=$work/catalog.db
: >"$work/tree.curl"
for f in "$src"/tree/*; do
	printf 'url = "%s/%s/curl-tree/tree/%s"\nupload-file = "%s"\n' "$RGW_ENDPOINT" "$B" \
		"${f##*/}" "$f" >>"$work/tree.curl"
done

# ---- one measurement -------------------------------------------------------------------------
# command_for SET METHOD ROUND: sets cmd (the command line) and prefix (its prefix in the bucket).
command_for() {
	local set=$1 method=$2 round=$3
	prefix=$method-$set
	case $set/$method in
	big/jobpub)
		cmd=("$jobpub" publish -q --job "big-$round" --manifest "$work/big.yaml" --workdir "$src"
			--db "$db" --dest "s3://$B/$prefix") ;;
	tree/jobpub)
		cmd=("$jobpub" publish -q --job "tree-$round" --manifest "$work/tree.yaml" --workdir "$src"
			--db "$db" --dest "s3://$B/$prefix") ;;
	tree/jobpub-p8)
		cmd=("$jobpub" publish -q --job "tree-p8-$round" --manifest "$work/tree.yaml" --workdir "$src"
			--db "$db" --dest "s3://$B/$prefix" --parallel 8) ;;
	big/aws)
		cmd=("$aws" s3 cp --only-show-errors "${aws_opts[@]}" "$src/big.bin" "s3://$B/$prefix/big.bin") ;;
	tree/aws)
		cmd=("$aws" s3 sync --only-show-errors "${aws_opts[@]}" "$src/tree" "s3://$B/$prefix/tree") ;;
	big/rclone)
		cmd=(rclone copy "$src/big.bin" "bench:$B/$prefix") ;;
	tree/rclone)
		cmd=(rclone copy "$src/tree" "bench:$B/$prefix/tree") ;;
	big/curl)
		cmd=(curl "${curl_sig[@]}" -o /dev/null -T "$src/big.bin" "$RGW_ENDPOINT/$B/$prefix/big.bin") ;;
	tree/curl)
		cmd=(curl "${curl_sig[@]}" -o /dev/null -K "$work/tree.curl") ;;
	*) die "internal: unknown measurement $set/$method" ;;
	esac
}

# server_cpu: CPU seconds (user + system) radosgw and ceph-osd have used so far, "RGW OSD".
server_cpu() {
	local p t ticks=()
	for p in "$RGW_PID" "$CEPH_OSD_PID"; do
		t=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }') ||
			die "process $p (radosgw or ceph-osd) is gone"
		[[ -n $t ]] || die "process $p (radosgw or ceph-osd) is gone"
		ticks+=("$t")
	done
	echo "${ticks[*]}"
}
clk_tck=$(getconf CLK_TCK)

# empty_prefix PREFIX: no object left below PREFIX, their RADOS data collected (untimed).
empty_prefix() {
	"$aws" s3 rm --recursive --only-show-errors "${aws_opts[@]}" "s3://$B/$1/" >/dev/null ||
		die "aws s3 rm --recursive s3://$B/$1/ failed"
	"$RGW_ADMIN" gc process --include-all >/dev/null 2>&1 || die "radosgw-admin gc process failed"
}

# check_result SET PREFIX: the objects hold the source's bytes (untimed).
check_result() {
	local set=$1 prefix=$2
	if [[ $set == big ]]; then
		curl "${curl_sig[@]}" "$RGW_ENDPOINT/$B/$prefix/big.bin" | cmp -s - "$src/big.bin" ||
			die "$prefix: big.bin in the bucket differs from the source"
	else
		rm -rf -- "$work/check"
		"$aws" s3 cp --recursive --only-show-errors "${aws_opts[@]}" "s3://$B/$prefix/tree" \
			"$work/check" >/dev/null || die "$prefix: fetching the tree back failed"
		diff -r -q "$src/tree" "$work/check" >/dev/null || die "$prefix: the tree in the bucket differs"
		rm -rf -- "$work/check"
	fi
}

# measure SET METHOD ROUND: one timed run into an empty prefix;
# prints "wall_s rss_kib user_s sys_s wall_ms rgw_cpu_s osd_cpu_s".
measure() {
	local set=$1 method=$2 round=$3 tf=$work/time.out
	local t0 t1 c0 c1 prefix
	local -a cmd
	command_for "$set" "$method" "$round"
	sync
	c0=$(server_cpu)
	t0=$EPOCHREALTIME
	if ! /usr/bin/time -f '%e %M %U %S' -o "$tf" "${cmd[@]}" >"$work/cmd.out" 2>&1; then
		cat "$work/cmd.out" >&2
		die "$set/$method (round $round) failed: ${cmd[*]}"
	fi
	t1=$EPOCHREALTIME
	c1=$(server_cpu)
	[[ $round != 1 ]] || check_result "$set" "$prefix"
	empty_prefix "$prefix"
	printf '%s %s %s\n' "$(tail -n 1 "$tf")" \
		"$(awk -v a="${t0/,/.}" -v b="${t1/,/.}" 'BEGIN { printf "%.1f", (b - a) * 1000 }')" \
		"$(awk -v c0="$c0" -v c1="$c1" -v hz="$clk_tck" 'BEGIN {
			split(c0, a, " "); split(c1, b, " ")
			printf "%.2f %.2f", (b[1] - a[1]) / hz, (b[2] - a[2]) / hz }')"
}

# ---- warm-up ---------------------------------------------------------------------------------
say "warm-up: reading the source data once, and one small request of every client"
cat "$src/big.bin" "$src"/tree/* >/dev/null
"$aws" s3 ls "${aws_opts[@]}" "s3://$B/" >/dev/null || die "aws s3 ls s3://$B/ failed"
rclone lsf "bench:$B" >/dev/null 2>"$work/rclone.err" || { cat "$work/rclone.err" >&2; die "rclone lsf failed"; }
sync

# ---- the runs --------------------------------------------------------------------------------
big_methods=(jobpub aws rclone curl)
tree_methods=(jobpub jobpub-p8 aws rclone curl)
declare -A walls rsss users syss msecs rgws osds
started=$SECONDS
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for set in big tree; do
	if [[ $set == big ]]; then methods=("${big_methods[@]}"); else methods=("${tree_methods[@]}"); fi
	for ((r = 1; r <= ROUNDS; r++)); do
		for m in "${methods[@]}"; do
			res=$(measure "$set" "$m" "$r")
			read -r w k u s ms rg os <<<"$res"
			walls[$set/$m]+="$w "
			rsss[$set/$m]+="$k "
			users[$set/$m]+="$u "
			syss[$set/$m]+="$s "
			msecs[$set/$m]+="$ms "
			rgws[$set/$m]+="$rg "
			osds[$set/$m]+="$os "
			say "$set round $r: $m ${w} s (${ms} ms), user ${u} s, sys ${s} s, $((k / 1024)) MiB; radosgw ${rg} s, ceph-osd ${os} s CPU"
		done
	done
done
say "timed runs: $((SECONDS - started)) s"
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- output ----------------------------------------------------------------------------------
# shellcheck disable=SC2016
label() {
	case $1 in
	jobpub) echo '`jobpub publish` (--parallel 4)' ;;
	jobpub-p8) echo '`jobpub publish --parallel 8`' ;;
	aws) [[ $2 == big ]] && echo '`aws s3 cp`' || echo '`aws s3 sync`' ;;
	rclone) echo '`rclone copy`' ;;
	curl) [[ $2 == big ]] && echo '`curl -T` (one PUT)' || echo '`curl -T -K` (one PUT per file, one connection)' ;;
	esac
}
# shown CMD...: a command line as the shell would take it, the secret key replaced.
shown() {
	local out
	out=$(printf '%q ' "$@")
	out=${out% }
	out=${out//$RGW_SECRET_KEY/\$SECRET_KEY}
	out=${out//$RGW_ACCESS_KEY/\$ACCESS_KEY}
	out=${out//$work/\$WORK}
	printf '%s' "$out"
}
echo "- server: $(radosgw --version | awk '{ print "Ceph", $3, $5 }') radosgw (beast), ceph-osd memstore of $((RGW_MEMSTORE_BYTES / 1048576)) MiB, $RGW_ENDPOINT (tests/rgw-start.sh)"
echo "- clients: jobpub $("$jobpub" --version | awk '{ print $2 }'); $("$aws" --version 2>&1 | awk '{ print $1, $2 }') ($aws); rclone $(rclone version 2>/dev/null | awk 'NR == 1 { print $2 }'); $(curl -V | awk 'NR == 1 { print $1, $2 }')"
echo "- environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION=us-east-1 (AWS_CA_BUNDLE unset); RCLONE_CONFIG_BENCH_TYPE=s3, RCLONE_CONFIG_BENCH_PROVIDER=Ceph, RCLONE_CONFIG_BENCH_ENDPOINT=$RGW_ENDPOINT, RCLONE_CONFIG_BENCH_ACCESS_KEY_ID, RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY (no rclone config file); HOME=\$WORK/home"
echo "- manifests (\$WORK/big.yaml, \$WORK/tree.yaml): \`s3: {endpoint: $RGW_ENDPOINT}\`, one \`path: big.bin\` output, or one \`glob: tree/*\` output to \`tree/\${basename}\`"
echo "- machine: $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM; load average $load_start before the timed runs, $load_end after ($((SECONDS - started)) s)"
echo "- between runs, untimed: \`aws s3 rm --recursive s3://$B/PREFIX/\`, \`radosgw-admin gc process --include-all\`"
echo "- command lines (round 1):"
for set in big tree; do
	if [[ $set == big ]]; then methods=("${big_methods[@]}"); else methods=("${tree_methods[@]}"); fi
	for m in "${methods[@]}"; do
		command_for "$set" "$m" 1
		echo "  - \`$(shown "${cmd[@]}")\`"
	done
done
echo
echo "| data | method | wall s, median (%e) | wall s, $ROUNDS runs (%e) | wall ms, median (µs clock) | MiB/s | user CPU s | sys CPU s | radosgw CPU s | ceph-osd CPU s | peak RSS MiB | vs curl |"
echo "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
declare -A med_ms med_rss
for set in big tree; do
	if [[ $set == big ]]; then
		methods=("${big_methods[@]}")
		what="$(size_label "$BIG_MIB") file"
		bytes=$((BIG_MIB * 1024 * 1024))
	else
		methods=("${tree_methods[@]}")
		what="$TREE_FILES files of $TREE_KIB KiB"
		bytes=$tree_bytes
	fi
	# shellcheck disable=SC2086
	ref=$(median ${msecs[$set/curl]})
	for m in "${methods[@]}"; do
		# shellcheck disable=SC2086
		{
			k=$(median ${rsss[$set/$m]})
			u=$(median ${users[$set/$m]})
			s=$(median ${syss[$set/$m]})
			ms=$(median ${msecs[$set/$m]})
			rg=$(median ${rgws[$set/$m]})
			os=$(median ${osds[$set/$m]})
		}
		med_ms[$set/$m]=$ms
		med_rss[$set/$m]=$k
		result_row "$what" "$(label "$m" "$set")" "${walls[$set/$m]}" "$ms" "$k" "$u" "$s" \
			"$bytes" "$ref" "$(printf %.2f "$rg")" "$(printf %.2f "$os")"
	done
done

# ---- targets ---------------------------------------------------------------------------------
echo
echo "Targets (medians, µs clock):"
# target WHAT OK DETAIL
target() {
	printf -- '- %s: **%s** (%s)\n' "$1" "$([[ $2 == 1 ]] && echo MET || echo MISSED)" "$3"
}
# faster SET OTHER: jobpub's median below OTHER's.
faster() {
	local a=${med_ms[$1/jobpub]} b=${med_ms[$1/$2]}
	target "$1: jobpub faster than $(label "$2" "$1")" \
		"$(awk -v a="$a" -v b="$b" 'BEGIN { print (a < b) ? 1 : 0 }')" \
		"$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f s against %.2f s, %.2fx", a / 1000, b / 1000, a / b }')"
}
faster big aws
faster big rclone
faster tree aws
faster tree rclone
a=${med_ms[big/jobpub]} b=${med_ms[big/curl]}
target "big: jobpub within 1.2x of curl's single PUT" \
	"$(awk -v a="$a" -v b="$b" 'BEGIN { print (a <= 1.2 * b) ? 1 : 0 }')" \
	"$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f s against %.2f s, %.2fx", a / 1000, b / 1000, a / b }')"
max_rss=0
for key in big/jobpub tree/jobpub tree/jobpub-p8; do
	if ((med_rss[$key] > max_rss)); then max_rss=${med_rss[$key]}; fi
done
target "jobpub's peak RSS under 128 MiB" "$((max_rss < 131072 ? 1 : 0))" \
	"$(awk -v b="${med_rss[big/jobpub]}" -v t="${med_rss[tree/jobpub]}" -v t8="${med_rss[tree/jobpub-p8]}" \
		'BEGIN { printf "%.1f MiB for the file, %.1f MiB for the files, %.1f MiB with --parallel 8", b / 1024, t / 1024, t8 / 1024 }')"

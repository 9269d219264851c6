# bench/lib.sh - what the benchmark scripts share: messages and the command line
# ([--jobpub PATH] [DATADIR]).  Sourced after the script sets `prog`; sets `jobpub` and `datadir`.

die() {
	printf '%s: %s\n' "$prog" "$*" >&2
	exit 1
}
say() {
	printf '%s: %s\n' "$prog" "$*" >&2
}
usage() {
	printf 'usage: %s [--jobpub PATH] [DATADIR]\n' "$prog" >&2
	exit 2
}

jobpub=${JOBPUB:-}
datadir=
while [[ $# -gt 0 ]]; do
	case $1 in
	--jobpub) [[ $# -ge 2 ]] || usage; jobpub=$2; shift 2 ;;
	--jobpub=*) jobpub=${1#--jobpub=}; shift ;;
	-h | --help) usage ;;
	-*) usage ;;
	*) [[ -z $datadir ]] || usage; datadir=$1; shift ;;
	esac
done

# need_gnu_time: GNU time measures wall time, CPU and peak RSS; the shell keyword cannot.
need_gnu_time() {
	if [[ ! -x /usr/bin/time ]] || ! /usr/bin/time -f '%e %M' -o /dev/null true 2>/dev/null; then
		die "GNU time is missing: /usr/bin/time -f '%e %M' does not work here; on Debian: apt-get install -y time"
	fi
}

# find_jobpub: $jobpub from --jobpub, $JOBPUB or PATH, made absolute.
find_jobpub() {
	if [[ -z $jobpub ]]; then
		jobpub=$(command -v jobpub || true)
		[[ -n $jobpub ]] || die "no jobpub binary: give --jobpub PATH or set JOBPUB"
	fi
	[[ -x $jobpub ]] || die "jobpub binary '$jobpub' is not executable"
	jobpub=$(cd "$(dirname "$jobpub")" && pwd)/${jobpub##*/}
}

# median N...: the median of numbers.
median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# size_label MIB: "N GiB" when MIB is whole GiB, else "N MiB".
size_label() {
	if (($1 % 1024 == 0)); then echo "$(($1 / 1024)) GiB"; else echo "$1 MiB"; fi
}

# result_row WHAT LABEL "WALL..." MS RSS_KIB USER SYS BYTES REF_MS [EXTRA...]: one row of a results
# table: the median of the wall times and all of them (s), the median wall time MS (ms), MiB/s,
# user and sys CPU (s), the EXTRA columns as given, peak RSS (MiB) and MS against REF_MS.
result_row() {
	local what=$1 lab=$2 all=$3 ms=$4 k=$5 u=$6 s=$7 bytes=$8 ref=$9 extra="" e w
	shift 9
	for e in "$@"; do extra+="$e | "; done
	# shellcheck disable=SC2086
	w=$(median $all)
	awk -v what="$what" -v lab="$lab" -v w="$w" -v all="$all" -v ms="$ms" -v k="$k" -v u="$u" \
		-v s="$s" -v bytes="$bytes" -v ref="$ref" -v extra="$extra" '
		BEGIN {
			sub(/ +$/, "", all); gsub(/ /, ", ", all)
			rate = (ms > 0) ? sprintf("%.0f", bytes / 1048576 / (ms / 1000)) : "-"
			printf("| %s | %s | %.2f | %s | %.0f | %s | %.2f | %.2f | %s%.1f | %s |\n", what, lab,
			       w, all, ms, rate, u, s, extra, k / 1024,
			       (ref > 0) ? sprintf("%.2fx", ms / ref) : "-")
		}'
}

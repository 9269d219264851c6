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

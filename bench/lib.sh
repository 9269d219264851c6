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

#!/bin/sh
# install-deps.sh - install what jobpub needs to build and test on Debian 12 (bookworm).
# Runs apt-get as root, or through sudo when not root.  Idempotent.  The Ceph packages run the
# private S3 server of the S3 tests (tests/rgw-start.sh); no Ceph service is started or enabled.
# munge and Slurm run the private one-node cluster of the real-Slurm tests (tests/slurm-start.sh,
# own key, socket, ports and configuration; the system's services are not used).
# clang-14 and libclang-rt-14-dev build the fuzz targets (--enable-fuzzing), lcov the coverage
# report (--enable-coverage), valgrind `make check-valgrind` (gcc brings libasan8 and libubsan1
# for --enable-sanitizers).  groff-base renders the man pages for tests/cmd-manpages.sh (not in
# a minimal Debian 12 image, which has no man-db).
set -eu

PKGS="gcc make autoconf automake pkg-config
      libsqlite3-dev libssl-dev libfyaml-dev libssh2-1-dev libcurl4-openssl-dev
      libarchive-dev libhdf5-dev check
      sqlite3 python3 time ca-certificates libarchive-tools zstd openssh-server openssh-client
      curl openssl ceph-mon ceph-osd radosgw ceph-common
      munge slurmctld slurmd slurm-client
      clang-14 libclang-rt-14-dev lcov valgrind groff-base"

if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
missing=
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
if [ -z "$missing" ]; then
	echo "install-deps: all packages present"
	exit 0
fi
echo "install-deps: installing$missing"
$SUDO apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing

#!/bin/sh
# Installs (with apt-get, as root) every Debian package kvfs needs to build,
# run and test. Packages already present are left alone; nothing is
# installed when all are there.
set -eu

BUILD="build-essential autoconf automake libtool pkg-config
libleveldb-dev libsnappy-dev libzmq3-dev libmicrohttpd-dev libfuse3-dev fuse3
libjansson-dev libcurl4-openssl-dev libcmocka-dev libisal-dev"
TEST="python3 curl mandoc valgrind clang libclang-rt-14-dev gcovr
prometheus wrk attr rsync psmisc procps iproute2 docker-compose gnuplot-nox"
case "${1:-all}" in
build) WANT=$BUILD ;;
*) WANT="$BUILD $TEST" ;;
esac

missing=
for p in $WANT; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "kvfs needs these Debian packages:$missing" >&2
	echo "run as root, or: sudo apt-get install$missing" >&2
	exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null

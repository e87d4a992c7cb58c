#!/bin/sh
# Configures and builds kvfs out of tree in build/ (or $KVFS_BUILD), passing
# any arguments to configure. The Dockerfile and the quick start both call it.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
b=${KVFS_BUILD:-$top/build}
[ -x "$top/configure" ] || (cd "$top" && ./autogen.sh >/dev/null)
mkdir -p "$b"
cd "$b"
[ -f Makefile ] || "$top/configure" -q "$@"
make -j"$(nproc)" -s

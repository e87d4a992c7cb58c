#!/bin/sh
# Quick start: installs missing build dependencies (Debian, as root), builds
# kvfs, and starts kvfsd on its defaults (REST on http://127.0.0.1:8000, data
# in ./kvfs-data) in the foreground. Ctrl-C stops it cleanly. Extra arguments
# go to kvfsd (see kvfsd --help).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh" build
"$top/scripts/build.sh"
echo "kvfs: starting kvfsd (REST on http://127.0.0.1:8000; try: $top/build/kvfs put hello world)"
exec "$top/build/kvfsd" "$@"

#!/bin/sh
# Quick start: installs missing dependencies (Debian, as root), builds kvfs,
# and starts a local cluster on its defaults: 4 kvfsd nodes with REST on
# http://127.0.0.1:8000..8003, each keyspace mounted under ./kvfs-run/nodeN/mnt,
# plus Prometheus on :9090 (scripts/cluster.sh says how to change any of it).
# Ctrl-C stops everything and unmounts.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh"
"$top/scripts/build.sh"
exec "$top/scripts/cluster.sh" "$@"

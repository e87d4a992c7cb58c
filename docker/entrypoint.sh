#!/bin/sh
# Container entry point: runs kvfsd with the given arguments and, when
# KVFS_MOUNT names a directory (the image sets /mnt/kvfs; empty disables),
# adds --mount KVFS_MOUNT if this kvfsd can mount and the container has the
# FUSE device. Otherwise it says why and the node serves REST only, rather
# than failing to start. exec: kvfsd is PID 1's direct child under
# `init: true`, or PID 1, and gets SIGTERM itself (it unmounts on SIGTERM).
set -eu
mnt=${KVFS_MOUNT:-}
if [ -n "$mnt" ]; then
	if ! kvfsd --help 2>/dev/null | grep -q -- '--mount'; then
		echo "kvfs-entrypoint: this kvfsd has no --mount; serving REST only" >&2
	elif [ ! -c /dev/fuse ]; then
		echo "kvfs-entrypoint: no /dev/fuse in the container (run with --device /dev/fuse --cap-add SYS_ADMIN); serving REST only" >&2
	else
		set -- "$@" --mount "$mnt"
	fi
fi
exec kvfsd "$@"

/*
 * Which keys are files, which are directories, and which cannot be paths.
 *
 * Key "a/b/c" is the file c in directory a/b. A key ending in '/' ("a/b/")
 * is the marker that keeps the directory a/b alive while it is empty. Keys
 * that cannot be paths are hidden from the mount, never an error: an empty
 * component ("a//b", "/a"), a component "." or "..", a component longer
 * than 255 bytes or holding a NUL byte. They stay reachable through REST,
 * and a hidden key never hides its neighbours: a listing skips exactly the
 * hidden key or the hidden subtree. When a key is both a file and a
 * directory prefix ("a" and "a/b"), the directory wins and the file is
 * hidden (kvfsd(8) FILESYSTEM).
 *
 * Pure functions, unit-tested in tests/unit/test_fs_name.c.
 */
#include <string.h>

#include "fs/fs_internal.h"

bool fs_name_ok(const uint8_t *name, size_t len)
{
	if (len == 0 || len > FS_NAME_MAX)
		return false;
	if (name[0] == '.' && (len == 1 || (len == 2 && name[1] == '.')))
		return false;
	return memchr(name, 0, len) == NULL;
}

enum fs_scan_kind fs_scan_classify(const uint8_t *key, size_t klen, size_t plen,
				   const uint8_t **name, size_t *nlen)
{
	const uint8_t *rest = key + plen;
	size_t rlen = klen - plen;
	const uint8_t *slash = rlen ? memchr(rest, '/', rlen) : NULL;
	*name = rest;
	*nlen = slash ? (size_t)(slash - rest) : rlen;
	if (rlen == 0)
		return FS_SCAN_SELF;
	if (slash)
		return fs_name_ok(rest, *nlen) ? FS_SCAN_SUBDIR : FS_SCAN_HIDDEN_SUBTREE;
	return fs_name_ok(rest, rlen) ? FS_SCAN_FILE : FS_SCAN_HIDDEN;
}

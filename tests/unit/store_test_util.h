/*
 * Helpers shared by the store unit tests: a fresh temporary directory per
 * test (mkdtemp under $TMPDIR or /tmp) removed again in teardown, whatever the
 * test's outcome, and a builder shortcut for one-op transactions.
 */
#ifndef KVFS_TESTS_STORE_TEST_UTIL_H
#define KVFS_TESTS_STORE_TEST_UTIL_H

/* Includers define _GNU_SOURCE before any system header (nftw, mkdtemp). */
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Creates a fresh directory; returns a malloc'd path or NULL. */
static inline char *tmpdir_create(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char tmpl[PATH_MAX];
	if (!base || !*base)
		base = "/tmp";
	snprintf(tmpl, sizeof tmpl, "%s/kvfs-%s-XXXXXX", base, tag);
	if (!mkdtemp(tmpl))
		return NULL;
	return strdup(tmpl);
}

/* Removes the directory tree and frees the path (NULL is ignored). */
static inline void tmpdir_destroy(char *dir)
{
	if (!dir)
		return;
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

/* dir + "/" + name into a static-sized caller buffer. */
static inline const char *path_join(char *out, size_t n, const char *dir, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
	return out;
}

#endif

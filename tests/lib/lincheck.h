/*
 * Linearizability checker for a key-value store (put / get / delete /
 * compare-and-swap per key), in the style of Porcupine: the Wing & Gong
 * backtracking search with Lowe's memoisation (a cache of (set of
 * linearized operations, state) pairs already explored), run separately on
 * each key since keys are independent (P-compositionality).
 *
 * Operations whose outcome is unknown (a client timed out, the node crashed)
 * are "indeterminate": their return time is taken as infinity and any result
 * is accepted, so the search may place them anywhere after their call,
 * including after everything else (equivalent to "never took effect").
 * Operations that definitely did not take effect are simply left out.
 *
 * HISTORY FILE FORMAT (kvfs-lincheck, lc_history_load). One operation per
 * line; blank lines and lines starting with '#' are ignored. Eight
 * whitespace-separated fields; '-' marks an unused field:
 *
 *   CLIENT OP KEY VALUE EXPECTED CALL RETURN RESULT
 *
 *   CLIENT    client id (any token; used in explanations only)
 *   OP        put | get | delete | cas
 *   KEY       key (any token without whitespace; percent-encode if needed)
 *   VALUE     put: value written; cas: new value; get/delete: -
 *   EXPECTED  cas: expected current value, or the word absent; others: -
 *   CALL      invocation time (non-negative integer, any unit, one clock)
 *   RETURN    response time (>= CALL), or - when indeterminate
 *   RESULT    put: ok
 *             get: the value read, or absent
 *             delete: found | absent   (whether the key existed)
 *             cas: ok | fail
 *             any op: ? (indeterminate: may or may not have taken effect)
 *             any op: error (definitely not executed: the line is ignored)
 *
 *   Example:
 *     c1 put    k1 v1 - 100 180 ok
 *     c2 get    k1 -  - 120 200 v1
 *     c3 cas    k1 v2 v1 130 - ?
 *     c1 delete k1 -  - 210 260 found
 *
 * Values are compared as strings; the word "absent" cannot be a value.
 *
 * Thread-safety: none needed; every call works on the caller's objects.
 */
#ifndef KVFS_TESTS_LINCHECK_H
#define KVFS_TESTS_LINCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define LC_ABSENT (-1) /* value id of "no value" */
#define LC_INF	  INT64_MAX

enum lc_kind { LC_PUT = 1, LC_GET, LC_DELETE, LC_CAS };

/* Result of an operation. */
enum lc_outcome {
	LC_OK = 1,  /* put/cas succeeded, delete found, get returned value */
	LC_FAIL,    /* cas: current value differed; delete: key was absent */
	LC_UNKNOWN, /* indeterminate */
};

struct lc_op {
	int client;
	enum lc_kind kind;
	int64_t key;	   /* any id; operations are partitioned by it */
	int64_t value;	   /* put/cas: written value id; get: value read (or LC_ABSENT) */
	int64_t expected;  /* cas: expected value id (LC_ABSENT allowed) */
	int64_t call, ret; /* ret = LC_INF for indeterminate */
	enum lc_outcome outcome;
};

struct lc_history {
	struct lc_op *ops;
	size_t n, cap;
	/* Names for explanations (filled by lc_history_load; optional). */
	char **names; /* value/key id -> string */
	size_t n_names, cap_names;
};

void lc_history_init(struct lc_history *h);
void lc_history_free(struct lc_history *h);

/* Appends a copy of *op. Returns 0 or -ENOMEM. */
int lc_history_add(struct lc_history *h, const struct lc_op *op);

/* Interns a string (key or value) and returns its id (>= 0), or -ENOMEM. */
int64_t lc_intern(struct lc_history *h, const char *s);

/* Loads a history file in the format above. Returns 0, or -1 with a message
 * "line N: ..." in err (errlen bytes). */
int lc_history_load(struct lc_history *h, FILE *f, char *err, size_t errlen);

/* Writes h in the file format (value ids printed via names, or as v<id>). */
void lc_history_write(const struct lc_history *h, FILE *f);

enum lc_verdict { LC_LINEARIZABLE = 0, LC_VIOLATION = 1, LC_GAVE_UP = 2 };

/*
 * Checks h. Returns LC_LINEARIZABLE, LC_VIOLATION (then a readable
 * explanation, several lines, is written to explain if not NULL), or
 * LC_GAVE_UP when a key's search exceeded max_steps (0 = 50 million) or
 * 512 MiB of memoisation. The search is fast while few operations of a key
 * overlap; every indeterminate write stays open forever, so histories with
 * many concurrent clients on few keys and many indeterminate writes can
 * give up: spread writers over more keys (e.g. 20 clients, 5 keys, 5%
 * indeterminate and 5000 operations check in milliseconds).
 */
enum lc_verdict lc_check(const struct lc_history *h, uint64_t max_steps, FILE *explain);

#endif

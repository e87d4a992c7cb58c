/*
 * Whether a follower is "catching up" (/readyz): behind what the cluster had
 * committed when it first heard a leader, or behind by more than a bound.
 *
 * A follower serves stale reads from its own state machine, so a node that
 * has just started, rejoined or been added, and has not yet applied what
 * was committed before, would answer 404 for keys its peers hold. It is
 * ready once its applied index reaches the cluster's commit index as it
 * was when the node first heard a leader. Afterwards it samples: the
 * commit index it knows of at some moment (the probe) must be applied
 * within CATCHUP_LAG_MS; a probe older than that and still not applied
 * makes it catch up again, until it applies a probe within half the bound
 * (CATCHUP_RESYNC_MS), so that a node whose lag hovers about the bound
 * does not turn ready and back at every probe.
 * A node that loses its leader (an election, a partition) starts over:
 * one cut off for minutes must not count as ready for the first seconds
 * after it rejoins. A sample under load, when entries arrive as fast as
 * they are applied, never needs applied == commit: only that it reaches an
 * index committed at most the bound ago. A leader is never catching up.
 *
 * Pure: the node loop calls catchup_step with its clock; unit-tested in
 * tests/unit/test_catchup.c.
 */
#ifndef KVFS_NODE_CATCHUP_H
#define KVFS_NODE_CATCHUP_H

#include <stdbool.h>
#include <stdint.h>

#define CATCHUP_LAG_MS	  5000
#define CATCHUP_RESYNC_MS (CATCHUP_LAG_MS / 2)

struct catchup {
	uint64_t probe;	  /* commit index to apply, 0 for none */
	int64_t probe_ms; /* when it was taken */
	bool synced;	  /* false: catching up */
};

/* Starts as catching up (a node that has not heard a leader yet). */
void catchup_init(struct catchup *cu);

enum catchup_role { CATCHUP_NO_LEADER, CATCHUP_FOLLOWER, CATCHUP_LEADER };

/* One sample. A follower's leader_commit is the highest index it knows
 * committed (raft_status().leader_commit), 0 when no leader has told it
 * one. Returns true while catching up. */
bool catchup_step(struct catchup *cu, enum catchup_role role, uint64_t applied,
		  uint64_t leader_commit, int64_t now_ms);

#endif

/* Whether a follower is catching up: see catchup.h. */
#include "node/catchup.h"

void catchup_init(struct catchup *cu)
{
	cu->probe = 0;
	cu->probe_ms = 0;
	cu->synced = false;
}

bool catchup_step(struct catchup *cu, enum catchup_role role, uint64_t applied,
		  uint64_t leader_commit, int64_t now_ms)
{
	if (role == CATCHUP_LEADER) {
		cu->probe = 0;
		cu->synced = true;
		return false;
	}
	if (role == CATCHUP_NO_LEADER) {
		catchup_init(cu);
		return true;
	}
	if (!leader_commit)
		return !cu->synced; /* no leader has said where the cluster is */
	if (cu->probe && applied >= cu->probe) {
		/* Applied what was committed when the probe was taken: caught
		 * up if that was within the bound (half of it to come back). */
		if (now_ms - cu->probe_ms <= (cu->synced ? CATCHUP_LAG_MS : CATCHUP_RESYNC_MS))
			cu->synced = true;
		cu->probe = 0;
	}
	if (!cu->probe) {
		if (applied >= leader_commit)
			cu->synced = true;
		else {
			cu->probe = leader_commit;
			cu->probe_ms = now_ms;
		}
	}
	if (cu->probe && now_ms - cu->probe_ms > CATCHUP_LAG_MS)
		cu->synced = false;
	return !cu->synced;
}

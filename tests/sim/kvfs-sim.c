/*
 * kvfs-sim: runs Raft clusters under random faults, one seed per run, and
 * checks safety (invariants, every step), linearizability of the clients'
 * history, and liveness once the faults stop.
 *
 *   kvfs-sim --seed S [--nodes K | --membership] [--history FILE]
 *       replays one run and prints its readable trace
 *   kvfs-sim --seeds N [--first F] [--nodes K | --membership] [--stop]
 *       runs seeds F..F+N-1 (mixing 3 nodes, 5 nodes and 3->5->3 membership
 *       changes unless told) and ends with one line "seeds=N violations=V"
 *   kvfs-sim --seed-file FILE
 *       runs the regression seeds listed in FILE ("seed mode" per line)
 *   kvfs-sim --ci-seeds
 *       prints how many seeds make check runs by default
 *   --rejoin-same-id (with --seed or --seeds)
 *       membership runs end by wiping a removed server and adding it again
 *       under its old id: unsafe, see tests/sim/README.md
 *
 * A run: 45 simulated seconds of faults (message loss 0-30%, duplication,
 * delay spikes that reorder, symmetric and asymmetric partitions, isolating
 * the leader, process pauses, crashes - immediate or in the middle of an
 * fsync - and restarts, leadership transfers, snapshots), then 15 seconds
 * without faults in which a leader must be elected within 15 election
 * timeouts and every request must complete. Exit status 0 only without
 * violations.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/sim/sim.h"

/* Seeds make check runs by default (fewer in a sanitizer build). */
#ifndef KVFS_SIM_CI_SEEDS
#define KVFS_SIM_CI_SEEDS 2000
#endif

enum mode { MODE_3 = 0, MODE_5 = 1, MODE_MEMBERSHIP = 2 };

#define MS	   1000ULL
#define SEC	   1000000ULL
#define FAULTS_END (45 * SEC)
#define RUN_END	   (60 * SEC)

struct run {
	struct sim *s;
	enum mode mode;
	unsigned loss_max;
	int members_phase; /* membership mode: 0 growing, 1 shrinking, 2 one
			      removed server wiped and added again, 3 it is
			      promoted, 4 done */
	uint64_t rejoined;  /* the server of phases 2-3 */
};

static void fault_heal_net(struct sim *s, void *arg)
{
	(void)arg;
	sim_log(s, "heal network");
	sim_heal(s);
}

static void fault_unpause(struct sim *s, void *arg)
{
	sim_pause(s, (uint64_t)(uintptr_t)arg, false);
}

static void fault_restart(struct sim *s, void *arg)
{
	sim_restart(s, (uint64_t)(uintptr_t)arg);
}

static uint64_t random_up_node(struct sim *s)
{
	for (int tries = 0; tries < 10; tries++) {
		uint64_t id = sim_rand_range(s, 1, s->o.nodes);
		if (s->nodes[id].up)
			return id;
	}
	return 0;
}

/* Leader churn: the leader may talk to a minority only, then crashes; a few
 * times in a row. Leaves divergent uncommitted suffixes of several terms on
 * different nodes, the ground of the Raft paper's Figure 8. */
static void churn_crash(struct sim *s, void *arg)
{
	uint64_t id = (uint64_t)(uintptr_t)arg;
	if (s->nodes[id].up && s->now < FAULTS_END) {
		sim_crash(s, id);
		sim_restart_later(s, id, sim_rand_range(s, 100, 1500) * MS);
	}
}

static void churn(struct sim *s, void *arg)
{
	uintptr_t left = (uintptr_t)arg;
	uint64_t leader = sim_leader(s);
	if (s->now >= FAULTS_END)
		return;
	sim_heal(s);
	if (sim_rand_range(s, 0, 1))
		s->crash_next_leader = true;
	if (leader) {
		unsigned minority = (s->o.nodes - 1) / 2;
		unsigned keep = sim_rand_range(s, 0, minority);
		sim_log(s, "churn: leader n%llu reaches %u others, then crashes",
			(unsigned long long)leader, keep);
		for (uint64_t x = 1; x <= s->o.nodes; x++) {
			if (x == leader)
				continue;
			if (keep && sim_rand_range(s, 0, 1)) {
				keep--;
				/* the leader depends on this follower: it may
				 * crash in the middle of an fsync too */
				if (sim_rand_range(s, 0, 1) && s->nodes[x].up)
					s->nodes[x].crash_mode = 1;
				continue;
			}
			sim_cut(s, leader, x, true);
			sim_cut(s, x, leader, true);
		}
		sim_schedule_fn(s, s->now + sim_rand_range(s, 20, 200) * MS, churn_crash,
				(void *)(uintptr_t)leader);
	}
	if (left > 1)
		sim_schedule_fn(s, s->now + sim_rand_range(s, 300, 900) * MS, churn,
				(void *)(left - 1));
	else
		sim_schedule_fn(s, s->now + sim_rand_range(s, 300, 900) * MS, fault_heal_net, NULL);
}

static void fault(struct sim *s, void *arg)
{
	struct run *r = arg;
	uint64_t id, leader = sim_leader(s);
	unsigned what = sim_rand_range(s, 1, 100);

	if (s->now >= FAULTS_END)
		return;
	if (what <= 10) {
		churn(s, (void *)(uintptr_t)sim_rand_range(s, 2, 6));
	} else if (what <= 16) {
		uint64_t side[SIM_MAX_NODES];
		unsigned n = 0;
		for (uint64_t i = 1; i <= s->o.nodes; i++)
			if (sim_rand_range(s, 0, 1))
				side[n++] = i;
		sim_log(s, "partition: %u nodes apart", n);
		sim_partition(s, side, n);
		sim_schedule_fn(s, s->now + sim_rand_range(s, 300, 4000) * MS, fault_heal_net,
				NULL);
	} else if (what <= 22) {
		uint64_t a = sim_rand_range(s, 1, s->o.nodes), b = sim_rand_range(s, 1, s->o.nodes);
		if (a != b) {
			sim_log(s, "asymmetric cut n%llu -> n%llu", (unsigned long long)a,
				(unsigned long long)b);
			sim_cut(s, a, b, true);
			sim_schedule_fn(s, s->now + sim_rand_range(s, 300, 4000) * MS,
					fault_heal_net, NULL);
		}
	} else if (what <= 32) {
		if (leader) {
			sim_log(s, "isolate leader n%llu", (unsigned long long)leader);
			sim_isolate(s, leader);
			sim_schedule_fn(s, s->now + sim_rand_range(s, 300, 4000) * MS,
					fault_heal_net, NULL);
		}
	} else if (what <= 40) {
		id = sim_rand_range(s, 0, 1) && leader ? leader : random_up_node(s);
		if (id && !s->nodes[id].paused) {
			sim_pause(s, id, true);
			sim_schedule_fn(s, s->now + sim_rand_range(s, 50, 3000) * MS, fault_unpause,
					(void *)(uintptr_t)id);
		}
	} else if (what <= 45) {
		sim_log(s, "the next new leader will crash soon after its election");
		s->crash_next_leader = true;
	} else if (what <= 50) {
		id = random_up_node(s);
		if (id && !s->nodes[id].crash_mode) {
			sim_log(s, "n%llu will crash right after its next vote",
				(unsigned long long)id);
			s->nodes[id].crash_mode = 2;
		}
	} else if (what <= 62) {
		id = sim_rand_range(s, 0, 2) == 0 && leader ? leader : random_up_node(s);
		if (id) {
			unsigned how = sim_rand_range(s, 0, 2);
			if (how == 0 || !s->nodes[id].busy) {
				if (how)
					s->nodes[id].crash_mode = 1; /* at its next fsync */
				else
					sim_crash(s, id);
			} else {
				sim_log(s, "n%llu crashes during fsync", (unsigned long long)id);
				sim_crash(s, id);
			}
			uint64_t d = sim_rand_range(s, 0, 3) == 0 ? sim_rand_range(s, 5, 100)
								  : sim_rand_range(s, 100, 3000);
			sim_schedule_fn(s, s->now + d * MS, fault_restart, (void *)(uintptr_t)id);
		}
	} else if (what <= 70) {
		if (leader && !s->nodes[leader].busy) {
			uint64_t to = sim_rand_range(s, 0, s->o.nodes);
			int rv = raft_transfer(s->nodes[leader].core, to == leader ? 0 : to);
			sim_log(s, "transfer leadership from n%llu to %llu: %d",
				(unsigned long long)leader, (unsigned long long)to, rv);
			sim_pump(s, &s->nodes[leader]);
		}
	} else if (what <= 85) {
		s->loss_pct = sim_rand_range(s, 0, r->loss_max);
		s->dup_pct = sim_rand_range(s, 0, 5);
		s->spike_pct = sim_rand_range(s, 0, 10);
		sim_log(s, "network: loss %u%% dup %u%% spikes %u%%", s->loss_pct, s->dup_pct,
			s->spike_pct);
	} else {
		sim_log(s, "heal network");
		sim_heal(s);
		s->loss_pct = 0;
	}
	sim_schedule_fn(s, s->now + sim_rand_range(s, 200, 2500) * MS, fault, r);
}

/* Phase 2 of membership mode: a server whose removal the leader has
 * applied (so no up-to-date leader counts it as a voter; one that is behind
 * may, which is the hazard), or 0. */
static uint64_t removed_server(struct sim *s, uint64_t leader)
{
	const struct raft_conf *conf = raft_conf_get(s->nodes[leader].core);
	const struct raft_conf *applied = &s->nodes[leader].applied_conf;
	uint64_t first = sim_rand_range(s, 1, s->o.nodes);
	for (uint64_t k = 0; k < s->o.nodes; k++) {
		uint64_t id = (first - 1 + k) % s->o.nodes + 1;
		if (id != leader && !raft_conf_find(conf, id) && !raft_conf_find(applied, id))
			return id;
	}
	return 0;
}

/* --rejoin-same-id: membership runs end with a removed server wiped and
 * added again under its old id. Not in CI: it loses committed entries, and
 * the simulator shows how (tests/sim/README.md, "Rejoining under the same
 * id"). */
static bool rejoin_same_id;

/* Membership mode: grow 3 -> 5 (each as learner, then promoted), then
 * shrink back to 3 voters, removing random voters (the leader included);
 * with --rejoin-same-id, then one removed server loses its disk and is
 * added again under its id and promoted, soon after the leader applied
 * its removal. */
static void membership(struct sim *s, void *arg)
{
	struct run *r = arg;
	uint64_t leader = sim_leader(s);
	if (r->members_phase == 4 || (r->members_phase == 2 && !rejoin_same_id) ||
	    s->now >= FAULTS_END)
		return;
	sim_schedule_fn(s,
			s->now + (r->members_phase == 2 ? sim_rand_range(s, 20, 400)
							: sim_rand_range(s, 500, 2000)) *
					 MS,
			membership, r);
	if (!leader || s->nodes[leader].busy)
		return;
	struct raft_core *c = s->nodes[leader].core;
	const struct raft_conf *conf = raft_conf_get(c);
	enum raft_change_kind kind = 0;
	uint64_t id = 0;
	if (r->members_phase == 2) {
		/* Wiped once; the addition is tried again until the leader
		 * takes it (not while another change or its term's first
		 * entry is uncommitted). */
		if (!r->rejoined) {
			if (!(r->rejoined = removed_server(s, leader)))
				return;
			sim_wipe(s, r->rejoined);
		}
		kind = RAFT_ADD_LEARNER, id = r->rejoined;
	} else if (r->members_phase == 3) {
		const struct raft_server *sv = raft_conf_find(conf, r->rejoined);
		if (sv && sv->role == RAFT_VOTER) {
			r->members_phase = 4;
			return;
		}
		if (!sv) { /* its addition was lost with a leader: add it again */
			kind = RAFT_ADD_LEARNER, id = r->rejoined;
		} else {
			kind = RAFT_PROMOTE, id = r->rejoined;
		}
	} else if (r->members_phase == 0) {
		for (uint64_t i = 4; i <= 5 && !kind; i++) {
			const struct raft_server *sv = raft_conf_find(conf, i);
			if (!sv)
				kind = RAFT_ADD_LEARNER, id = i;
			else if (sv->role == RAFT_LEARNER)
				kind = RAFT_PROMOTE, id = i;
		}
		if (!kind) {
			r->members_phase = 1;
			return;
		}
	} else {
		if (raft_conf_voters(conf) <= 3) {
			r->members_phase = 2;
			return;
		}
		kind = RAFT_REMOVE;
		id = conf->servers[sim_rand_range(s, 0, conf->n - 1)].id;
	}
	char addr[32];
	snprintf(addr, sizeof(addr), "sim://%llu", (unsigned long long)id);
	int rv = raft_change(c, kind, id, addr, NULL);
	if (r->members_phase == 2 && rv == 0)
		r->members_phase = 3;
	sim_log(s, "membership: %s n%llu via leader n%llu: %d",
		kind == RAFT_ADD_LEARNER ? "add learner"
		: kind == RAFT_PROMOTE	 ? "promote"
					 : "remove",
		(unsigned long long)id, (unsigned long long)leader, rv);
	sim_pump(s, &s->nodes[leader]);
}

static void faults_stop(struct sim *s, void *arg)
{
	(void)arg;
	sim_log(s, "faults stop: heal, resume and restart everything");
	sim_heal(s);
	s->loss_pct = s->dup_pct = s->spike_pct = 0;
	s->crash_next_leader = false;
	s->crash_next_ok = false;
	for (uint64_t i = 1; i <= s->o.nodes; i++) {
		s->nodes[i].crash_mode = 0;
		if (s->nodes[i].up)
			sim_pause(s, i, false);
		else
			sim_restart(s, i);
	}
}

/* Returns the number of violations of one run. */
static unsigned run_seed(uint64_t seed, enum mode mode, bool trace, const char *hist_file,
			 int *gave_up, char *why, size_t whylen)
{
	struct sim sim, *s = &sim;
	struct sim_opts o;
	struct run r = {.s = s, .mode = mode};

	sim_default_opts(&o);
	o.seed = seed;
	o.trace = trace;
	o.nodes = mode == MODE_3 ? 3 : 5;
	o.initial = mode == MODE_5 ? 5 : 3;
	/* Configuration varies with the seed too. */
	{
		uint64_t z = seed * 0x9e3779b97f4a7c15ULL;
		z ^= z >> 29;
		o.pre_vote = z % 3 != 0;
		/* Thesis §4.2.3: removed servers that never learn of their
		 * removal disrupt a cluster without leases; membership
		 * changes therefore run with check-quorum. */
		o.check_quorum = (z / 3) % 3 != 0 || mode == MODE_MEMBERSHIP;
		o.max_batch_entries = 1 + (unsigned)((z / 9) % (z % 2 ? 4 : 16));
		o.max_inflight = 1 + (unsigned)((z / 144) % 8);
		o.max_uncommitted = (z / 1152) % 2 ? 0 : 512 + (size_t)((z / 2304) % 4096);
	}
	if (sim_init(s, &o))
		return 1;
	r.loss_max = sim_rand_range(s, 0, 30);
	{
		static const unsigned net_max[] = {1000, 3000, 10000, 25000};
		s->o.net_max_us = net_max[sim_rand_range(s, 0, 3)];
	}
	sim_log(s,
		"seed %llu: %u nodes (%u voters), pre-vote %d, check-quorum %d, batch %u, "
		"window %u, loss up to %u%%",
		(unsigned long long)seed, o.nodes, o.initial, o.pre_vote, o.check_quorum,
		o.max_batch_entries, o.max_inflight, r.loss_max);
	for (uint64_t i = 1; i <= o.nodes; i++)
		sim_restart(s, i);
	clients_start(s, o.clients);
	s->crash_next_ok = true;
	s->check_committed = true;
	sim_schedule_fn(s, sim_rand_range(s, 500, 2000) * MS, fault, &r);
	if (mode == MODE_MEMBERSHIP)
		sim_schedule_fn(s, 3 * SEC, membership, &r);
	sim_schedule_fn(s, FAULTS_END, faults_stop, NULL);

	sim_run_until(s, FAULTS_END);
	uint64_t et = (uint64_t)o.election_ticks * o.tick_us;
	/* Requests that time out from here on are liveness violations: every
	 * request must complete within 15 election timeouts + the client's
	 * timeout of the faults stopping. */
	s->liveness_from = FAULTS_END + 15 * et + 3 * SEC;
	sim_run_until(s, FAULTS_END + 15 * et);
	if (!sim_leader(s))
		sim_violation(s,
			      "liveness: no leader %llu election timeouts after the faults stopped",
			      15ULL);
	sim_run_until(s, RUN_END - 5 * SEC);
	clients_stop(s);
	sim_run_until(s, RUN_END);
	unsigned pending = clients_pending(s, RUN_END);
	if (pending)
		sim_violation(s, "liveness: %u requests still pending at the end", pending);
	check_final(s);

	FILE *explain = trace ? stdout : NULL;
	char *buf = NULL;
	size_t blen = 0;
	if (!trace)
		explain = open_memstream(&buf, &blen);
	enum lc_verdict v = clients_check(s, explain);
	if (explain && !trace)
		fclose(explain);
	if (v == LC_VIOLATION)
		sim_violation(s, "linearizability: %s", buf ? buf : "see above");
	*gave_up = v == LC_GAVE_UP;
	free(buf);
	if (hist_file) {
		FILE *f = fopen(hist_file, "w");
		if (f) {
			lc_history_write(&s->hist, f);
			fclose(f);
		}
	}
	if (trace) {
		printf(
		    "seed=%llu mode=%d: %llu msgs (%llu dropped), %llu records, %llu applied, "
		    "%llu leaders, %llu snapshot installs, ops ok=%llu failed=%llu unknown=%llu, "
		    "lincheck=%s\n",
		    (unsigned long long)seed, mode, (unsigned long long)s->st.msgs,
		    (unsigned long long)s->st.dropped, (unsigned long long)s->st.records,
		    (unsigned long long)s->st.applied_entries, (unsigned long long)s->st.elections,
		    (unsigned long long)s->st.snap_installs, (unsigned long long)s->st.ops_ok,
		    (unsigned long long)s->st.ops_failed, (unsigned long long)s->st.ops_unknown,
		    v == LC_LINEARIZABLE ? "ok"
		    : v == LC_VIOLATION	 ? "VIOLATION"
					 : "gave up");
	}
	unsigned nv = s->violations;
	snprintf(why, whylen, "%.900s", s->first_violation);
	sim_free(s);
	return nv;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: kvfs-sim --seed S [--nodes 3|5 | --membership] [--history FILE]\n"
		"       kvfs-sim --seeds N [--first F] [--nodes 3|5 | --membership] [--stop]\n"
		"       (either with --rejoin-same-id: see tests/sim/README.md)\n"
		"       kvfs-sim --seed-file FILE\n");
	exit(2);
}

int main(int argc, char **argv)
{
	uint64_t seed = 0, nseeds = 0, first = 1;
	int fixed_mode = -1;
	bool single = false, stop = false;
	const char *hist = NULL, *seed_file = NULL;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--seed") && i + 1 < argc) {
			seed = strtoull(argv[++i], NULL, 0);
			single = true;
		} else if (!strcmp(a, "--seeds") && i + 1 < argc) {
			nseeds = strtoull(argv[++i], NULL, 0);
		} else if (!strcmp(a, "--first") && i + 1 < argc) {
			first = strtoull(argv[++i], NULL, 0);
		} else if (!strcmp(a, "--nodes") && i + 1 < argc) {
			int k = atoi(argv[++i]);
			if (k != 3 && k != 5)
				usage();
			fixed_mode = k == 3 ? MODE_3 : MODE_5;
		} else if (!strcmp(a, "--membership")) {
			fixed_mode = MODE_MEMBERSHIP;
		} else if (!strcmp(a, "--rejoin-same-id")) {
			rejoin_same_id = true;
		} else if (!strcmp(a, "--history") && i + 1 < argc) {
			hist = argv[++i];
		} else if (!strcmp(a, "--seed-file") && i + 1 < argc) {
			seed_file = argv[++i];
		} else if (!strcmp(a, "--ci-seeds")) {
			printf("%d\n", KVFS_SIM_CI_SEEDS);
			return 0;
		} else if (!strcmp(a, "--stop")) {
			stop = true;
		} else {
			usage();
		}
	}
	if (single) {
		int gave_up = 0;
		char why[1024];
		enum mode m = fixed_mode >= 0 ? (enum mode)fixed_mode : (enum mode)(seed % 3);
		unsigned v = run_seed(seed, m, true, hist, &gave_up, why, sizeof(why));
		printf("seeds=1 violations=%u\n", v ? 1 : 0);
		return v ? 1 : 0;
	}
	uint64_t list[4096][2];
	size_t nlist = 0;
	if (seed_file) {
		FILE *f = fopen(seed_file, "r");
		char line[256];
		if (!f) {
			perror(seed_file);
			return 2;
		}
		while (fgets(line, sizeof(line), f) && nlist < 4096) {
			unsigned long long sd;
			int md;
			if (line[0] == '#')
				continue;
			int k = sscanf(line, "%llu %d", &sd, &md);
			if (k < 1)
				continue;
			list[nlist][0] = sd;
			list[nlist][1] = k == 2 ? (uint64_t)md : sd % 3;
			nlist++;
		}
		fclose(f);
	} else if (nseeds) {
		for (uint64_t i = 0; i < nseeds && nlist < 4096; i++) {
			list[nlist][0] = first + i;
			list[nlist][1] = fixed_mode >= 0 ? (uint64_t)fixed_mode : (first + i) % 3;
			nlist++;
		}
	} else {
		usage();
	}
	unsigned bad = 0, gave = 0;
	size_t ran = 0;
	clock_t t0 = clock();
	for (size_t i = 0; i < nlist; i++) {
		int gave_up = 0;
		char why[1024];
		unsigned v = run_seed(list[i][0], (enum mode)list[i][1], false, NULL, &gave_up, why,
				      sizeof(why));
		ran++;
		gave += gave_up;
		if (v) {
			bad++;
			printf("seed=%llu mode=%llu violations=%u first: %s\n",
			       (unsigned long long)list[i][0], (unsigned long long)list[i][1], v,
			       why);
			fflush(stdout);
			if (stop)
				break;
		}
	}
	double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
	fprintf(stderr,
		"kvfs-sim: %zu seeds in %.1f s cpu (%.1f seeds/s), lincheck gave up on %u\n", ran,
		secs, secs > 0 ? (double)ran / secs : 0.0, gave);
	printf("seeds=%zu violations=%u\n", ran, bad);
	return bad ? 1 : 0;
}

/*
 * Membership: the encoding of a configuration (the table is in raft.h), and
 * which configuration is in effect. Following the Raft thesis §4.1, a server
 * uses the latest configuration in its log, committed or not; so when a
 * suffix is truncated or a snapshot installed, the configuration is
 * recomputed from the log (configuration entries are rare, and the log after
 * the compaction point is in memory, so a backward scan is exact and cheap).
 */
#include <errno.h>
#include <string.h>

#include "common/bytes.h"
#include "raft/impl.h"

static bool conf_valid(const struct raft_conf *conf)
{
	if (conf->n > RAFT_MAX_SERVERS)
		return false;
	for (unsigned i = 0; i < conf->n; i++) {
		const struct raft_server *s = &conf->servers[i];
		if (s->id == 0 || (s->role != RAFT_VOTER && s->role != RAFT_LEARNER))
			return false;
		if (memchr(s->addr, 0, RAFT_ADDR_MAX) == NULL)
			return false;
		for (unsigned j = 0; j < i; j++)
			if (conf->servers[j].id == s->id)
				return false;
	}
	return true;
}

int raft_conf_encode(const struct raft_conf *conf, void *buf, size_t cap)
{
	uint8_t *p = buf;
	size_t pos = 2;

	if (!conf_valid(conf) || cap < 2)
		return -EINVAL;
	p[0] = 1;
	p[1] = (uint8_t)conf->n;
	for (unsigned i = 0; i < conf->n; i++) {
		const struct raft_server *s = &conf->servers[i];
		size_t alen = strlen(s->addr);
		if (pos + 11 + alen > cap)
			return -EINVAL;
		put_le64(p + pos, s->id);
		p[pos + 8] = (uint8_t)s->role;
		p[pos + 9] = (uint8_t)(alen & 0xff);
		p[pos + 10] = (uint8_t)(alen >> 8);
		memcpy(p + pos + 11, s->addr, alen);
		pos += 11 + alen;
	}
	return (int)pos;
}

int raft_conf_decode(struct raft_conf *conf, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t pos = 2;

	memset(conf, 0, sizeof(*conf));
	if (len < 2 || p[0] != 1 || p[1] > RAFT_MAX_SERVERS)
		return KVFS_EPROTO;
	conf->n = p[1];
	for (unsigned i = 0; i < conf->n; i++) {
		struct raft_server *s = &conf->servers[i];
		if (len - pos < 11)
			return KVFS_EPROTO;
		s->id = get_le64(p + pos);
		s->role = (enum raft_role)p[pos + 8];
		size_t alen = (size_t)p[pos + 9] | ((size_t)p[pos + 10] << 8);
		if (alen >= RAFT_ADDR_MAX || len - pos - 11 < alen)
			return KVFS_EPROTO;
		/* A NUL inside would cut the address short: what is decoded
		 * must be what was encoded (found by fuzz_wire). */
		if (memchr(p + pos + 11, 0, alen))
			return KVFS_EPROTO;
		memcpy(s->addr, p + pos + 11, alen);
		s->addr[alen] = 0;
		pos += 11 + alen;
	}
	if (pos != len || !conf_valid(conf))
		return KVFS_EPROTO;
	return 0;
}

const struct raft_server *raft_conf_find(const struct raft_conf *conf, uint64_t id)
{
	for (unsigned i = 0; i < conf->n; i++)
		if (conf->servers[i].id == id)
			return &conf->servers[i];
	return NULL;
}

unsigned raft_conf_voters(const struct raft_conf *conf)
{
	unsigned n = 0;
	for (unsigned i = 0; i < conf->n; i++)
		n += conf->servers[i].role == RAFT_VOTER;
	return n;
}

static bool conf_equal(const struct raft_conf *a, const struct raft_conf *b)
{
	if (a->n != b->n)
		return false;
	for (unsigned i = 0; i < a->n; i++) {
		const struct raft_server *x = &a->servers[i], *y = &b->servers[i];
		if (x->id != y->id || x->role != y->role || strcmp(x->addr, y->addr) != 0)
			return false;
	}
	return true;
}

/* The configuration in effect at index (latest configuration entry at or
 * before index, else the one as of the log offset). */
void raft_conf_at(const struct raft_core *c, uint64_t index, struct raft_conf *out)
{
	uint64_t last = raft_log_last_index(&c->log);
	if (index > last)
		index = last;
	for (uint64_t i = index; i > c->log.offset; i--) {
		const struct raft_entry *e = raft_log_get(&c->log, i);
		if (e->type == RAFT_ENTRY_CONF && raft_conf_decode(out, e->data, e->len) == 0)
			return;
	}
	*out = c->base_conf;
}

/* Recomputes the configuration in effect from the log (after a truncation or
 * a snapshot) and resynchronises the leader's progress table. */
void raft_conf_refresh(struct raft_core *c)
{
	uint64_t idx = c->log.offset;
	for (uint64_t i = raft_log_last_index(&c->log); i > c->log.offset; i--) {
		const struct raft_entry *e = raft_log_get(&c->log, i);
		if (e->type == RAFT_ENTRY_CONF) {
			idx = i;
			break;
		}
	}
	struct raft_conf conf;
	raft_conf_at(c, idx, &conf);
	if (!conf_equal(&conf, &c->conf))
		c->conf_changed = true;
	c->conf = conf;
	c->conf_index = idx;
	if (c->state == RAFT_LEADER)
		raft_progress_sync_conf(c);
}

void raft_conf_update_snap_buf(struct raft_core *c)
{
	int n = raft_conf_encode(&c->snap.conf, c->snap_conf_buf, sizeof(c->snap_conf_buf));
	c->snap_conf_len = n > 0 ? (size_t)n : 0;
}

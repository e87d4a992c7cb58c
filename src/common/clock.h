/* Clock helpers for the I/O shell (never used by the Raft core). */
#ifndef KVFS_COMMON_CLOCK_H
#define KVFS_COMMON_CLOCK_H

#include <stdint.h>

int64_t clock_mono_ns(void);     /* CLOCK_MONOTONIC */
int64_t clock_real_ns(void);     /* CLOCK_REALTIME */
static inline int64_t clock_mono_ms(void)
{
	return clock_mono_ns() / 1000000;
}

#endif

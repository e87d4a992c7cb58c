/*
 * LevelDB's CRC-32C, computed by ISA-L (common/bytes.c) instead of
 * LevelDB's own table-driven loop.
 *
 * LevelDB checksums every block it writes and, with paranoid checks (which
 * kvfs keeps: a corrupt table must stop the node, not spread), every block
 * its compactions and reads load. Debian builds LevelDB without its
 * optional hardware CRC (the crc32c library), so that checksum runs about a
 * byte a cycle: in bench/large.sh it was 18% of the compaction thread's CPU,
 * the thread that sets the load's pace once the dataset is larger than
 * memory.
 *
 * LevelDB computes every checksum through one function,
 * leveldb::crc32c::Extend (util/crc32c.h: the CRC-32C of a string A
 * followed by data, given A's), alone in its object file. Linked statically
 * (configure's default where libleveldb.a and libsnappy-dev are installed),
 * the definition below is pulled into the program before the linker
 * searches libleveldb.a (configure's -Wl,-u names it first), so that member
 * is never pulled in and LevelDB calls this one. The shared library binds its own calls internally and never sees
 * it: kv_crc_replaced tells which happened (kv_open logs it, test_kv checks
 * it against the build's choice). The result is bit for bit the same
 * checksum either way, so stores move freely between the two builds.
 */
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "store/kv_env.h"

/* common/bytes.h (C only): CRC-32C of buf following a string whose CRC-32C
 * is crc, as LevelDB's Extend. */
extern "C" uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

namespace {
std::atomic<bool> g_called{false};
}

namespace leveldb {
namespace crc32c {
uint32_t Extend(uint32_t init_crc, const char *data, size_t n);

uint32_t Extend(uint32_t init_crc, const char *data, size_t n)
{
	if (!g_called.load(std::memory_order_relaxed))
		g_called.store(true, std::memory_order_relaxed);
	return ::crc32c(init_crc, data, n);
}
} // namespace crc32c
} // namespace leveldb

extern "C" bool kv_crc_replaced(void)
{
	return g_called.load(std::memory_order_relaxed);
}

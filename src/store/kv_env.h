/*
 * LevelDB's environment with table files read by pread(2) instead of memory
 * maps, and written in 256 KiB writes instead of one per block
 * (kv_env.cc says why).
 */
#ifndef KVFS_STORE_KV_ENV_H
#define KVFS_STORE_KV_ENV_H

#include <stdbool.h>
#include <stdint.h>

#include <leveldb/c.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The process's environment, for leveldb_options_set_env; never freed. */
leveldb_env_t *kv_pread_env(void);

/* LevelDB's own environment with only the background thread named and its
 * jobs counted (kvfsd --table-reads mmap); never freed. */
leveldb_env_t *kv_plain_env(void);

/* LevelDB background jobs (memtable writes and compactions) scheduled or
 * running, in either environment: 0 when the store is quiet. */
uint64_t kv_env_jobs(void);

/* Runs LevelDB's background thread (memtable writes and compactions, both
 * environments) under SCHED_IDLE when idle is true, under the normal policy
 * when false: at once if the thread exists, else from its first job. The
 * thread is the process's, shared by every store open in it: the last call
 * wins. Returns 0, or -errno from sched_setscheduler (nothing changed). */
int kv_env_background_idle(bool idle);
/* Whether a thread of this process can go to SCHED_IDLE and come back
 * (CAP_SYS_NICE, or an RLIMIT_NICE of 20 for nice 0). */
bool kv_env_background_idle_possible(void);

/* Whether LevelDB has computed a checksum through ISA-L's CRC-32C
 * (kv_crc.cc): true once a store was opened in a build linked with the
 * static LevelDB, false with the shared one. */
bool kv_crc_replaced(void);

/* Table files opened for reading, and written, through it so far (tests). */
uint64_t kv_pread_env_files_opened(void);
uint64_t kv_pread_env_tables_written(void);

#ifdef __cplusplus
}
#endif

#endif

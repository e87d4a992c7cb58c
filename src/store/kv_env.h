/*
 * LevelDB's environment with table files read by pread(2) instead of memory
 * maps, and written in 256 KiB writes instead of one per 4 KiB block
 * (kv_env.cc says why).
 */
#ifndef KVFS_STORE_KV_ENV_H
#define KVFS_STORE_KV_ENV_H

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

/* Table files opened for reading, and written, through it so far (tests). */
uint64_t kv_pread_env_files_opened(void);
uint64_t kv_pread_env_tables_written(void);

#ifdef __cplusplus
}
#endif

#endif

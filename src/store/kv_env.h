/*
 * LevelDB's environment with table files read by pread(2) instead of memory
 * maps (kv_env.cc says why).
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

/* Table files opened through it so far (for tests). */
uint64_t kv_pread_env_files_opened(void);

#ifdef __cplusplus
}
#endif

#endif

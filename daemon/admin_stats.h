/* admin_stats: the process facts the admin verbs show (STATS, docs/ADMIN.md). */
#ifndef HEX_ADMIN_STATS_H
#define HEX_ADMIN_STATS_H

#include "adapters/admin/admin_call.h"
#include "daemon/worker_pool.h"

#define ADMIN_STATS_POOLS_MAX 8

/*
 * The process ops for the admin verbs. roles is HEX_ROLES; pools (n of them, NULL
 * entries skipped, at most ADMIN_STATS_POOLS_MAX) must outlive every call. Call once,
 * at start-up: the uptime counts from here.
 */
struct admin_process admin_stats_process(const char *roles, struct worker_pool *const *pools,
                                         int n);

#endif

/* daemon_metrics: collectors for what the daemon owns: pools, cache, limiter, process. */
#ifndef HEX_DAEMON_METRICS_H
#define HEX_DAEMON_METRICS_H

#include "daemon/worker_pool.h"

/* Registers the collectors; pools is an array of n pools (NULL entries skipped). */
void daemon_metrics_register(struct worker_pool **pools, int n);

#endif

/* listeners.c: the listener table. */
#include "daemon/listeners.h"

const struct listener_def listener_defs[LISTEN_COUNT] = {
    [LISTEN_API] = {CFG_HTTP_LISTEN, "http_listen", "HEX_HTTP_LISTEN"},
    [LISTEN_PAYMENTS] = {CFG_PAYMENTS_LISTEN, "payments_listen", "HEX_PAYMENTS_LISTEN"},
    [LISTEN_METRICS] = {CFG_METRICS_LISTEN, "metrics_listen", "HEX_METRICS_LISTEN"},
};

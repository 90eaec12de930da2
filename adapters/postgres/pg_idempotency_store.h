/* pg_idempotency_store: the idempotency_store port on PostgreSQL. */
#ifndef HEX_PG_IDEMPOTENCY_STORE_H
#define HEX_PG_IDEMPOTENCY_STORE_H

#include "adapters/postgres/pg_conn.h"
#include "core/ports/idempotency_store.h"

struct idempotency_store pg_idempotency_store_port(struct pg_conn *c);

#endif

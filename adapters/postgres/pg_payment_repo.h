/* pg_payment_repo: the payment_repo port on PostgreSQL (tables of sql/0003_payments.sql). */
#ifndef HEX_PG_PAYMENT_REPO_H
#define HEX_PG_PAYMENT_REPO_H

#include "adapters/postgres/pg_conn.h"
#include "core/ports/payment_repo.h"

/* The statements this repository runs, registered on its connection by the port. */
extern const struct pg_stmt pg_payment_repo_stmts[];
extern const size_t pg_payment_repo_stmt_count;

/* The outbox topic of Stripe's payment events. */
#define PG_PAYMENT_OUTBOX_TOPIC "payment_events"

/*
 * A payment_repo whose self is c (borrowed: c must outlive the port and stay on its
 * thread). insert() answers HEX_INVALID for a record with a malformed id or user id, and
 * list() for a limit outside 1..HEX_LIST_MAX, an unknown status or a malformed cursor.
 * apply_event() takes the payload as JSON text (ev->payload_len bytes); text that is not
 * JSON fails the whole event (HEX_INTERNAL) and records nothing.
 */
struct payment_repo pg_payment_repo_port(struct pg_conn *c);

#endif

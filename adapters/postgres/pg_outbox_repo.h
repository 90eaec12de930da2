/* pg_outbox_repo: the outbox_repo port on PostgreSQL (outbox of sql/0003 and sql/0007). */
#ifndef HEX_PG_OUTBOX_REPO_H
#define HEX_PG_OUTBOX_REPO_H

#include "adapters/postgres/pg_conn.h"
#include "core/ports/outbox_repo.h"

/* The statements this repository runs, registered on its connection by the port. */
extern const struct pg_stmt pg_outbox_repo_stmts[];
extern const size_t pg_outbox_repo_stmt_count;

/*
 * An outbox_repo whose self is c (borrowed: c must outlive the port and stay on its
 * thread). claim() answers HEX_INVALID for a limit outside 1..EVENT_BATCH_MAX; it fills
 * out (whose n it overwrites) with payloads the caller frees with event_batch_clear(), and
 * on any error leaves out empty with no transaction open. The claimed rows stay locked
 * until published() or release(): publish them before claiming again on c.
 *
 * published() with no claim open, or of a batch naming a row that is published already
 * or does not exist, changes nothing (HEX_INTERNAL). After any failed published() the
 * claim is over and its rows go out again with a later claim (consumers apply an event
 * once whatever the stream repeats). lag() counts every unpublished row and ages the
 * oldest due one from its available_at: a retry is late only from the moment it was due.
 */
struct outbox_repo pg_outbox_repo_port(struct pg_conn *c);

#endif

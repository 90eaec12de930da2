/* pg_event_inbox: the event_inbox port on PostgreSQL (tables of sql/0007_events.sql). */
#ifndef HEX_PG_EVENT_INBOX_H
#define HEX_PG_EVENT_INBOX_H

#include "adapters/postgres/pg_conn.h"
#include "core/ports/event_inbox.h"

/* The statements this inbox runs, registered on its connection by the port. */
extern const struct pg_stmt pg_event_inbox_stmts[];
extern const size_t pg_event_inbox_stmt_count;

/*
 * An event_inbox whose self is c (borrowed: c must outlive the port and stay on its
 * thread). The consumer's repositories run inside begin()'s transaction by using the same
 * c; their own begin/commit nest in it as savepoints (pg_conn.h).
 *
 * begin() and fail() answer HEX_INVALID, and touch nothing, for a consumer name that
 * event_consumer_name_valid() refuses or an empty event id (the consumer names an
 * unreadable stream entry "stream:<id>" first); fail() also for an attempt below 1.
 * Text the database cannot store is stored readable instead of failing, so that even a
 * garbled stream entry reaches dead_letters: each byte that is not UTF-8 becomes '?'
 * (in the event id too, by begin() and fail() alike), the error is cut to one line of at
 * most EVENT_ERROR_MAX bytes. fail() with retry_at_us > 0 dead-letters the event instead
 * of scheduling a retry that could never be relayed: a payload that is not JSON, an empty
 * topic, or no attempt number left. An open dead letter for the same consumer and event
 * stays as it is (*dead is set all the same).
 */
struct event_inbox pg_event_inbox_port(struct pg_conn *c);

#endif

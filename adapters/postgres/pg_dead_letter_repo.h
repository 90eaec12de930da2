/* pg_dead_letter_repo: the dead_letter_repo port on PostgreSQL (sql/0007_events.sql). */
#ifndef HEX_PG_DEAD_LETTER_REPO_H
#define HEX_PG_DEAD_LETTER_REPO_H

#include "adapters/postgres/pg_conn.h"
#include "core/ports/dead_letter_repo.h"

/* The statements this repository runs, registered on its connection by the port. */
extern const struct pg_stmt pg_dead_letter_repo_stmts[];
extern const size_t pg_dead_letter_repo_stmt_count;

/*
 * A dead_letter_repo whose self is c (borrowed: c must outlive the port and stay on its
 * thread). list() answers HEX_INVALID for a limit outside 1..HEX_LIST_MAX or a negative
 * before_id. get() gives the payload (the caller frees out->payload) and the attempts
 * recorded up to the row's own (the newest DEAD_LETTER_HISTORY_MAX of them). replay()
 * and discard() answer HEX_INVALID for an empty or too long actor or reason; on HEX_OK
 * and on HEX_CONFLICT out gets the row as stored (status, resolution) without payload
 * or history; replay() of a payload that is not JSON is HEX_INVALID and changes nothing
 * (such a row can only be discarded). Any id that names no row is HEX_NOT_FOUND.
 */
struct dead_letter_repo pg_dead_letter_repo_port(struct pg_conn *c);

#endif

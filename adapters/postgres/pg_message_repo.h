/* pg_message_repo: the message_repo port on PostgreSQL. */
#ifndef HEX_PG_MESSAGE_REPO_H
#define HEX_PG_MESSAGE_REPO_H

#include "adapters/postgres/pg_conn.h"
#include "core/ports/message_repo.h"

/* The statements this repository runs, registered on its connection by the port. */
extern const struct pg_stmt pg_message_repo_stmts[];
extern const size_t pg_message_repo_stmt_count;

/*
 * A message_repo whose self is c (borrowed: c must outlive the port and stay on its
 * thread). insert() answers HEX_INVALID for malformed ids and HEX_NOT_FOUND for an owner
 * that does not exist; list() answers HEX_INVALID for a limit outside 1..HEX_LIST_MAX or
 * a malformed user id or cursor id.
 */
struct message_repo pg_message_repo_port(struct pg_conn *c);

#endif

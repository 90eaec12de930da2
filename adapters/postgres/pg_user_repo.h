/* pg_user_repo: the user_repo port on PostgreSQL. */
#ifndef HEX_PG_USER_REPO_H
#define HEX_PG_USER_REPO_H

#include "adapters/postgres/pg_conn.h"
#include "core/ports/user_repo.h"

/* The statements this repository runs, registered on its connection by the port. */
extern const struct pg_stmt pg_user_repo_stmts[];
extern const size_t pg_user_repo_stmt_count;

/*
 * A user_repo whose self is c (borrowed: c must outlive the port and stay on its thread).
 * Ids that are not canonical UUIDs are HEX_NOT_FOUND on lookups and HEX_INVALID on insert;
 * list() answers HEX_INVALID for a limit outside 1..HEX_LIST_MAX, an unknown membership
 * or a cursor with a malformed id.
 */
struct user_repo pg_user_repo_port(struct pg_conn *c);

#endif

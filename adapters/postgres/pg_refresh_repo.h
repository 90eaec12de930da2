/* pg_refresh_repo: the refresh_repo port on PostgreSQL. */
#ifndef HEX_PG_REFRESH_REPO_H
#define HEX_PG_REFRESH_REPO_H

#include "adapters/postgres/pg_conn.h"
#include "core/ports/refresh_repo.h"

/* The statements this repository runs, registered on its connection by the port. */
extern const struct pg_stmt pg_refresh_repo_stmts[];
extern const size_t pg_refresh_repo_stmt_count;

/*
 * A refresh_repo whose self is c (borrowed: c must outlive the port and stay on its
 * thread). rotate() takes the family and user of next from the stored token (the core
 * need not know them) and writes them into next. A token that is both dead (used or
 * revoked) and expired counts as reuse (HEX_CONFLICT): reuse detection wins. insert()
 * answers HEX_NOT_FOUND when the user no longer exists, HEX_CONFLICT for a known jti.
 * Malformed jti or family ids are HEX_NOT_FOUND (HEX_INVALID on insert).
 */
struct refresh_repo pg_refresh_repo_port(struct pg_conn *c);

#endif

/* pg_audit_repo: the audit_repo port on PostgreSQL (admin_audit of sql/0008). */
#ifndef HEX_PG_AUDIT_REPO_H
#define HEX_PG_AUDIT_REPO_H

#include "adapters/postgres/pg_conn.h"
#include "core/ports/audit_repo.h"

/* The statements this repository runs, registered on its connection by the port. */
extern const struct pg_stmt pg_audit_repo_stmts[];
extern const size_t pg_audit_repo_stmt_count;

/*
 * An audit_repo whose self is c (borrowed: c must outlive the port and stay on its
 * thread). append() stores at_us as given; a row the table's checks refuse (an operator
 * outside [A-Za-z0-9._@-], text too long, an error on a success) is HEX_INTERNAL and
 * nothing is written. list() answers HEX_INVALID for a limit outside 1..HEX_LIST_MAX or
 * a negative before_id.
 */
struct audit_repo pg_audit_repo_port(struct pg_conn *c);

#endif

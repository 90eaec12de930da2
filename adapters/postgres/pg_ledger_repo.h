/* pg_ledger_repo: the ledger_repo port on PostgreSQL (tables of sql/0006_ledger.sql). */
#ifndef HEX_PG_LEDGER_REPO_H
#define HEX_PG_LEDGER_REPO_H

#include "adapters/postgres/pg_conn.h"
#include "core/ports/ledger_repo.h"

/* The statements this repository runs, registered on its connection by the port. */
extern const struct pg_stmt pg_ledger_repo_stmts[];
extern const size_t pg_ledger_repo_stmt_count;

/*
 * A ledger_repo whose self is c (borrowed: c must outlive the port and stay on its
 * thread). post() answers HEX_INVALID for a request that names an invalid account or
 * has more than LEDGER_ENTRIES_MAX postings; the database refuses an unbalanced one at
 * commit (HEX_INTERNAL) even if the core's check was skipped.
 */
struct ledger_repo pg_ledger_repo_port(struct pg_conn *c);

#endif

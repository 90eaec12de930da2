/*
 * fake_admin: in-memory fakes of the ports the admin port's own use cases need: the audit
 * trail (audit_repo) and the cache administration (user_cache_admin). Plain structs:
 * tests read and set their fields directly. Nothing here allocates.
 */
#ifndef HEX_TESTS_UNIT_FAKE_ADMIN_H
#define HEX_TESTS_UNIT_FAKE_ADMIN_H

#include "core/ports/audit_repo.h"
#include "core/ports/user_cache_admin.h"

#define FAKE_AUDIT_ROWS 16

/* audit_repo: rows get ids 1, 2, ... in append order; list() walks them newest first. */
struct fake_audit_repo {
	struct audit_entry rows[FAKE_AUDIT_ROWS];
	int count;
	int appends, lists;
	int last_limit;
	int64_t last_before;
	enum hex_status fail_next; /* the next call answers this (once), changing nothing */
};
struct audit_repo fake_audit_repo_port(struct fake_audit_repo *r);

/* user_cache_admin: `keys` entries; flush(NULL) empties it, flush(id) deletes 1 if the
 * id is in `cached` (one id), counters are fixed (hits 7, misses 3, errors 1). */
struct fake_cache_admin {
	long keys;
	char cached[HEX_ID_LEN + 1];
	int counts, flushes;
	bool flushed_all;
	char flushed_id[64];
	enum hex_status fail; /* every count and flush answers this while set */
};
struct user_cache_admin fake_cache_admin_port(struct fake_cache_admin *c);

#endif

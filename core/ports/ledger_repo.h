/*
 * ledger_repo: durable storage of the double-entry ledger (accounts, journal transactions
 * and their immutable entries). Every write is committed when the call returns HEX_OK and
 * has changed nothing when it returns anything else.
 */
#ifndef HEX_PORT_LEDGER_REPO_H
#define HEX_PORT_LEDGER_REPO_H

#include "core/ledger.h"

struct ledger_repo_ops {
	/*
	 * In one transaction: records t (already checked by ledger_txn_check()) under its
	 * idempotency key, finds or creates the accounts it names, locks them in id order (so
	 * that concurrent posts over the same accounts never deadlock), and writes its entries,
	 * each moving its account's balance. If the key was posted before, nothing moves,
	 * *duplicate is set and out gets the first transaction. HEX_CONFLICT (nothing written)
	 * when an account that may not go negative would.
	 */
	enum hex_status (*post)(void *self, const struct ledger_txn_request *t, int64_t now_us,
	                        struct ledger_txn *out, bool *duplicate);
	/* The transaction posted with idempotency key; HEX_NOT_FOUND if none. */
	enum hex_status (*get_by_key)(void *self, const char *key, struct ledger_txn *out);
	/* The wallets of user_id (none is HEX_OK with n = 0). */
	enum hex_status (*balances)(void *self, const char *user_id, struct ledger_balances *out);
	/*
	 * Up to limit (1..HEX_LIST_MAX) entries of user_id's wallets with an id below
	 * before_id (0 for the first page), newest first.
	 */
	enum hex_status (*entries)(void *self, const char *user_id, int limit, int64_t before_id,
	                           struct ledger_entry_page *out);
	/*
	 * Recomputes every account's balance from its entries and each currency's sum of all
	 * entries, and reports what disagrees (out->ok is left to the caller).
	 */
	enum hex_status (*verify)(void *self, struct ledger_verify_report *out);
	/*
	 * Up to limit (1..HEX_LIST_MAX) accounts in the order of struct ledger_account_page,
	 * after account after_id ("" for the first page); HEX_NOT_FOUND if after_id names no
	 * account. updated_at_us is left 0.
	 */
	enum hex_status (*accounts)(void *self, int limit, const char *after_id,
	                            struct ledger_account_page *out);
	/*
	 * Up to limit (1..HEX_LIST_MAX) entries of account account_id with an id below
	 * before_id (0 for the first page), newest first. HEX_NOT_FOUND if there is no such
	 * account.
	 */
	enum hex_status (*account_entries)(void *self, const char *account_id, int limit,
	                                   int64_t before_id, struct ledger_entry_page *out);
};

struct ledger_repo {
	const struct ledger_repo_ops *ops;
	void *self;
};

#endif

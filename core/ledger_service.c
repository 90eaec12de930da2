/* ledger_service.c: the ledger's use cases over the ledger_repo port. */
#include "core/ledger_service.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/logger.h"

/* Leaves room in LEDGER_KEY_MAX for the "transfer:<uuid>:" prefix of transfer keys. */
#define CLIENT_KEY_MAX (LEDGER_KEY_MAX - 80)

static enum hex_status insufficient(struct hex_err *err)
{
	enum hex_status st =
	    hex_fail(err, HEX_CONFLICT, "amount", "insufficient funds in the wallet");
	if (err != NULL)
		err->code = "insufficient_funds";
	return st;
}

enum hex_status ledger_service_post(struct ledger_service *s, struct ledger_txn_request *t,
                                    struct ledger_txn *out, bool *duplicate, struct hex_err *err)
{
	bool dup = false;
	if (t->id[0] == '\0')
		s->ids.ops->new_id(s->ids.self, t->id);
	enum hex_status st = ledger_txn_check(t, err);
	if (st != HEX_OK)
		return st;
	st = s->repo.ops->post(s->repo.self, t, s->clock.ops->now_us(s->clock.self), out, &dup);
	if (duplicate != NULL)
		*duplicate = dup;
	if (st == HEX_CONFLICT)
		return insufficient(err);
	if (st != HEX_OK)
		return hex_store_failed(st, "account", err);
	return HEX_OK;
}

/* A request whose key and reference are both "<what>:<id>". */
static void txn_init(struct ledger_txn_request *t, const char *key, const char *reference)
{
	memset(t, 0, sizeof *t);
	hex_strlcpy(t->idempotency_key, key, sizeof t->idempotency_key);
	hex_strlcpy(t->reference, reference, sizeof t->reference);
}

static enum hex_status amount_check(int64_t amount, struct hex_err *err)
{
	if (amount <= 0 || amount > LEDGER_AMOUNT_MAX)
		return hex_fail(err, HEX_INVALID, "amount", "amount must be positive");
	return HEX_OK;
}

static enum hex_status id_check(const char *id, const char *field, struct hex_err *err)
{
	if (id == NULL || !user_id_valid(id))
		return hex_fail(err, HEX_INVALID, field, "%s is not a valid id", field);
	return HEX_OK;
}

enum hex_status ledger_service_top_up(struct ledger_service *s, const char *payment_id,
                                      const char *user_id, int64_t amount, const char *currency,
                                      struct ledger_txn *out, struct hex_err *err)
{
	enum hex_status st;
	if ((st = id_check(payment_id, "payment_id", err)) != HEX_OK ||
	    (st = id_check(user_id, "user_id", err)) != HEX_OK ||
	    (st = amount_check(amount, err)) != HEX_OK)
		return st;
	char ref[LEDGER_KEY_MAX + 1];
	snprintf(ref, sizeof ref, "payment:%s", payment_id);
	struct ledger_txn_request t;
	txn_init(&t, ref, ref);
	ledger_txn_add(&t, LEDGER_STRIPE_CLEARING, NULL, currency, -amount);
	ledger_txn_add(&t, LEDGER_WALLET, user_id, currency, amount);
	return ledger_service_post(s, &t, out, NULL, err);
}

enum hex_status ledger_service_membership(struct ledger_service *s, const char *payment_id,
                                          int64_t amount, const char *currency,
                                          struct ledger_txn *out, struct hex_err *err)
{
	enum hex_status st;
	if ((st = id_check(payment_id, "payment_id", err)) != HEX_OK ||
	    (st = amount_check(amount, err)) != HEX_OK)
		return st;
	char ref[LEDGER_KEY_MAX + 1];
	snprintf(ref, sizeof ref, "payment:%s", payment_id);
	struct ledger_txn_request t;
	txn_init(&t, ref, ref);
	ledger_txn_add(&t, LEDGER_STRIPE_CLEARING, NULL, currency, -amount);
	ledger_txn_add(&t, LEDGER_MEMBERSHIP_REVENUE, NULL, currency, amount);
	return ledger_service_post(s, &t, out, NULL, err);
}

enum hex_status ledger_service_refund(struct ledger_service *s, const char *refund_id,
                                      const char *original_key, struct ledger_txn *out,
                                      struct hex_err *err)
{
	enum hex_status st = id_check(refund_id, "refund_id", err);
	if (st != HEX_OK)
		return st;
	if (original_key == NULL || *original_key == '\0')
		return hex_fail(err, HEX_INVALID, "original", "no original transaction named");
	struct ledger_txn orig;
	st = s->repo.ops->get_by_key(s->repo.self, original_key, &orig);
	if (st != HEX_OK)
		return hex_store_failed(st, "transaction", err);
	char ref[LEDGER_KEY_MAX + 1];
	snprintf(ref, sizeof ref, "refund:%s", refund_id);
	struct ledger_txn_request t;
	txn_init(&t, ref, ref);
	for (int i = 0; i < orig.n; i++) {
		const struct ledger_entry *e = &orig.entries[i];
		ledger_txn_add(&t, e->account.kind, e->account.owner_id, e->account.currency,
		               -e->amount);
	}
	return ledger_service_post(s, &t, out, NULL, err);
}

/* A key seen before is a replay only if it moved the same money between the same wallets. */
static bool same_transfer(const struct ledger_txn *posted, const struct ledger_txn_request *t)
{
	if (posted->n != t->n)
		return false;
	for (int i = 0; i < t->n; i++) {
		const struct ledger_posting *want = &t->postings[i];
		bool found = false;
		for (int j = 0; j < posted->n && !found; j++) {
			const struct ledger_entry *e = &posted->entries[j];
			found = e->amount == want->amount &&
			        e->account.kind == want->account.kind &&
			        strcasecmp(e->account.owner_id, want->account.owner_id) == 0 &&
			        strcmp(e->account.currency, want->account.currency) == 0;
		}
		if (!found)
			return false;
	}
	return true;
}

enum hex_status ledger_service_transfer(struct ledger_service *s, const char *from_user,
                                        const char *to_user, int64_t amount, const char *currency,
                                        const char *client_key, struct ledger_txn *out,
                                        bool *replayed, struct hex_err *err)
{
	if (replayed != NULL)
		*replayed = false;
	enum hex_status st;
	if ((st = id_check(from_user, "from", err)) != HEX_OK ||
	    (st = id_check(to_user, "to", err)) != HEX_OK ||
	    (st = amount_check(amount, err)) != HEX_OK)
		return st;
	if (strcasecmp(from_user, to_user) == 0)
		return hex_fail(err, HEX_INVALID, "to", "cannot transfer to the same wallet");
	size_t klen = client_key != NULL ? strlen(client_key) : 0;
	if (klen == 0 || klen > CLIENT_KEY_MAX)
		return hex_fail(err, HEX_INVALID, "idempotency_key",
		                "Idempotency-Key must be 1 to %d characters", CLIENT_KEY_MAX);
	struct ledger_txn_request t;
	memset(&t, 0, sizeof t);
	s->ids.ops->new_id(s->ids.self, t.id);
	/* Keyed by the payer: two users may well pick the same key. */
	snprintf(t.idempotency_key, sizeof t.idempotency_key, "transfer:%s:%s", from_user,
	         client_key);
	snprintf(t.reference, sizeof t.reference, "transfer:%s", t.id);
	ledger_txn_add(&t, LEDGER_WALLET, from_user, currency, -amount);
	ledger_txn_add(&t, LEDGER_WALLET, to_user, currency, amount);
	bool dup = false;
	if ((st = ledger_service_post(s, &t, out, &dup, err)) != HEX_OK)
		return st;
	if (replayed != NULL)
		*replayed = dup;
	if (dup && !same_transfer(out, &t)) {
		st = hex_fail(err, HEX_CONFLICT, "idempotency_key",
		              "this Idempotency-Key was already used for another transfer");
		if (err != NULL)
			err->code = "idempotency_key_reused";
	}
	return st;
}

enum hex_status ledger_service_balances(struct ledger_service *s, const char *user_id,
                                        struct ledger_balances *out, struct hex_err *err)
{
	enum hex_status st = id_check(user_id, "user_id", err);
	if (st != HEX_OK)
		return st;
	st = s->repo.ops->balances(s->repo.self, user_id, out);
	return st == HEX_OK ? HEX_OK : hex_store_failed(st, "user", err);
}

enum hex_status ledger_service_entries(struct ledger_service *s, const char *user_id, int limit,
                                       int64_t before_id, struct ledger_entry_page *out,
                                       struct hex_err *err)
{
	enum hex_status st = id_check(user_id, "user_id", err);
	if (st != HEX_OK)
		return st;
	if (limit < 1 || limit > HEX_LIST_MAX)
		return hex_fail(err, HEX_INVALID, "limit", "limit must be 1 to %d", HEX_LIST_MAX);
	if (before_id < 0)
		return hex_fail(err, HEX_INVALID, "cursor", "cursor is not valid");
	st = s->repo.ops->entries(s->repo.self, user_id, limit, before_id, out);
	return st == HEX_OK ? HEX_OK : hex_store_failed(st, "user", err);
}

enum hex_status ledger_service_accounts(struct ledger_service *s, int limit, const char *after_id,
                                        struct ledger_account_page *out, struct hex_err *err)
{
	memset(out, 0, sizeof *out);
	if (limit < 1 || limit > HEX_LIST_MAX)
		return hex_fail(err, HEX_INVALID, "limit", "limit must be 1 to %d", HEX_LIST_MAX);
	if (after_id == NULL)
		after_id = "";
	if (after_id[0] != '\0' && !user_id_valid(after_id))
		return hex_fail(err, HEX_INVALID, "cursor", "cursor is not valid");
	enum hex_status st = s->repo.ops->accounts(s->repo.self, limit, after_id, out);
	/* Accounts are never deleted: an unknown one was never handed out as a cursor. */
	if (st == HEX_NOT_FOUND)
		return hex_fail(err, HEX_INVALID, "cursor", "cursor is not valid");
	return st == HEX_OK ? HEX_OK : hex_store_failed(st, "account", err);
}

enum hex_status ledger_service_account_entries(struct ledger_service *s, const char *account_id,
                                               int limit, int64_t before_id,
                                               struct ledger_entry_page *out, struct hex_err *err)
{
	memset(out, 0, sizeof *out);
	enum hex_status st = id_check(account_id, "account_id", err);
	if (st != HEX_OK)
		return st;
	if (limit < 1 || limit > HEX_LIST_MAX)
		return hex_fail(err, HEX_INVALID, "limit", "limit must be 1 to %d", HEX_LIST_MAX);
	if (before_id < 0)
		return hex_fail(err, HEX_INVALID, "cursor", "cursor is not valid");
	st = s->repo.ops->account_entries(s->repo.self, account_id, limit, before_id, out);
	return st == HEX_OK ? HEX_OK : hex_store_failed(st, "account", err);
}

enum hex_status ledger_service_verify(struct ledger_service *s, struct ledger_verify_report *out,
                                      struct hex_err *err)
{
	memset(out, 0, sizeof *out);
	enum hex_status st = s->repo.ops->verify(s->repo.self, out);
	if (st != HEX_OK)
		return hex_store_failed(st, "ledger", err);
	out->ok = out->nmismatches == 0 && out->nunbalanced == 0;
	if (!out->ok)
		log_error("ledger_verify_failed", "accounts_mismatched=%d currencies_unbalanced=%d",
		          out->nmismatches, out->nunbalanced);
	return HEX_OK;
}

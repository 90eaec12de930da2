/*
 * test_ledger_service: the ledger's use cases over an in-memory ledger_repo that keeps the
 * same promises as PostgreSQL's (idempotency keys, no negative wallet, balance = entries).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/ledger_service.h"
#include "support/fakes.h"

#define USER_A  "00000000-0000-4000-8000-00000000000a"
#define USER_B  "00000000-0000-4000-8000-00000000000b"
#define PAYMENT "00000000-0000-4000-8000-000000000101"
#define REFUND  "00000000-0000-4000-8000-000000000201"

/* ---- an in-memory ledger_repo ---- */

#define FAKE_ACCOUNTS 16
#define FAKE_TXNS     32

struct fake_ledger {
	struct ledger_account accounts[FAKE_ACCOUNTS];
	int naccounts;
	struct ledger_txn txns[FAKE_TXNS];
	int ntxns;
	int64_t next_entry;
	int posts; /* post calls */
	enum hex_status fail_next;
};

static int account_of(struct fake_ledger *f, const struct ledger_account_ref *ref)
{
	for (int i = 0; i < f->naccounts; i++)
		if (memcmp(&f->accounts[i].ref, ref, sizeof *ref) == 0)
			return i;
	assert_true(f->naccounts < FAKE_ACCOUNTS);
	struct ledger_account *a = &f->accounts[f->naccounts];
	memset(a, 0, sizeof *a);
	snprintf(a->id, sizeof a->id, "00000000-0000-4000-8000-%012d", 900 + f->naccounts);
	a->ref = *ref;
	a->allow_negative = ledger_kind_allows_negative(ref->kind);
	return f->naccounts++;
}

static enum hex_status fake_get_by_key(void *self, const char *key, struct ledger_txn *out)
{
	struct fake_ledger *f = self;
	for (int i = 0; i < f->ntxns; i++)
		if (strcmp(f->txns[i].idempotency_key, key) == 0) {
			*out = f->txns[i];
			return HEX_OK;
		}
	return HEX_NOT_FOUND;
}

static enum hex_status fake_post(void *self, const struct ledger_txn_request *t, int64_t now_us,
                                 struct ledger_txn *out, bool *duplicate)
{
	struct fake_ledger *f = self;
	f->posts++;
	*duplicate = false;
	if (f->fail_next != HEX_OK) {
		enum hex_status st = f->fail_next;
		f->fail_next = HEX_OK;
		return st;
	}
	if (fake_get_by_key(f, t->idempotency_key, out) == HEX_OK) {
		*duplicate = true;
		return HEX_OK;
	}
	int idx[LEDGER_ENTRIES_MAX];
	for (int i = 0; i < t->n; i++)
		idx[i] = account_of(f, &t->postings[i].account);
	for (int i = 0; i < t->n; i++) {
		int64_t total = f->accounts[idx[i]].balance;
		for (int j = 0; j < t->n; j++)
			if (idx[j] == idx[i])
				total += t->postings[j].amount;
		if (!f->accounts[idx[i]].allow_negative && total < 0)
			return HEX_CONFLICT;
	}
	assert_true(f->ntxns < FAKE_TXNS);
	struct ledger_txn *x = &f->txns[f->ntxns++];
	memset(x, 0, sizeof *x);
	strcpy(x->id, t->id);
	strcpy(x->idempotency_key, t->idempotency_key);
	strcpy(x->reference, t->reference);
	x->created_at_us = now_us;
	x->n = t->n;
	for (int i = 0; i < t->n; i++) {
		struct ledger_entry *e = &x->entries[i];
		e->id = ++f->next_entry;
		strcpy(e->transaction_id, t->id);
		strcpy(e->account_id, f->accounts[idx[i]].id);
		e->account = t->postings[i].account;
		e->amount = t->postings[i].amount;
		strcpy(e->reference, t->reference);
		e->created_at_us = now_us;
		f->accounts[idx[i]].balance += e->amount;
	}
	*out = *x;
	return HEX_OK;
}

static enum hex_status fake_balances(void *self, const char *user_id, struct ledger_balances *out)
{
	struct fake_ledger *f = self;
	memset(out, 0, sizeof *out);
	for (int i = 0; i < f->naccounts; i++)
		if (f->accounts[i].ref.kind == LEDGER_WALLET &&
		    strcmp(f->accounts[i].ref.owner_id, user_id) == 0)
			out->wallets[out->n++] = f->accounts[i];
	return HEX_OK;
}

static enum hex_status fake_entries(void *self, const char *user_id, int limit, int64_t before,
                                    struct ledger_entry_page *out)
{
	struct fake_ledger *f = self;
	memset(out, 0, sizeof *out);
	for (int t = f->ntxns - 1; t >= 0; t--)
		for (int i = f->txns[t].n - 1; i >= 0; i--) {
			const struct ledger_entry *e = &f->txns[t].entries[i];
			if (e->account.kind != LEDGER_WALLET ||
			    strcmp(e->account.owner_id, user_id) != 0 ||
			    (before > 0 && e->id >= before))
				continue;
			if (out->count == limit) {
				out->has_more = true;
				return HEX_OK;
			}
			out->items[out->count++] = *e;
		}
	return HEX_OK;
}

static enum hex_status fake_verify(void *self, struct ledger_verify_report *out)
{
	struct fake_ledger *f = self;
	int64_t total = 0;
	for (int a = 0; a < f->naccounts; a++) {
		int64_t sum = 0;
		for (int t = 0; t < f->ntxns; t++)
			for (int i = 0; i < f->txns[t].n; i++)
				if (strcmp(f->txns[t].entries[i].account_id, f->accounts[a].id) ==
				    0)
					sum += f->txns[t].entries[i].amount;
		total += sum;
		out->accounts_checked++;
		if (sum != f->accounts[a].balance) {
			struct ledger_mismatch *m = &out->mismatches[out->nmismatches++];
			strcpy(m->account_id, f->accounts[a].id);
			m->balance = f->accounts[a].balance;
			m->entries_sum = sum;
		}
	}
	if (total != 0) { /* the tests use one currency */
		strcpy(out->unbalanced[0].currency, "eur");
		out->unbalanced[0].sum = total;
		out->nunbalanced = 1;
	}
	return HEX_OK;
}

static const struct ledger_repo_ops fake_ledger_ops = {
    .post = fake_post,
    .get_by_key = fake_get_by_key,
    .balances = fake_balances,
    .entries = fake_entries,
    .verify = fake_verify,
};

/* ---- fixture ---- */

struct fixture {
	struct fake_ledger repo;
	struct fake_clock clock;
	struct fake_ids ids;
	struct ledger_service svc;
	struct ledger_txn txn;
	struct hex_err err;
};

static int setup(void **state)
{
	static struct fixture fx;
	memset(&fx, 0, sizeof fx);
	fx.clock.now_us = FAKE_T0_S * 1000000LL;
	fx.svc.repo = (struct ledger_repo){.ops = &fake_ledger_ops, .self = &fx.repo};
	fx.svc.clock = fake_clock_port(&fx.clock);
	fx.svc.ids = fake_ids_port(&fx.ids);
	*state = &fx;
	return 0;
}

static int64_t wallet(struct fixture *fx, const char *user, const char *currency)
{
	struct ledger_balances b;
	assert_int_equal(ledger_service_balances(&fx->svc, user, &b, &fx->err), HEX_OK);
	for (int i = 0; i < b.n; i++)
		if (strcmp(b.wallets[i].ref.currency, currency) == 0)
			return b.wallets[i].balance;
	return -1; /* no wallet */
}

static void top_up(struct fixture *fx, const char *payment_id, const char *user, int64_t amount)
{
	assert_int_equal(
	    ledger_service_top_up(&fx->svc, payment_id, user, amount, "eur", &fx->txn, &fx->err),
	    HEX_OK);
}

static void verify_ok(struct fixture *fx)
{
	struct ledger_verify_report r;
	assert_int_equal(ledger_service_verify(&fx->svc, &r, &fx->err), HEX_OK);
	assert_true(r.ok);
}

/* ---- tests ---- */

static void top_up_moves_clearing_to_wallet_once(void **state)
{
	struct fixture *fx = *state;
	assert_int_equal(wallet(fx, USER_A, "eur"), -1);
	top_up(fx, PAYMENT, USER_A, 1500);
	assert_int_equal(fx->txn.n, 2);
	assert_string_equal(fx->txn.reference, "payment:" PAYMENT);
	assert_int_equal(fx->txn.entries[0].account.kind, LEDGER_STRIPE_CLEARING);
	assert_int_equal(fx->txn.entries[0].amount, -1500);
	assert_int_equal(fx->txn.entries[1].account.kind, LEDGER_WALLET);
	assert_int_equal(fx->txn.entries[1].amount, 1500);
	assert_int_equal(wallet(fx, USER_A, "eur"), 1500);
	char first[HEX_ID_LEN + 1];
	strcpy(first, fx->txn.id);

	/* A redelivered payment event: same key, nothing moves, the first is returned. */
	top_up(fx, PAYMENT, USER_A, 1500);
	assert_string_equal(fx->txn.id, first);
	assert_int_equal(wallet(fx, USER_A, "eur"), 1500);
	assert_int_equal(fx->repo.ntxns, 1);
	verify_ok(fx);
}

static void post_reports_duplicates(void **state)
{
	struct fixture *fx = *state;
	struct ledger_txn_request t;
	memset(&t, 0, sizeof t);
	strcpy(t.idempotency_key, "manual:1");
	strcpy(t.reference, "manual:1");
	ledger_txn_add(&t, LEDGER_STRIPE_CLEARING, NULL, "eur", -10);
	ledger_txn_add(&t, LEDGER_REFUNDS, NULL, "eur", 10);
	bool dup = true;
	struct ledger_txn_request again = t;
	assert_int_equal(ledger_service_post(&fx->svc, &t, &fx->txn, &dup, &fx->err), HEX_OK);
	assert_false(dup);
	assert_true(user_id_valid(t.id)); /* chosen by the service */
	assert_int_equal(ledger_service_post(&fx->svc, &again, &fx->txn, &dup, &fx->err), HEX_OK);
	assert_true(dup);
	assert_string_equal(fx->txn.id, t.id);
	assert_int_equal(fx->repo.ntxns, 1);
}

static void post_refuses_what_the_rules_refuse_without_storing(void **state)
{
	struct fixture *fx = *state;
	struct ledger_txn_request t;
	memset(&t, 0, sizeof t);
	strcpy(t.idempotency_key, "manual:2");
	strcpy(t.reference, "manual:2");
	ledger_txn_add(&t, LEDGER_STRIPE_CLEARING, NULL, "eur", -10);
	ledger_txn_add(&t, LEDGER_REFUNDS, NULL, "eur", 9);
	assert_int_equal(ledger_service_post(&fx->svc, &t, &fx->txn, NULL, &fx->err), HEX_INVALID);
	assert_string_equal(fx->err.field, "entries");
	assert_int_equal(fx->repo.posts, 0);
}

static void membership_moves_clearing_to_revenue(void **state)
{
	struct fixture *fx = *state;
	assert_int_equal(
	    ledger_service_membership(&fx->svc, PAYMENT, 999, "eur", &fx->txn, &fx->err), HEX_OK);
	assert_int_equal(fx->txn.entries[0].account.kind, LEDGER_STRIPE_CLEARING);
	assert_int_equal(fx->txn.entries[0].amount, -999);
	assert_int_equal(fx->txn.entries[1].account.kind, LEDGER_MEMBERSHIP_REVENUE);
	assert_int_equal(fx->txn.entries[1].amount, 999);
	assert_int_equal(fx->repo.accounts[1].balance, 999);
	assert_int_equal(
	    ledger_service_membership(&fx->svc, "nope", 999, "eur", &fx->txn, &fx->err),
	    HEX_INVALID);
	assert_string_equal(fx->err.field, "payment_id");
	assert_int_equal(ledger_service_membership(&fx->svc, PAYMENT, 0, "eur", &fx->txn, &fx->err),
	                 HEX_INVALID);
	assert_string_equal(fx->err.field, "amount");
	assert_int_equal(ledger_service_membership(&fx->svc, PAYMENT, 5, "EUR", &fx->txn, &fx->err),
	                 HEX_INVALID);
	assert_string_equal(fx->err.field, "currency");
	assert_int_equal(fx->repo.ntxns, 1);
}

static void refund_reverses_the_original_once(void **state)
{
	struct fixture *fx = *state;
	top_up(fx, PAYMENT, USER_A, 700);
	assert_int_equal(
	    ledger_service_refund(&fx->svc, REFUND, "payment:" PAYMENT, &fx->txn, &fx->err),
	    HEX_OK);
	assert_string_equal(fx->txn.reference, "refund:" REFUND);
	assert_int_equal(fx->txn.entries[0].account.kind, LEDGER_STRIPE_CLEARING);
	assert_int_equal(fx->txn.entries[0].amount, 700);
	assert_int_equal(fx->txn.entries[1].amount, -700);
	assert_int_equal(wallet(fx, USER_A, "eur"), 0);
	assert_int_equal(
	    ledger_service_refund(&fx->svc, REFUND, "payment:" PAYMENT, &fx->txn, &fx->err),
	    HEX_OK);
	assert_int_equal(wallet(fx, USER_A, "eur"), 0);
	assert_int_equal(fx->repo.ntxns, 2);
	verify_ok(fx);

	assert_int_equal(
	    ledger_service_refund(&fx->svc, REFUND, "payment:nothing", &fx->txn, &fx->err),
	    HEX_NOT_FOUND);
	assert_int_equal(ledger_service_refund(&fx->svc, REFUND, "", &fx->txn, &fx->err),
	                 HEX_INVALID);
	assert_string_equal(fx->err.field, "original");
	assert_int_equal(
	    ledger_service_refund(&fx->svc, "x", "payment:" PAYMENT, &fx->txn, &fx->err),
	    HEX_INVALID);
	assert_string_equal(fx->err.field, "refund_id");
}

static void refund_of_spent_money_is_insufficient_funds(void **state)
{
	struct fixture *fx = *state;
	top_up(fx, PAYMENT, USER_A, 700);
	assert_int_equal(ledger_service_transfer(&fx->svc, USER_A, USER_B, 500, "eur", "k1",
	                                         &fx->txn, NULL, &fx->err),
	                 HEX_OK);
	assert_int_equal(
	    ledger_service_refund(&fx->svc, REFUND, "payment:" PAYMENT, &fx->txn, &fx->err),
	    HEX_CONFLICT);
	assert_string_equal(fx->err.code, "insufficient_funds");
	assert_int_equal(wallet(fx, USER_A, "eur"), 200);
}

static void transfer_moves_between_wallets_idempotently(void **state)
{
	struct fixture *fx = *state;
	top_up(fx, PAYMENT, USER_A, 1000);
	bool replayed = true;
	assert_int_equal(ledger_service_transfer(&fx->svc, USER_A, USER_B, 300, "eur", "k1",
	                                         &fx->txn, &replayed, &fx->err),
	                 HEX_OK);
	assert_false(replayed);
	char ref[LEDGER_KEY_MAX + 1];
	snprintf(ref, sizeof ref, "transfer:%s", fx->txn.id);
	assert_string_equal(fx->txn.reference, ref);
	assert_int_equal(wallet(fx, USER_A, "eur"), 700);
	assert_int_equal(wallet(fx, USER_B, "eur"), 300);
	/* The same client key again: a retry, nothing more moves. */
	assert_int_equal(ledger_service_transfer(&fx->svc, USER_A, USER_B, 300, "eur", "k1",
	                                         &fx->txn, &replayed, &fx->err),
	                 HEX_OK);
	assert_true(replayed);
	assert_int_equal(wallet(fx, USER_A, "eur"), 700);
	/* Another payer may use the same key. */
	assert_int_equal(ledger_service_transfer(&fx->svc, USER_B, USER_A, 100, "eur", "k1",
	                                         &fx->txn, NULL, &fx->err),
	                 HEX_OK);
	assert_int_equal(wallet(fx, USER_A, "eur"), 800);
	assert_int_equal(wallet(fx, USER_B, "eur"), 200);
	verify_ok(fx);
}

static void transfer_overdraft_is_insufficient_funds(void **state)
{
	struct fixture *fx = *state;
	top_up(fx, PAYMENT, USER_A, 100);
	fx->err.code = NULL;
	assert_int_equal(ledger_service_transfer(&fx->svc, USER_A, USER_B, 101, "eur", "k2",
	                                         &fx->txn, NULL, &fx->err),
	                 HEX_CONFLICT);
	assert_string_equal(fx->err.code, "insufficient_funds");
	assert_string_equal(fx->err.field, "amount");
	assert_int_equal(wallet(fx, USER_A, "eur"), 100);
	/* A user with no wallet at all has nothing to send. */
	assert_int_equal(ledger_service_transfer(&fx->svc, USER_B, USER_A, 1, "eur", "k3", &fx->txn,
	                                         NULL, &fx->err),
	                 HEX_CONFLICT);
	/* Exactly everything is fine. */
	assert_int_equal(ledger_service_transfer(&fx->svc, USER_A, USER_B, 100, "eur", "k4",
	                                         &fx->txn, NULL, &fx->err),
	                 HEX_OK);
	assert_int_equal(wallet(fx, USER_A, "eur"), 0);
}

static void transfer_input_errors(void **state)
{
	struct fixture *fx = *state;
	struct {
		const char *from, *to;
		int64_t amount;
		const char *currency, *key, *field;
	} cases[] = {
	    {"x", USER_B, 1, "eur", "k", "from"},
	    {USER_A, NULL, 1, "eur", "k", "to"},
	    {USER_A, USER_A, 1, "eur", "k", "to"},
	    {USER_A, "00000000-0000-4000-8000-00000000000A", 1, "eur", "k", "to"},
	    {USER_A, USER_B, 0, "eur", "k", "amount"},
	    {USER_A, USER_B, -5, "eur", "k", "amount"},
	    {USER_A, USER_B, 1, "eu", "k", "currency"},
	    {USER_A, USER_B, 1, "eur", "", "idempotency_key"},
	    {USER_A, USER_B, 1, "eur", NULL, "idempotency_key"},
	    {USER_A, USER_B, 1, "eur", "a b", "idempotency_key"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		fx->err.field = NULL;
		assert_int_equal(ledger_service_transfer(&fx->svc, cases[i].from, cases[i].to,
		                                         cases[i].amount, cases[i].currency,
		                                         cases[i].key, &fx->txn, NULL, &fx->err),
		                 HEX_INVALID);
		assert_non_null(fx->err.field);
		assert_string_equal(fx->err.field, cases[i].field);
	}
	char long_key[300];
	memset(long_key, 'k', sizeof long_key - 1);
	long_key[sizeof long_key - 1] = '\0';
	assert_int_equal(ledger_service_transfer(&fx->svc, USER_A, USER_B, 1, "eur", long_key,
	                                         &fx->txn, NULL, &fx->err),
	                 HEX_INVALID);
	assert_string_equal(fx->err.field, "idempotency_key");
	assert_int_equal(fx->repo.posts, 0);
}

static void storage_failures_are_mapped(void **state)
{
	struct fixture *fx = *state;
	fx->repo.fail_next = HEX_UNAVAILABLE;
	assert_int_equal(ledger_service_membership(&fx->svc, PAYMENT, 5, "eur", &fx->txn, &fx->err),
	                 HEX_UNAVAILABLE);
	assert_string_equal(fx->err.message, "the database is unavailable");
	fx->repo.fail_next = HEX_INTERNAL;
	assert_int_equal(ledger_service_membership(&fx->svc, PAYMENT, 5, "eur", &fx->txn, &fx->err),
	                 HEX_INTERNAL);
	assert_int_equal(fx->repo.ntxns, 0);
}

static void entries_page_newest_first(void **state)
{
	struct fixture *fx = *state;
	top_up(fx, PAYMENT, USER_A, 1000);
	for (int i = 0; i < 4; i++) {
		char key[8];
		snprintf(key, sizeof key, "t%d", i);
		assert_int_equal(ledger_service_transfer(&fx->svc, USER_A, USER_B, 10 + i, "eur",
		                                         key, &fx->txn, NULL, &fx->err),
		                 HEX_OK);
	}
	struct ledger_entry_page p;
	assert_int_equal(ledger_service_entries(&fx->svc, USER_A, 2, 0, &p, &fx->err), HEX_OK);
	assert_int_equal(p.count, 2);
	assert_true(p.has_more);
	assert_int_equal(p.items[0].amount, -13);
	assert_int_equal(p.items[1].amount, -12);
	assert_int_equal(ledger_service_entries(&fx->svc, USER_A, 100, p.items[1].id, &p, &fx->err),
	                 HEX_OK);
	assert_int_equal(p.count, 3);
	assert_false(p.has_more);
	assert_int_equal(p.items[2].amount, 1000);

	assert_int_equal(ledger_service_entries(&fx->svc, USER_A, 0, 0, &p, &fx->err), HEX_INVALID);
	assert_string_equal(fx->err.field, "limit");
	assert_int_equal(ledger_service_entries(&fx->svc, USER_A, 101, 0, &p, &fx->err),
	                 HEX_INVALID);
	assert_int_equal(ledger_service_entries(&fx->svc, USER_A, 5, -1, &p, &fx->err),
	                 HEX_INVALID);
	assert_string_equal(fx->err.field, "cursor");
	assert_int_equal(ledger_service_entries(&fx->svc, "bad", 5, 0, &p, &fx->err), HEX_INVALID);
	assert_string_equal(fx->err.field, "user_id");
	assert_int_equal(ledger_service_balances(&fx->svc, "bad", NULL, &fx->err), HEX_INVALID);
}

static void verify_finds_a_tampered_balance(void **state)
{
	struct fixture *fx = *state;
	top_up(fx, PAYMENT, USER_A, 1000);
	verify_ok(fx);
	fx->repo.accounts[1].balance += 5; /* the wallet, behind the ledger's back */
	struct ledger_verify_report r;
	assert_int_equal(ledger_service_verify(&fx->svc, &r, &fx->err), HEX_OK);
	assert_false(r.ok);
	assert_int_equal(r.accounts_checked, 2);
	assert_int_equal(r.nmismatches, 1);
	assert_string_equal(r.mismatches[0].account_id, fx->repo.accounts[1].id);
	assert_int_equal(r.mismatches[0].balance, 1005);
	assert_int_equal(r.mismatches[0].entries_sum, 1000);
	assert_int_equal(r.nunbalanced, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(top_up_moves_clearing_to_wallet_once, setup),
	    cmocka_unit_test_setup(post_reports_duplicates, setup),
	    cmocka_unit_test_setup(post_refuses_what_the_rules_refuse_without_storing, setup),
	    cmocka_unit_test_setup(membership_moves_clearing_to_revenue, setup),
	    cmocka_unit_test_setup(refund_reverses_the_original_once, setup),
	    cmocka_unit_test_setup(refund_of_spent_money_is_insufficient_funds, setup),
	    cmocka_unit_test_setup(transfer_moves_between_wallets_idempotently, setup),
	    cmocka_unit_test_setup(transfer_overdraft_is_insufficient_funds, setup),
	    cmocka_unit_test_setup(transfer_input_errors, setup),
	    cmocka_unit_test_setup(storage_failures_are_mapped, setup),
	    cmocka_unit_test_setup(entries_page_newest_first, setup),
	    cmocka_unit_test_setup(verify_finds_a_tampered_balance, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * pg_ledger_repo against a real PostgreSQL, alone and under the ledger service: the
 * schema's own guards (balanced at commit, append-only, no negative wallet, balances only
 * through entries), idempotent posts, concurrent opposite transfers, and verify().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/postgres/pg_conn.h"
#include "adapters/postgres/pg_ledger_repo.h"
#include "core/ledger_service.h"
#include "support/pg_testdb.h"

#define T0       INT64_C(1764439200123456) /* 2025-11-29T18:00:00.123456Z */
#define USER_A   "00000000-0000-4000-8000-00000000000a"
#define USER_B   "00000000-0000-4000-8000-00000000000b"
#define PAYMENT  "00000000-0000-4000-8000-000000000101"
#define PAYMENT2 "00000000-0000-4000-8000-000000000102"
#define ROUNDS   200

static atomic_int id_counter;
static atomic_llong clock_us;

static void test_new_id(void *self, char out[HEX_ID_LEN + 1])
{
	unsigned n = (unsigned)atomic_fetch_add(&id_counter, 1) + 1;
	snprintf(out, HEX_ID_LEN + 1, "%08x-0000-4000-8000-%012x", n * 2654435761u, n);
}

static const struct id_source_ops test_ids_ops = {.new_id = test_new_id};

static int64_t test_now_us(void *self)
{
	return atomic_fetch_add(&clock_us, 1000);
}

static const struct clock_ops test_clock_ops = {.now_us = test_now_us};

static struct pg_testdb db;
static struct pg_conn *conn, *conn2;
static struct ledger_service svc, svc2;
static PGconn *raw; /* for the SQL a user of psql could type */

static struct pg_conn *open_conn(void)
{
	struct hex_err err = {0};
	struct pg_conn *c = pg_conn_open(db.conninfo, &err);
	if (c == NULL)
		fail_msg("%s", err.message);
	return c;
}

static struct ledger_service service_on(struct pg_conn *c)
{
	return (struct ledger_service){.repo = pg_ledger_repo_port(c),
	                               .clock = {.ops = &test_clock_ops},
	                               .ids = {.ops = &test_ids_ops}};
}

static void quiet(void *arg, const char *message)
{
}

static int group_setup(void **state)
{
	pg_testdb_create_migrated(&db);
	conn = open_conn();
	conn2 = open_conn();
	svc = service_on(conn);
	svc2 = service_on(conn2);
	struct hex_err err = {0};
	assert_int_equal(pg_conn_prepare_all(conn, &err), HEX_OK);
	assert_int_equal(pg_conn_prepare_all(conn2, &err), HEX_OK);
	raw = PQconnectdb(db.conninfo);
	assert_int_equal(PQstatus(raw), CONNECTION_OK);
	PQsetNoticeProcessor(raw, quiet, NULL);
	return 0;
}

static int group_teardown(void **state)
{
	PQfinish(raw);
	pg_conn_free(conn);
	pg_conn_free(conn2);
	pg_testdb_drop(&db);
	return 0;
}

/* The books are append-only, so each test gets them empty through TRUNCATE. */
static int setup(void **state)
{
	pg_testdb_exec(&db, "TRUNCATE entries, journal_transactions, accounts RESTART IDENTITY");
	atomic_store(&clock_us, T0);
	return 0;
}

/* ---- helpers ---- */

/* Runs sql on the raw session; true if the server accepted all of it. */
static bool raw_ok(const char *sql)
{
	PGresult *r = PQexec(raw, sql);
	ExecStatusType s = PQresultStatus(r);
	PQclear(r);
	bool ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
	if (!ok) {
		PGresult *rb = PQexec(raw, "ROLLBACK");
		PQclear(rb);
	}
	return ok;
}

static long long scalar(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static long long scalar(const char *fmt, ...)
{
	char sql[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof sql, fmt, ap);
	va_end(ap);
	return pg_testdb_scalar(&db, sql);
}

static int64_t wallet(const char *user)
{
	struct ledger_balances b;
	struct hex_err err = {0};
	assert_int_equal(ledger_service_balances(&svc, user, &b, &err), HEX_OK);
	for (int i = 0; i < b.n; i++)
		if (strcmp(b.wallets[i].ref.currency, "eur") == 0)
			return b.wallets[i].balance;
	return -1;
}

static void top_up(const char *payment, const char *user, int64_t amount)
{
	struct ledger_txn t;
	struct hex_err err = {0};
	assert_int_equal(ledger_service_top_up(&svc, payment, user, amount, "eur", &t, &err),
	                 HEX_OK);
}

static void assert_books_ok(void)
{
	struct ledger_verify_report r;
	struct hex_err err = {0};
	assert_int_equal(ledger_service_verify(&svc, &r, &err), HEX_OK);
	assert_true(r.ok);
	assert_int_equal(r.nmismatches, 0);
	assert_int_equal(r.nunbalanced, 0);
	assert_int_equal(scalar("SELECT coalesce(sum(amount), 0) FROM entries"), 0);
}

/* Two accounts and one balanced transaction of 5 made with raw SQL. */
static void raw_fixture(void)
{
	assert_true(raw_ok("INSERT INTO accounts (id, kind, currency, allow_negative) VALUES "
	                   "('00000000-0000-4000-8000-0000000000c1', 'stripe_clearing', 'eur', "
	                   "true)"));
	assert_true(raw_ok("INSERT INTO accounts (id, kind, owner_id, currency, allow_negative) "
	                   "VALUES ('00000000-0000-4000-8000-0000000000c2', 'wallet', '" USER_A
	                   "', 'eur', false)"));
	assert_true(raw_ok(
	    "BEGIN; INSERT INTO journal_transactions (id, idempotency_key, reference) VALUES "
	    "('00000000-0000-4000-8000-0000000000d1', 'raw:1', 'raw:1'); "
	    "INSERT INTO entries (transaction_id, account_id, amount, currency) VALUES "
	    "('00000000-0000-4000-8000-0000000000d1', '00000000-0000-4000-8000-0000000000c1', -5, "
	    "'eur'), ('00000000-0000-4000-8000-0000000000d1', "
	    "'00000000-0000-4000-8000-0000000000c2', 5, 'eur'); COMMIT"));
}

/* ---- the schema's guards ---- */

static void test_unbalanced_transactions_are_refused_at_commit(void **state)
{
	raw_fixture();
	assert_int_equal(scalar("SELECT balance FROM accounts WHERE kind = 'wallet'"), 5);
	/* Sums to 1, not 0. */
	assert_false(raw_ok(
	    "BEGIN; INSERT INTO journal_transactions (id, idempotency_key, reference) VALUES "
	    "('00000000-0000-4000-8000-0000000000d2', 'raw:2', 'raw:2'); "
	    "INSERT INTO entries (transaction_id, account_id, amount, currency) VALUES "
	    "('00000000-0000-4000-8000-0000000000d2', '00000000-0000-4000-8000-0000000000c1', -4, "
	    "'eur'), ('00000000-0000-4000-8000-0000000000d2', "
	    "'00000000-0000-4000-8000-0000000000c2', 5, 'eur'); COMMIT"));
	/* A single entry, even in autocommit (the check is deferred to the commit). */
	assert_false(raw_ok(
	    "BEGIN; INSERT INTO journal_transactions (id, idempotency_key, reference) VALUES "
	    "('00000000-0000-4000-8000-0000000000d3', 'raw:3', 'raw:3'); COMMIT"));
	assert_false(raw_ok("INSERT INTO entries (transaction_id, account_id, amount, currency) "
	                    "VALUES ('00000000-0000-4000-8000-0000000000d1', "
	                    "'00000000-0000-4000-8000-0000000000c1', -1, 'eur')"));
	/* Zero amounts and an entry in another currency than its account's. */
	assert_false(raw_ok(
	    "BEGIN; INSERT INTO journal_transactions (id, idempotency_key, reference) VALUES "
	    "('00000000-0000-4000-8000-0000000000d4', 'raw:4', 'raw:4'); "
	    "INSERT INTO entries (transaction_id, account_id, amount, currency) VALUES "
	    "('00000000-0000-4000-8000-0000000000d4', '00000000-0000-4000-8000-0000000000c1', 0, "
	    "'eur'), ('00000000-0000-4000-8000-0000000000d4', "
	    "'00000000-0000-4000-8000-0000000000c2', 0, 'eur'); COMMIT"));
	assert_false(raw_ok(
	    "BEGIN; INSERT INTO journal_transactions (id, idempotency_key, reference) VALUES "
	    "('00000000-0000-4000-8000-0000000000d5', 'raw:5', 'raw:5'); "
	    "INSERT INTO entries (transaction_id, account_id, amount, currency) VALUES "
	    "('00000000-0000-4000-8000-0000000000d5', '00000000-0000-4000-8000-0000000000c1', -5, "
	    "'usd'), ('00000000-0000-4000-8000-0000000000d5', "
	    "'00000000-0000-4000-8000-0000000000c2', 5, 'usd'); COMMIT"));
	assert_int_equal(scalar("SELECT count(*) FROM journal_transactions"), 1);
	assert_int_equal(scalar("SELECT count(*) FROM entries"), 2);
	assert_int_equal(scalar("SELECT balance FROM accounts WHERE kind = 'wallet'"), 5);
	assert_books_ok();
}

static void test_entries_and_transactions_are_append_only(void **state)
{
	raw_fixture();
	assert_false(raw_ok("UPDATE entries SET amount = amount * 2"));
	assert_false(raw_ok("DELETE FROM entries"));
	assert_false(raw_ok("UPDATE journal_transactions SET reference = 'other'"));
	assert_false(raw_ok("DELETE FROM journal_transactions"));
	assert_false(raw_ok("UPDATE accounts SET balance = balance + 1"));
	assert_true(raw_ok("UPDATE accounts SET created_at = created_at")); /* not a balance */
	assert_int_equal(scalar("SELECT sum(abs(amount)) FROM entries"), 10);
	assert_int_equal(scalar("SELECT count(*) FROM journal_transactions WHERE reference = "
	                        "'raw:1'"),
	                 1);
	assert_int_equal(scalar("SELECT balance FROM accounts WHERE kind = 'wallet'"), 5);
}

static void test_a_wallet_cannot_go_negative(void **state)
{
	raw_fixture();
	/* Raw SQL: balanced, but takes the wallet to -1. */
	assert_false(raw_ok(
	    "BEGIN; INSERT INTO journal_transactions (id, idempotency_key, reference) VALUES "
	    "('00000000-0000-4000-8000-0000000000d6', 'raw:6', 'raw:6'); "
	    "INSERT INTO entries (transaction_id, account_id, amount, currency) VALUES "
	    "('00000000-0000-4000-8000-0000000000d6', '00000000-0000-4000-8000-0000000000c1', 6, "
	    "'eur'), ('00000000-0000-4000-8000-0000000000d6', "
	    "'00000000-0000-4000-8000-0000000000c2', -6, 'eur'); COMMIT"));
	/* A wallet that claims it may go negative is refused outright. */
	assert_false(raw_ok("INSERT INTO accounts (kind, owner_id, currency, allow_negative) "
	                    "VALUES ('wallet', '" USER_B "', 'eur', true)"));
	assert_false(raw_ok("INSERT INTO accounts (kind, currency, allow_negative) "
	                    "VALUES ('wallet', 'eur', false)"));

	/* Through the service: HEX_CONFLICT insufficient_funds, nothing written. */
	struct ledger_txn t;
	struct hex_err err = {0};
	assert_int_equal(
	    ledger_service_transfer(&svc, USER_A, USER_B, 6, "eur", "k1", &t, NULL, &err),
	    HEX_CONFLICT);
	assert_string_equal(err.code, "insufficient_funds");
	assert_int_equal(scalar("SELECT count(*) FROM journal_transactions"), 1);
	assert_int_equal(
	    ledger_service_transfer(&svc, USER_A, USER_B, 5, "eur", "k1", &t, NULL, &err), HEX_OK);
	assert_int_equal(wallet(USER_A), 0);
	assert_int_equal(wallet(USER_B), 5);
	/* The clearing account is a system account: it may be (and is) negative. */
	assert_int_equal(scalar("SELECT balance FROM accounts WHERE kind = 'stripe_clearing'"), -5);
	assert_books_ok();
}

/* ---- the repository and the service ---- */

static void test_top_up_round_trip_and_same_key_moves_once(void **state)
{
	struct ledger_txn t, t2;
	struct hex_err err = {0};
	assert_int_equal(ledger_service_top_up(&svc, PAYMENT, USER_A, 1500, "eur", &t, &err),
	                 HEX_OK);
	assert_int_equal(t.n, 2);
	assert_string_equal(t.reference, "payment:" PAYMENT);
	assert_string_equal(t.idempotency_key, "payment:" PAYMENT);
	assert_int_equal(t.created_at_us, T0);
	assert_int_equal(t.entries[0].account.kind, LEDGER_STRIPE_CLEARING);
	assert_int_equal(t.entries[0].amount, -1500);
	assert_string_equal(t.entries[0].account.owner_id, "");
	assert_int_equal(t.entries[1].account.kind, LEDGER_WALLET);
	assert_string_equal(t.entries[1].account.owner_id, USER_A);
	assert_string_equal(t.entries[1].account.currency, "eur");
	assert_int_equal(t.entries[1].amount, 1500);
	assert_true(t.entries[1].id > t.entries[0].id);

	/* Same key again, from the other connection: nothing moves, the first comes back. */
	bool dup = false;
	struct ledger_txn_request again;
	memset(&again, 0, sizeof again);
	strcpy(again.idempotency_key, "payment:" PAYMENT);
	strcpy(again.reference, "payment:" PAYMENT);
	ledger_txn_add(&again, LEDGER_STRIPE_CLEARING, NULL, "eur", -99);
	ledger_txn_add(&again, LEDGER_WALLET, USER_A, "eur", 99);
	assert_int_equal(ledger_service_post(&svc2, &again, &t2, &dup, &err), HEX_OK);
	assert_true(dup);
	assert_string_equal(t2.id, t.id);
	assert_int_equal(t2.entries[1].amount, 1500);
	assert_int_equal(wallet(USER_A), 1500);
	assert_int_equal(scalar("SELECT count(*) FROM journal_transactions"), 1);
	assert_int_equal(scalar("SELECT count(*) FROM entries"), 2);
	assert_int_equal(scalar("SELECT count(*) FROM accounts"), 2);

	/* A second payment reuses the same two accounts. */
	top_up(PAYMENT2, USER_A, 500);
	assert_int_equal(wallet(USER_A), 2000);
	assert_int_equal(scalar("SELECT count(*) FROM accounts"), 2);
	assert_books_ok();
}

static void test_membership_and_refund(void **state)
{
	struct ledger_txn t;
	struct hex_err err = {0};
	assert_int_equal(ledger_service_membership(&svc, PAYMENT, 999, "eur", &t, &err), HEX_OK);
	assert_int_equal(scalar("SELECT balance FROM accounts WHERE kind = 'membership_revenue'"),
	                 999);
	assert_int_equal(ledger_service_refund(&svc, PAYMENT2, "payment:" PAYMENT, &t, &err),
	                 HEX_OK);
	assert_string_equal(t.reference, "refund:" PAYMENT2);
	assert_int_equal(t.entries[1].account.kind, LEDGER_MEMBERSHIP_REVENUE);
	assert_int_equal(t.entries[1].amount, -999);
	assert_int_equal(ledger_service_refund(&svc, PAYMENT2, "payment:" PAYMENT, &t, &err),
	                 HEX_OK);
	assert_int_equal(scalar("SELECT balance FROM accounts WHERE kind = 'membership_revenue'"),
	                 0);
	assert_int_equal(scalar("SELECT count(*) FROM journal_transactions"), 2);
	assert_int_equal(ledger_service_refund(&svc, PAYMENT2, "payment:none", &t, &err),
	                 HEX_NOT_FOUND);
	assert_books_ok();
}

static void test_balances_and_entries_pages(void **state)
{
	struct hex_err err = {0};
	top_up(PAYMENT, USER_A, 1000);
	struct ledger_txn t;
	for (int i = 0; i < 5; i++) {
		char key[8];
		snprintf(key, sizeof key, "t%d", i);
		assert_int_equal(ledger_service_transfer(&svc, USER_A, USER_B, 10 + i, "eur", key,
		                                         &t, NULL, &err),
		                 HEX_OK);
	}
	assert_int_equal(ledger_service_top_up(&svc, PAYMENT2, USER_A, 7, "usd", &t, &err), HEX_OK);
	struct ledger_balances b;
	assert_int_equal(ledger_service_balances(&svc, USER_A, &b, &err), HEX_OK);
	assert_int_equal(b.n, 2);
	assert_string_equal(b.wallets[0].ref.currency, "eur");
	assert_int_equal(b.wallets[0].balance, 1000 - 60);
	assert_false(b.wallets[0].allow_negative);
	assert_string_equal(b.wallets[1].ref.currency, "usd");
	assert_int_equal(b.wallets[1].balance, 7);
	/* updated_at is the time of each wallet's newest entry. */
	assert_int_equal(b.wallets[1].updated_at_us, t.created_at_us);
	assert_true(b.wallets[0].updated_at_us > 0);
	assert_true(b.wallets[0].updated_at_us <= b.wallets[1].updated_at_us);
	assert_int_equal(
	    ledger_service_balances(&svc, "00000000-0000-4000-8000-000000000999", &b, &err),
	    HEX_OK);
	assert_int_equal(b.n, 0);

	struct ledger_entry_page p;
	int64_t seen = 0;
	int64_t before = 0;
	int pages = 0;
	int64_t expect[] = {7, -14, -13, -12, -11, -10, 1000};
	do {
		assert_int_equal(ledger_service_entries(&svc, USER_A, 3, before, &p, &err), HEX_OK);
		for (int i = 0; i < p.count; i++) {
			assert_int_equal(p.items[i].amount, expect[seen]);
			assert_string_equal(p.items[i].account.owner_id, USER_A);
			if (before > 0)
				assert_true(p.items[i].id < before);
			seen++;
		}
		before = p.items[p.count - 1].id;
		pages++;
	} while (p.has_more);
	assert_int_equal(seen, 7);
	assert_int_equal(pages, 3);
	assert_int_equal(ledger_service_entries(&svc, USER_B, 100, 0, &p, &err), HEX_OK);
	assert_int_equal(p.count, 5);
	assert_false(p.has_more);
	assert_true(strncmp(p.items[0].reference, "transfer:", 9) == 0);
	assert_books_ok();
}

/* ---- concurrency ---- */

struct mover {
	struct ledger_service *svc;
	const char *from, *to;
	int failures;
	char prefix;
};

static void *move_many(void *arg)
{
	struct mover *m = arg;
	for (int i = 0; i < ROUNDS; i++) {
		char key[16];
		snprintf(key, sizeof key, "%c%d", m->prefix, i);
		struct ledger_txn t;
		struct hex_err err = {0};
		if (ledger_service_transfer(m->svc, m->from, m->to, 1 + i % 7, "eur", key, &t, NULL,
		                            &err) != HEX_OK)
			m->failures++;
	}
	return NULL;
}

static void test_opposite_concurrent_transfers_never_deadlock(void **state)
{
	top_up(PAYMENT, USER_A, 100000);
	top_up(PAYMENT2, USER_B, 100000);
	struct mover ab = {.svc = &svc, .from = USER_A, .to = USER_B, .prefix = 'a'};
	struct mover ba = {.svc = &svc2, .from = USER_B, .to = USER_A, .prefix = 'b'};
	pthread_t t1, t2;
	assert_int_equal(pthread_create(&t1, NULL, move_many, &ab), 0);
	assert_int_equal(pthread_create(&t2, NULL, move_many, &ba), 0);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	/* A deadlock would make one side fail (PostgreSQL aborts one of the two). */
	assert_int_equal(ab.failures, 0);
	assert_int_equal(ba.failures, 0);
	assert_int_equal(scalar("SELECT count(*) FROM journal_transactions"), 2 + 2 * ROUNDS);
	/* Both moved the same amounts: each wallet is back where it started. */
	assert_int_equal(wallet(USER_A), 100000);
	assert_int_equal(wallet(USER_B), 100000);
	assert_books_ok();
}

struct same_key {
	struct ledger_service *svc;
	const char *key;
	enum hex_status st;
};

static void *transfer_once(void *arg)
{
	struct same_key *s = arg;
	struct ledger_txn t;
	struct hex_err err = {0};
	s->st = ledger_service_transfer(s->svc, USER_A, USER_B, 10, "eur", s->key, &t, NULL, &err);
	return NULL;
}

static void test_same_key_from_two_threads_moves_once(void **state)
{
	top_up(PAYMENT, USER_A, 100);
	for (int round = 0; round < 5; round++) {
		char key[16];
		snprintf(key, sizeof key, "round-%d", round);
		struct same_key a = {.svc = &svc, .key = key}, b = {.svc = &svc2, .key = key};
		pthread_t t1, t2;
		assert_int_equal(pthread_create(&t1, NULL, transfer_once, &a), 0);
		assert_int_equal(pthread_create(&t2, NULL, transfer_once, &b), 0);
		pthread_join(t1, NULL);
		pthread_join(t2, NULL);
		assert_int_equal(a.st, HEX_OK);
		assert_int_equal(b.st, HEX_OK);
	}
	/* Each round's key moved money once: 5 x 10, not 10 x 10. */
	assert_int_equal(wallet(USER_A), 50);
	assert_int_equal(wallet(USER_B), 50);
	assert_int_equal(scalar("SELECT count(*) FROM journal_transactions"), 6);
	assert_books_ok();
}

/* ---- verify ---- */

static void test_verify_finds_a_tampered_balance_and_entry(void **state)
{
	top_up(PAYMENT, USER_A, 1000);
	assert_books_ok();
	assert_true(raw_ok("ALTER TABLE accounts DISABLE TRIGGER accounts_balance_guard; "
	                   "UPDATE accounts SET balance = balance + 5 WHERE kind = 'wallet'; "
	                   "ALTER TABLE accounts ENABLE TRIGGER accounts_balance_guard"));
	struct ledger_verify_report r;
	struct hex_err err = {0};
	assert_int_equal(ledger_service_verify(&svc, &r, &err), HEX_OK);
	assert_false(r.ok);
	assert_int_equal(r.accounts_checked, 2);
	assert_int_equal(r.nmismatches, 1);
	char wallet_id[HEX_ID_LEN + 1];
	struct ledger_balances b;
	assert_int_equal(ledger_service_balances(&svc, USER_A, &b, &err), HEX_OK);
	strcpy(wallet_id, b.wallets[0].id);
	assert_string_equal(r.mismatches[0].account_id, wallet_id);
	assert_int_equal(r.mismatches[0].balance, 1005);
	assert_int_equal(r.mismatches[0].entries_sum, 1000);
	assert_int_equal(r.nunbalanced, 0);

	/* An entry changed behind the triggers' back: two accounts off and eur unbalanced. */
	assert_true(raw_ok("ALTER TABLE entries DISABLE TRIGGER entries_immutable; "
	                   "UPDATE entries SET amount = -990 WHERE amount = -1000; "
	                   "ALTER TABLE entries ENABLE TRIGGER entries_immutable"));
	assert_int_equal(ledger_service_verify(&svc, &r, &err), HEX_OK);
	assert_false(r.ok);
	assert_int_equal(r.nmismatches, 2);
	assert_int_equal(r.nunbalanced, 1);
	assert_string_equal(r.unbalanced[0].currency, "eur");
	assert_int_equal(r.unbalanced[0].sum, 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_unbalanced_transactions_are_refused_at_commit, setup),
	    cmocka_unit_test_setup(test_entries_and_transactions_are_append_only, setup),
	    cmocka_unit_test_setup(test_a_wallet_cannot_go_negative, setup),
	    cmocka_unit_test_setup(test_top_up_round_trip_and_same_key_moves_once, setup),
	    cmocka_unit_test_setup(test_membership_and_refund, setup),
	    cmocka_unit_test_setup(test_balances_and_entries_pages, setup),
	    cmocka_unit_test_setup(test_opposite_concurrent_transfers_never_deadlock, setup),
	    cmocka_unit_test_setup(test_same_key_from_two_threads_moves_once, setup),
	    cmocka_unit_test_setup(test_verify_finds_a_tampered_balance_and_entry, setup),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

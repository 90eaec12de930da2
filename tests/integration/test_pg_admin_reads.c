/*
 * test_pg_admin_reads: the repository reads the admin port added, on a real PostgreSQL:
 * users searched by part of their email (ILIKE with the text's own '%', '_' and '\' taken
 * literally) and listed newest first; every ledger account (system accounts first) and
 * one account's entries, page by page; payments stuck unsettled (the SQL's statuses held
 * to payment_status_unsettled()) and the Stripe events of one payment.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/postgres/pg_conn.h"
#include "adapters/postgres/pg_ledger_repo.h"
#include "adapters/postgres/pg_payment_repo.h"
#include "adapters/postgres/pg_user_repo.h"
#include "core/ledger_service.h"
#include "core/xmalloc.h"
#include "support/pg_testdb.h"

#define T0     INT64_C(1764439200000000) /* 2025-11-29T18:00:00Z */
#define MIN    INT64_C(60000000)
#define USER_A "00000000-0000-4000-8000-00000000000a"
#define USER_B "00000000-0000-4000-8000-00000000000b"

static struct pg_testdb db;
static struct pg_conn *conn;
static struct user_repo users;
static struct ledger_repo ledger;
static struct payment_repo payments;
static int id_counter;
static int64_t clock_us;

static void test_new_id(void *self, char out[HEX_ID_LEN + 1])
{
	unsigned n = (unsigned)++id_counter;
	snprintf(out, HEX_ID_LEN + 1, "%08x-0000-4000-8000-%012x", n * 2654435761u, n);
}

static int64_t test_now_us(void *self)
{
	return clock_us += 1000;
}

static const struct id_source_ops test_ids_ops = {.new_id = test_new_id};
static const struct clock_ops test_clock_ops = {.now_us = test_now_us};

static int group_setup(void **state)
{
	pg_testdb_create_migrated(&db);
	struct hex_err err = {0};
	conn = pg_conn_open(db.conninfo, &err);
	if (conn == NULL)
		fail_msg("%s", err.message);
	users = pg_user_repo_port(conn);
	ledger = pg_ledger_repo_port(conn);
	payments = pg_payment_repo_port(conn);
	assert_int_equal(pg_conn_prepare_all(conn, &err), HEX_OK);
	return 0;
}

static int group_teardown(void **state)
{
	pg_conn_free(conn);
	pg_testdb_drop(&db);
	return 0;
}

static void exec(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void exec(const char *fmt, ...)
{
	char sql[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof sql, fmt, ap);
	va_end(ap);
	pg_testdb_exec(&db, sql);
}

/* ---- users ---- */

static void add_user(int n, const char *email)
{
	exec("INSERT INTO users (id, email, password_hash, created_at, updated_at) VALUES "
	     "('00000000-0000-4000-8000-%012d', '%s', 'h', "
	     "'epoch'::timestamptz + %lld * interval '1 microsecond', now())",
	     n, email, (long long)(T0 + n * MIN));
}

/* Every page of f joined as "email email | email ...". */
static void walk_users(struct user_filter f, char *out, size_t n)
{
	struct user_page *page = xcalloc(1, sizeof *page);
	struct user_cursor after;
	out[0] = '\0';
	for (int pages = 0; pages < 20; pages++) {
		assert_int_equal(users.ops->list(users.self, &f, page), HEX_OK);
		size_t len = strlen(out);
		snprintf(out + len, n - len, "%s", len > 0 ? " |" : "");
		for (int i = 0; i < page->count; i++) {
			len = strlen(out);
			snprintf(out + len, n - len, "%s%s", len > 0 ? " " : "",
			         page->items[i].email);
		}
		if (!page->has_more)
			break;
		after.created_at_us = page->items[page->count - 1].created_at_us;
		memcpy(after.id, page->items[page->count - 1].id, sizeof after.id);
		f.after = &after;
	}
	free(page);
}

static void test_users_search_and_newest_first(void **state)
{
	pg_testdb_exec(&db, "TRUNCATE users CASCADE");
	add_user(1, "ann@example.com");
	add_user(2, "bob_x@example.org");
	add_user(3, "bobax@example.org");
	add_user(4, "100%@example.com");
	add_user(5, "a0b@example.com");
	add_user(6, "joanne@example.net");
	add_user(7, "back\\slash@example.com");
	char got[1024];

	struct user_filter f = {.membership = -1, .limit = 10, .email_contains = "ANN"};
	walk_users(f, got, sizeof got);
	assert_string_equal(got, "ann@example.com joanne@example.net");
	f.newest_first = true;
	walk_users(f, got, sizeof got);
	assert_string_equal(got, "joanne@example.net ann@example.com");

	/* The text's own wildcards are plain characters. */
	f.email_contains = "b_x";
	walk_users(f, got, sizeof got);
	assert_string_equal(got, "bob_x@example.org");
	f.email_contains = "0%";
	walk_users(f, got, sizeof got);
	assert_string_equal(got, "100%@example.com");
	f.email_contains = "%";
	walk_users(f, got, sizeof got);
	assert_string_equal(got, "100%@example.com");
	f.email_contains = "\\";
	walk_users(f, got, sizeof got);
	assert_string_equal(got, "back\\slash@example.com");
	f.email_contains = "_";
	walk_users(f, got, sizeof got);
	assert_string_equal(got, "bob_x@example.org");

	/* Paging through a search, both ways. */
	f = (struct user_filter){
	    .membership = -1, .limit = 2, .email_contains = "EXAMPLE.", .newest_first = true};
	walk_users(f, got, sizeof got);
	assert_string_equal(got, "back\\slash@example.com joanne@example.net | a0b@example.com "
	                         "100%@example.com | bobax@example.org bob_x@example.org | "
	                         "ann@example.com");
	f.newest_first = false;
	f.limit = 3;
	walk_users(f, got, sizeof got);
	assert_string_equal(got, "ann@example.com bob_x@example.org bobax@example.org | "
	                         "100%@example.com a0b@example.com joanne@example.net | "
	                         "back\\slash@example.com");

	/* Every user, newest first, in pages. */
	f = (struct user_filter){.membership = -1, .limit = 3, .newest_first = true};
	walk_users(f, got, sizeof got);
	assert_string_equal(got, "back\\slash@example.com joanne@example.net a0b@example.com | "
	                         "100%@example.com bobax@example.org bob_x@example.org | "
	                         "ann@example.com");
	/* With a membership filter too. */
	exec("UPDATE users SET membership = 'member' WHERE email IN ('ann@example.com', "
	     "'a0b@example.com')");
	f = (struct user_filter){.membership = MEMBERSHIP_MEMBER, .limit = 1, .newest_first = true};
	walk_users(f, got, sizeof got);
	assert_string_equal(got, "a0b@example.com | ann@example.com");

	/* What the repository refuses itself. */
	struct user_page *page = xcalloc(1, sizeof *page);
	const struct user_filter bad[] = {
	    {.membership = -1, .limit = 5, .email_contains = ""},
	    {.membership = -1, .limit = 5, .email_contains = "a", .email = "ann@example.com"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(users.ops->list(users.self, &bad[i], page), HEX_INVALID);
	char too_long[HEX_EMAIL_MAX + 2];
	memset(too_long, 'a', sizeof too_long - 1);
	too_long[sizeof too_long - 1] = '\0';
	f = (struct user_filter){.membership = -1, .limit = 5, .email_contains = too_long};
	assert_int_equal(users.ops->list(users.self, &f, page), HEX_INVALID);
	/* The longest search text, all of it wildcards to escape, still fits. */
	memset(too_long, '%', HEX_EMAIL_MAX);
	too_long[HEX_EMAIL_MAX] = '\0';
	assert_int_equal(users.ops->list(users.self, &f, page), HEX_OK);
	assert_int_equal(page->count, 0);
	free(page);
}

/* ---- ledger ---- */

static struct ledger_service ledger_service(void)
{
	return (struct ledger_service){
	    .repo = ledger, .clock = {&test_clock_ops, NULL}, .ids = {&test_ids_ops, NULL}};
}

static void payment_id(int n, char out[HEX_ID_LEN + 1])
{
	snprintf(out, HEX_ID_LEN + 1, "00000000-0000-4000-8000-%012d", 100 + n);
}

static void books(void)
{
	pg_testdb_exec(&db, "TRUNCATE entries, journal_transactions, accounts RESTART IDENTITY");
	struct ledger_service s = ledger_service();
	struct ledger_txn t;
	struct hex_err err = {0};
	char p[HEX_ID_LEN + 1];
	payment_id(1, p);
	assert_int_equal(ledger_service_top_up(&s, p, USER_B, 500, "usd", &t, &err), HEX_OK);
	payment_id(2, p);
	assert_int_equal(ledger_service_top_up(&s, p, USER_A, 300, "usd", &t, &err), HEX_OK);
	payment_id(3, p);
	assert_int_equal(ledger_service_top_up(&s, p, USER_B, 700, "eur", &t, &err), HEX_OK);
	payment_id(4, p);
	assert_int_equal(ledger_service_membership(&s, p, 999, "usd", &t, &err), HEX_OK);
	payment_id(5, p);
	assert_int_equal(ledger_service_top_up(&s, p, USER_A, 50, "usd", &t, &err), HEX_OK);
}

static void test_accounts_system_first_page_by_page(void **state)
{
	books();
	struct ledger_account_page *page = xcalloc(1, sizeof *page);
	char seen[1024] = "", after[HEX_ID_LEN + 1] = "";
	int pages = 0;
	do {
		assert_int_equal(ledger.ops->accounts(ledger.self, 2, after, page), HEX_OK);
		for (int i = 0; i < page->count; i++) {
			const struct ledger_account *a = &page->items[i];
			size_t len = strlen(seen);
			snprintf(seen + len, sizeof seen - len, "%s%s:%s:%s:%lld",
			         len > 0 ? " " : "", ledger_kind_name(a->ref.kind),
			         a->ref.owner_id[0] ? a->ref.owner_id + 34 : "-", a->ref.currency,
			         (long long)a->balance);
		}
		if (page->count > 0)
			memcpy(after, page->items[page->count - 1].id, sizeof after);
		pages++;
	} while (page->has_more);
	assert_int_equal(pages, 3);
	assert_string_equal(seen, "membership_revenue:-:usd:999 stripe_clearing:-:eur:-700 "
	                          "stripe_clearing:-:usd:-1849 wallet:0a:usd:350 wallet:0b:eur:700 "
	                          "wallet:0b:usd:500");
	/* After the last account: an empty last page. */
	assert_int_equal(ledger.ops->accounts(ledger.self, 5, after, page), HEX_OK);
	assert_int_equal(page->count, 0);
	assert_false(page->has_more);
	/* A cursor that names no account, or is no id. */
	assert_int_equal(ledger.ops->accounts(ledger.self, 5, USER_A, page), HEX_NOT_FOUND);
	assert_int_equal(ledger.ops->accounts(ledger.self, 5, "x", page), HEX_NOT_FOUND);
	assert_int_equal(ledger.ops->accounts(ledger.self, 0, "", page), HEX_INVALID);
	/* The service maps an unknown cursor to a bad one. */
	struct ledger_service s = ledger_service();
	struct hex_err err = {0};
	assert_int_equal(ledger_service_accounts(&s, 5, USER_A, page, &err), HEX_INVALID);
	assert_string_equal(err.field, "cursor");
	free(page);
}

/* The id of the account of kind/owner/currency. */
static void account_of(const char *kind, const char *owner, const char *currency,
                       char out[HEX_ID_LEN + 1])
{
	struct ledger_account_page *page = xcalloc(1, sizeof *page);
	assert_int_equal(ledger.ops->accounts(ledger.self, HEX_LIST_MAX, "", page), HEX_OK);
	out[0] = '\0';
	for (int i = 0; i < page->count; i++)
		if (strcmp(ledger_kind_name(page->items[i].ref.kind), kind) == 0 &&
		    strcmp(page->items[i].ref.owner_id, owner) == 0 &&
		    strcmp(page->items[i].ref.currency, currency) == 0)
			memcpy(out, page->items[i].id, HEX_ID_LEN + 1);
	free(page);
	assert_true(out[0] != '\0');
}

static void test_entries_of_one_account_newest_first(void **state)
{
	books();
	char clearing[HEX_ID_LEN + 1], wallet[HEX_ID_LEN + 1];
	account_of("stripe_clearing", "", "usd", clearing);
	account_of("wallet", USER_A, "usd", wallet);
	struct ledger_entry_page *page = xcalloc(1, sizeof *page);
	/* Clearing in usd moved for payments 1, 2, 4 and 5: newest first, two by two. */
	assert_int_equal(ledger.ops->account_entries(ledger.self, clearing, 2, 0, page), HEX_OK);
	assert_int_equal(page->count, 2);
	assert_true(page->has_more);
	assert_true(page->items[0].id > page->items[1].id);
	assert_int_equal(page->items[0].amount, -50);
	assert_int_equal(page->items[1].amount, -999);
	assert_string_equal(page->items[1].account_id, clearing);
	assert_int_equal(page->items[1].account.kind, LEDGER_STRIPE_CLEARING);
	assert_memory_equal(page->items[1].reference, "payment:", 8);
	int64_t before = page->items[1].id;
	assert_int_equal(ledger.ops->account_entries(ledger.self, clearing, 2, before, page),
	                 HEX_OK);
	assert_int_equal(page->count, 2);
	assert_false(page->has_more);
	assert_int_equal(page->items[0].amount, -300);
	assert_int_equal(page->items[1].amount, -500);

	assert_int_equal(ledger.ops->account_entries(ledger.self, wallet, 10, 0, page), HEX_OK);
	assert_int_equal(page->count, 2);
	assert_int_equal(page->items[0].amount, 50);
	assert_int_equal(page->items[1].amount, 300);
	assert_string_equal(page->items[0].account.owner_id, USER_A);

	/* An account with no entries yet, and none at all. */
	exec("INSERT INTO accounts (id, kind, currency, allow_negative) VALUES "
	     "('00000000-0000-4000-8000-0000000000ee', 'refunds', 'usd', true)");
	assert_int_equal(ledger.ops->account_entries(
	                     ledger.self, "00000000-0000-4000-8000-0000000000EE", 10, 0, page),
	                 HEX_OK);
	assert_int_equal(page->count, 0);
	assert_int_equal(ledger.ops->account_entries(ledger.self, USER_B, 10, 0, page),
	                 HEX_NOT_FOUND);
	assert_int_equal(ledger.ops->account_entries(ledger.self, "nope", 10, 0, page),
	                 HEX_NOT_FOUND);
	assert_int_equal(ledger.ops->account_entries(ledger.self, wallet, 0, 0, page), HEX_INVALID);
	assert_int_equal(ledger.ops->account_entries(ledger.self, wallet, 5, -1, page),
	                 HEX_INVALID);
	free(page);
}

/* ---- payments ---- */

static void add_payment(int n, const char *status, int64_t created_us)
{
	exec("INSERT INTO payments (id, user_id, amount, currency, purpose, status, "
	     "stripe_idempotency_key, created_at, updated_at) VALUES "
	     "('00000000-0000-4000-8000-%012d', '%s', %d, 'usd', 'wallet_top_up', '%s', 'k%d', "
	     "'epoch'::timestamptz + %lld * interval '1 microsecond', now())",
	     200 + n, USER_A, 100 + n, status, n, (long long)created_us);
}

static void test_stuck_payments_oldest_first(void **state)
{
	pg_testdb_exec(&db, "TRUNCATE payments, stripe_events CASCADE");
	int64_t now = T0 + 60 * MIN;
	/* One payment of every status made 10 minutes ago, in reverse order of status. */
	for (int s = PAYMENT_REFUNDED; s >= PAYMENT_REQUIRES_PAYMENT_METHOD; s--)
		add_payment(s, payment_status_name((enum payment_status)s), now - 10 * MIN + s);
	add_payment(10, "processing", now - 1 * MIN);               /* too young */
	add_payment(11, "requires_payment_method", now - 20 * MIN); /* the oldest */
	struct payment_page *page = xcalloc(1, sizeof *page);
	assert_int_equal(payments.ops->stuck(payments.self, now - 5 * MIN, 100, page), HEX_OK);
	assert_false(page->has_more);
	/* Exactly the unsettled ones, whichever statuses the core calls so. */
	int want = 1;
	for (int s = PAYMENT_REQUIRES_PAYMENT_METHOD; s <= PAYMENT_REFUNDED; s++)
		want += payment_status_unsettled((enum payment_status)s);
	assert_int_equal(page->count, want);
	assert_string_equal(page->items[0].id, "00000000-0000-4000-8000-000000000211");
	for (int i = 0; i < page->count; i++) {
		assert_true(payment_status_unsettled(page->items[i].status));
		assert_true(page->items[i].created_at_us < now - 5 * MIN);
		if (i > 0)
			assert_true(page->items[i].created_at_us >=
			            page->items[i - 1].created_at_us);
	}
	assert_int_equal(payments.ops->stuck(payments.self, now - 5 * MIN, 1, page), HEX_OK);
	assert_int_equal(page->count, 1);
	assert_true(page->has_more);
	assert_int_equal(payments.ops->stuck(payments.self, now - 30 * MIN, 5, page), HEX_OK);
	assert_int_equal(page->count, 0);
	assert_int_equal(payments.ops->stuck(payments.self, now, 0, page), HEX_INVALID);
	assert_int_equal(payments.ops->stuck(payments.self, now, HEX_LIST_MAX + 1, page),
	                 HEX_INVALID);
	free(page);
}

static void add_event(const char *id, const char *payment, int64_t created_s, int64_t received_us)
{
	char pay[64];
	snprintf(pay, sizeof pay, payment != NULL ? "'%s'" : "NULL", payment);
	exec("INSERT INTO stripe_events (id, type, payment_id, created_at, received_at, payload) "
	     "VALUES ('%s', 'payment_intent.succeeded', %s, 'epoch'::timestamptz + %lld * interval "
	     "'1 second', 'epoch'::timestamptz + %lld * interval '1 microsecond', '{}')",
	     id, pay, (long long)created_s, (long long)received_us);
}

static void test_events_of_one_payment_oldest_first(void **state)
{
	pg_testdb_exec(&db, "TRUNCATE payments, stripe_events CASCADE");
	const char *p = "00000000-0000-4000-8000-000000000301";
	const char *q = "00000000-0000-4000-8000-000000000302";
	int64_t t = T0 / 1000000;
	add_event("evt_late", p, t + 30, T0 + 1);
	add_event("evt_first", p, t + 10, T0 + 3);
	add_event("evt_same_b", p, t + 20, T0 + 5);
	add_event("evt_same_a", p, t + 20, T0 + 4); /* same created: the earlier arrival first */
	add_event("evt_other", q, t, T0);
	add_event("evt_nobody", NULL, t, T0);
	struct payment_event_list *list = xcalloc(1, sizeof *list);
	assert_int_equal(payments.ops->events(payments.self, p, list), HEX_OK);
	assert_int_equal(list->count, 4);
	assert_false(list->has_more);
	assert_string_equal(list->items[0].id, "evt_first");
	assert_string_equal(list->items[1].id, "evt_same_a");
	assert_string_equal(list->items[2].id, "evt_same_b");
	assert_string_equal(list->items[3].id, "evt_late");
	assert_string_equal(list->items[0].type, "payment_intent.succeeded");
	assert_int_equal(list->items[0].created_at_us, (t + 10) * 1000000);
	assert_int_equal(list->items[0].received_at_us, T0 + 3);

	assert_int_equal(
	    payments.ops->events(payments.self, "00000000-0000-4000-8000-000000000303", list),
	    HEX_OK);
	assert_int_equal(list->count, 0);
	assert_int_equal(payments.ops->events(payments.self, "nope", list), HEX_OK);
	assert_int_equal(list->count, 0);

	/* More than fit: the oldest PAYMENT_EVENTS_MAX and has_more. */
	for (int i = 0; i <= PAYMENT_EVENTS_MAX; i++) {
		char id[32];
		snprintf(id, sizeof id, "evt_q%03d", i);
		add_event(id, q, t + 100 + i, T0);
	}
	assert_int_equal(payments.ops->events(payments.self, q, list), HEX_OK);
	assert_int_equal(list->count, PAYMENT_EVENTS_MAX);
	assert_true(list->has_more);
	assert_string_equal(list->items[0].id, "evt_other");
	assert_string_equal(list->items[PAYMENT_EVENTS_MAX - 1].id, "evt_q048");
	free(list);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_users_search_and_newest_first),
	    cmocka_unit_test(test_accounts_system_first_page_by_page),
	    cmocka_unit_test(test_entries_of_one_account_newest_first),
	    cmocka_unit_test(test_stuck_payments_oldest_first),
	    cmocka_unit_test(test_events_of_one_payment_oldest_first),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/*
 * The PostgreSQL side of the event pipeline against a real server: the outbox relay's
 * claims (order, due time, concurrent relays, release, publish, lag), the consumers'
 * inbox (applied at most once, in the same transaction as the work, concurrent members,
 * the attempt history, retries and dead letters), the operators' dead letters (list, show,
 * replay, discard) and the schema's own guards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "adapters/postgres/pg_conn.h"
#include "adapters/postgres/pg_dead_letter_repo.h"
#include "adapters/postgres/pg_event_inbox.h"
#include "adapters/postgres/pg_ledger_repo.h"
#include "adapters/postgres/pg_outbox_repo.h"
#include "adapters/postgres/pg_payment_repo.h"
#include "adapters/postgres/pg_sql.h"
#include "support/pg_testdb.h"

#define T0      INT64_C(1764439200123456) /* 2025-11-29T18:00:00.123456Z */
#define SEC     INT64_C(1000000)
#define USER_A  "00000000-0000-4000-8000-00000000000a"
#define TOPIC   EVENT_TOPIC_PAYMENTS
#define PAYLOAD "{\"id\": \"evt_1\", \"data\": {\"n\": [1, 2.50]}}"

static struct pg_testdb db;
static struct pg_conn *conn, *conn2;
static struct outbox_repo outbox, outbox2;
static struct event_inbox inbox, inbox2;
static struct dead_letter_repo dl;
static PGconn *raw; /* the SQL an operator could type in psql */

static void quiet(void *arg, const char *message)
{
}

static struct pg_conn *open_conn(void)
{
	struct hex_err err = {0};
	struct pg_conn *c = pg_conn_open(db.conninfo, &err);
	if (c == NULL)
		fail_msg("%s", err.message);
	return c;
}

static int group_setup(void **state)
{
	pg_testdb_create_migrated(&db);
	conn = open_conn();
	conn2 = open_conn();
	outbox = pg_outbox_repo_port(conn);
	outbox2 = pg_outbox_repo_port(conn2);
	inbox = pg_event_inbox_port(conn);
	inbox2 = pg_event_inbox_port(conn2);
	dl = pg_dead_letter_repo_port(conn);
	/* Every statement must be accepted by the schema as migrated. */
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

static int setup(void **state)
{
	/* A test that failed half-way may have left a claim open: end it, not hang on it. */
	while (pg_conn_depth(conn) > 0)
		pg_conn_rollback(conn);
	while (pg_conn_depth(conn2) > 0)
		pg_conn_rollback(conn2);
	pg_testdb_exec(&db, "TRUNCATE outbox, processed_events, event_failures, dead_letters, "
	                    "entries, journal_transactions, accounts, membership_events, "
	                    "stripe_events RESTART IDENTITY");
	return 0;
}

/* ---- helpers ---- */

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

/* The single text value of a query on the raw session (static buffer; "<null>" if NULL). */
static const char *text_of(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *text_of(const char *fmt, ...)
{
	static char out[4096];
	char sql[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof sql, fmt, ap);
	va_end(ap);
	PGresult *r = PQexec(raw, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		fail_msg("%s: %s", sql, PQerrorMessage(raw));
	snprintf(out, sizeof out, "%s", PQgetisnull(r, 0, 0) ? "<null>" : PQgetvalue(r, 0, 0));
	PQclear(r);
	return out;
}

/* Runs sql on the raw session; true if the server accepted it. */
static bool raw_ok(const char *sql)
{
	PGresult *r = PQexec(raw, sql);
	ExecStatusType s = PQresultStatus(r);
	PQclear(r);
	return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

/* An outbox row as the webhook or a retry writes it; returns its id. */
static int64_t outbox_put(const char *event_id, const char *consumer, int attempt,
                          const char *payload, int64_t available_us)
{
	char att[16], avail[24];
	snprintf(att, sizeof att, "%d", attempt);
	snprintf(avail, sizeof avail, "%" PRId64, available_us);
	const char *params[] = {event_id, TOPIC, payload, consumer, att, avail};
	PGresult *r = PQexecParams(
	    raw,
	    "INSERT INTO outbox (event_id, topic, payload, consumer, attempt, available_at, "
	    "created_at) VALUES ($1, $2, $3::json, $4, $5::int, " PG_SQL_TS("$6") ", " PG_SQL_TS(
	        "$6") ") RETURNING id",
	    6, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("outbox insert: %s", PQerrorMessage(raw));
	int64_t id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return id;
}

static struct event_msg msg_of(const char *event_id, int attempt, const char *payload)
{
	struct event_msg m = {.outbox_id = 1, .attempt = attempt};
	snprintf(m.event_id, sizeof m.event_id, "%s", event_id);
	snprintf(m.topic, sizeof m.topic, "%s", TOPIC);
	snprintf(m.stream_id, sizeof m.stream_id, "1-0");
	m.payload = (char *)payload;
	m.payload_len = strlen(payload);
	return m;
}

/*
 * fail() that must succeed; returns *dead. The port's "fail" is called as (ops->fail)(...)
 * throughout: cmocka defines a function-like macro fail().
 */
static bool fail_ok(const char *consumer, const struct event_msg *m, const char *error,
                    int64_t now_us, int64_t retry_at_us)
{
	bool dead = true; /* must be overwritten */
	enum hex_status st =
	    (inbox.ops->fail)(inbox.self, consumer, m, error, now_us, retry_at_us, &dead);
	if (st != HEX_OK)
		fail_msg("fail(%s, %s): %s: %s", consumer, m->event_id, hex_status_name(st),
		         pg_conn_last_error(conn));
	assert_int_equal(pg_conn_depth(conn), 0);
	return dead;
}

static bool begin_ok(struct event_inbox *in, const char *consumer, const char *event_id)
{
	bool first = false;
	enum hex_status st = in->ops->begin(in->self, consumer, event_id, &first);
	if (st != HEX_OK)
		fail_msg("begin(%s, %s): %s", consumer, event_id, hex_status_name(st));
	return first;
}

/* The id of the newest dead letter of (consumer, event_id), -1 if none. */
static int64_t dead_letter_id(const char *consumer, const char *event_id)
{
	return scalar("SELECT max(id) FROM dead_letters WHERE consumer = '%s' AND event_id = '%s'",
	              consumer, event_id);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- outbox ---- */

static void test_claim_takes_due_rows_oldest_first(void **state)
{
	int64_t late = outbox_put("evt_late", "", 1, "{\"n\": 1}", T0 + 2 * SEC);
	int64_t oldest = outbox_put("evt_oldest", "", 1, PAYLOAD, T0);
	int64_t tie1 = outbox_put("evt_tie1", "ledger", 3, "[1, 2]", T0 + SEC);
	int64_t tie2 = outbox_put("evt_tie2", "", 1, "{}", T0 + SEC);
	int64_t future = outbox_put("evt_future", "", 1, "{}", T0 + 10 * SEC);
	outbox_put("evt_done", "", 1, "{}", T0 - SEC);
	assert_true(raw_ok("UPDATE outbox SET published_at = now() WHERE event_id = 'evt_done'"));

	struct event_batch b = {0};
	assert_int_equal(outbox.ops->claim(outbox.self, 10, T0 + 5 * SEC, &b), HEX_OK);
	assert_int_equal(b.n, 4);
	assert_int_equal(pg_conn_depth(conn), 1); /* the rows stay locked until published */
	int64_t want[] = {oldest, tie1, tie2, late};
	for (int i = 0; i < 4; i++)
		assert_int_equal(b.items[i].outbox_id, want[i]);
	const struct event_msg *m = &b.items[0];
	assert_string_equal(m->event_id, "evt_oldest");
	assert_string_equal(m->topic, TOPIC);
	assert_string_equal(m->consumer, "");
	assert_int_equal(m->attempt, 1);
	assert_string_equal(m->stream_id, "");
	assert_string_equal(m->payload, PAYLOAD); /* json keeps the bytes as written */
	assert_int_equal(m->payload_len, strlen(PAYLOAD));
	assert_string_equal(b.items[1].consumer, "ledger");
	assert_int_equal(b.items[1].attempt, 3);
	assert_string_equal(b.items[1].payload, "[1, 2]");

	assert_int_equal(outbox.ops->published(outbox.self, &b, T0 + 6 * SEC), HEX_OK);
	assert_int_equal(pg_conn_depth(conn), 0);
	assert_int_equal(scalar("SELECT count(*) FROM outbox WHERE published_at = " PG_SQL_TS(
	                            "%" PRId64) " AND id IN (%" PRId64 ", %" PRId64 ", %" PRId64
	                                        ", %" PRId64 ")",
	                        T0 + 6 * SEC, oldest, tie1, tie2, late),
	                 4);
	event_batch_clear(&b);
	assert_int_equal(b.n, 0);

	/* Nothing due: the claim is over at once. */
	assert_int_equal(outbox.ops->claim(outbox.self, 10, T0 + 5 * SEC, &b), HEX_OK);
	assert_int_equal(b.n, 0);
	assert_int_equal(pg_conn_depth(conn), 0);
	assert_int_equal(outbox.ops->published(outbox.self, &b, T0), HEX_OK);
	/* Due exactly now counts; one at a time. */
	outbox_put("evt_future2", "", 1, "{}", T0 + 10 * SEC);
	assert_int_equal(outbox.ops->claim(outbox.self, 1, T0 + 10 * SEC, &b), HEX_OK);
	assert_int_equal(b.n, 1);
	assert_int_equal(b.items[0].outbox_id, future);
	outbox.ops->release(outbox.self);
	event_batch_clear(&b);
}

static void test_claim_limit_out_of_range_is_invalid(void **state)
{
	outbox_put("evt_1", "", 1, "{}", T0);
	struct event_batch b = {0};
	int bad[] = {0, -1, EVENT_BATCH_MAX + 1};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		assert_int_equal(outbox.ops->claim(outbox.self, bad[i], T0, &b), HEX_INVALID);
		assert_int_equal(b.n, 0);
		assert_int_equal(pg_conn_depth(conn), 0);
	}
	assert_int_equal(outbox.ops->claim(outbox.self, EVENT_BATCH_MAX, T0, &b), HEX_OK);
	assert_int_equal(b.n, 1);
	outbox.ops->release(outbox.self);
	event_batch_clear(&b);
}

static void test_release_leaves_rows_for_the_next_claim(void **state)
{
	int64_t a = outbox_put("evt_a", "", 1, "{}", T0);
	int64_t b_id = outbox_put("evt_b", "", 1, "{}", T0);
	struct event_batch b = {0};
	assert_int_equal(outbox.ops->claim(outbox.self, 5, T0, &b), HEX_OK);
	assert_int_equal(b.n, 2);
	outbox.ops->release(outbox.self);
	assert_int_equal(pg_conn_depth(conn), 0);
	event_batch_clear(&b);
	assert_int_equal(scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL"), 2);

	/* The other relay gets them now. */
	assert_int_equal(outbox2.ops->claim(outbox2.self, 5, T0, &b), HEX_OK);
	assert_int_equal(b.n, 2);
	assert_int_equal(b.items[0].outbox_id, a);
	assert_int_equal(b.items[1].outbox_id, b_id);
	assert_int_equal(outbox2.ops->published(outbox2.self, &b, T0), HEX_OK);
	event_batch_clear(&b);
	assert_int_equal(scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL"), 0);
}

static void test_a_held_claim_is_skipped_not_waited_for(void **state)
{
	for (int i = 0; i < 6; i++) {
		char id[32];
		snprintf(id, sizeof id, "evt_%d", i);
		outbox_put(id, "", 1, "{}", T0 + i);
	}
	struct event_batch b1 = {0}, b2 = {0};
	assert_int_equal(outbox.ops->claim(outbox.self, 4, T0 + SEC, &b1), HEX_OK);
	assert_int_equal(b1.n, 4);
	double t0 = now_s();
	assert_int_equal(outbox2.ops->claim(outbox2.self, 4, T0 + SEC, &b2), HEX_OK);
	assert_true(now_s() - t0 < 1.0); /* no wait for the first relay's locks */
	assert_int_equal(b2.n, 2);
	assert_string_equal(b2.items[0].event_id, "evt_4");
	assert_string_equal(b2.items[1].event_id, "evt_5");
	assert_int_equal(outbox2.ops->published(outbox2.self, &b2, T0 + SEC), HEX_OK);
	assert_int_equal(outbox.ops->published(outbox.self, &b1, T0 + SEC), HEX_OK);
	event_batch_clear(&b1);
	event_batch_clear(&b2);
	assert_int_equal(scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL"), 0);
}

#define RELAY_ROWS 300

struct relay {
	struct outbox_repo *repo;
	int got;
	int64_t ids[RELAY_ROWS];
	enum hex_status st;
};

static void *relay_run(void *arg)
{
	struct relay *r = arg;
	struct event_batch *b = calloc(1, sizeof *b);
	for (;;) {
		r->st = r->repo->ops->claim(r->repo->self, 7, T0 + SEC, b);
		if (r->st != HEX_OK || b->n == 0)
			break;
		for (int i = 0; i < b->n && r->got < RELAY_ROWS; i++)
			r->ids[r->got++] = b->items[i].outbox_id;
		usleep(500); /* "publishing": the other relay runs into the held rows meanwhile */
		r->st = r->repo->ops->published(r->repo->self, b, T0 + SEC);
		event_batch_clear(b);
		if (r->st != HEX_OK)
			break;
	}
	event_batch_clear(b);
	free(b);
	return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static void test_two_relays_share_every_row_once(void **state)
{
	assert_true(raw_ok("INSERT INTO outbox (event_id, topic, payload, available_at) "
	                   "SELECT 'evt_' || i, 'payment_events', '{}', "
	                   "'2025-11-29T18:00:00Z'::timestamptz FROM generate_series(1, 300) i"));
	struct relay *r1 = calloc(1, sizeof *r1), *r2 = calloc(1, sizeof *r2);
	r1->repo = &outbox;
	r2->repo = &outbox2;
	pthread_t t1, t2;
	assert_int_equal(pthread_create(&t1, NULL, relay_run, r1), 0);
	assert_int_equal(pthread_create(&t2, NULL, relay_run, r2), 0);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	assert_int_equal(r1->st, HEX_OK);
	assert_int_equal(r2->st, HEX_OK);
	assert_int_equal(r1->got + r2->got, RELAY_ROWS);
	assert_true(r1->got > 0 && r2->got > 0);
	int64_t all[RELAY_ROWS];
	memcpy(all, r1->ids, (size_t)r1->got * sizeof *all);
	memcpy(all + r1->got, r2->ids, (size_t)r2->got * sizeof *all);
	qsort(all, RELAY_ROWS, sizeof *all, cmp_i64);
	for (int i = 0; i < RELAY_ROWS; i++)
		assert_int_equal(all[i], i + 1); /* each row once, none missing */
	assert_int_equal(scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL"), 0);
	free(r1);
	free(r2);
}

static void test_published_refuses_rows_it_did_not_claim(void **state)
{
	int64_t id = outbox_put("evt_1", "", 1, "{}", T0);
	int64_t done = outbox_put("evt_2", "", 1, "{}", T0);
	assert_true(raw_ok("UPDATE outbox SET published_at = now() WHERE event_id = 'evt_2'"));
	struct event_batch b = {0};

	/* No claim open: nothing may be stamped in autocommit. */
	b.n = 1;
	b.items[0].outbox_id = id;
	assert_int_equal(outbox.ops->published(outbox.self, &b, T0), HEX_INTERNAL);
	assert_int_equal(pg_conn_depth(conn), 0);
	assert_int_equal(scalar("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL"), 1);

	/* A batch naming a row published already or none at all: nothing stamped, claim over. */
	b.n = 0;
	assert_int_equal(outbox.ops->claim(outbox.self, 5, T0, &b), HEX_OK);
	assert_int_equal(b.n, 1);
	b.items[1] = b.items[0];
	b.items[1].payload = NULL; /* owned by items[0] */
	int64_t strays[] = {done, 999};
	for (int i = 0; i < 2; i++) {
		b.items[1].outbox_id = strays[i];
		b.n = 2;
		assert_int_equal(outbox.ops->published(outbox.self, &b, T0), HEX_INTERNAL);
		assert_int_equal(pg_conn_depth(conn), 0);
		assert_int_equal(scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL"),
		                 1);
		event_batch_clear(&b);
		assert_int_equal(outbox.ops->claim(outbox.self, 5, T0, &b), HEX_OK);
		assert_int_equal(b.n, 1); /* evt_1 goes out with the next claim */
		b.items[1] = b.items[0];
		b.items[1].payload = NULL;
	}
	assert_int_equal(outbox.ops->published(outbox.self, &b, T0), HEX_OK);
	assert_int_equal(scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL"), 0);
	event_batch_clear(&b);
}

static void test_lag_counts_unpublished_and_ages_the_oldest_due(void **state)
{
	struct outbox_lag lag = {.unpublished = 99, .oldest_age_us = 99};
	assert_int_equal(outbox.ops->lag(outbox.self, T0, &lag), HEX_OK);
	assert_int_equal(lag.unpublished, 0);
	assert_int_equal(lag.oldest_age_us, 0);

	outbox_put("evt_future", "", 1, "{}", T0 + 60 * SEC);
	assert_int_equal(outbox.ops->lag(outbox.self, T0, &lag), HEX_OK);
	assert_int_equal(lag.unpublished, 1);
	assert_int_equal(lag.oldest_age_us, 0); /* waiting, but not late */

	outbox_put("evt_old", "", 1, "{}", T0 - 3 * SEC - 250);
	outbox_put("evt_new", "", 1, "{}", T0 - SEC);
	outbox_put("evt_done", "", 1, "{}", T0 - 3600 * SEC);
	assert_true(raw_ok("UPDATE outbox SET published_at = now() WHERE event_id = 'evt_done'"));
	assert_int_equal(outbox.ops->lag(outbox.self, T0, &lag), HEX_OK);
	assert_int_equal(lag.unpublished, 3);
	assert_int_equal(lag.oldest_age_us, 3 * SEC + 250);
}

static void test_webhook_outbox_rows_are_claimed_as_first_deliveries(void **state)
{
	struct payment_repo pay = pg_payment_repo_port(conn);
	const char *body = "{\"id\": \"evt_hook\", \"type\": \"charge.dispute.created\"}";
	struct payment_event ev = {.payload = body, .payload_len = strlen(body), .created_s = 1};
	snprintf(ev.id, sizeof ev.id, "evt_hook");
	snprintf(ev.type, sizeof ev.type, "charge.dispute.created");
	struct payment_event_plan plan = {0};
	struct payment_event_effect eff;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t now = (int64_t)ts.tv_sec * SEC + ts.tv_nsec / 1000;
	assert_int_equal(pay.ops->apply_event(pay.self, &ev, &plan, now, &eff), HEX_OK);
	assert_false(eff.duplicate);

	struct event_batch b = {0};
	/* available_at is the server's now(): a minute of leeway for the test's clock. */
	assert_int_equal(outbox.ops->claim(outbox.self, 5, now + 60 * SEC, &b), HEX_OK);
	assert_int_equal(b.n, 1);
	assert_string_equal(b.items[0].event_id, "evt_hook");
	assert_string_equal(b.items[0].topic, PG_PAYMENT_OUTBOX_TOPIC);
	assert_string_equal(b.items[0].consumer, "");
	assert_int_equal(b.items[0].attempt, 1);
	assert_string_equal(b.items[0].payload, body);
	assert_int_equal(outbox.ops->published(outbox.self, &b, now), HEX_OK);
	event_batch_clear(&b);
}

/* ---- inbox ---- */

static void test_begin_says_first_once_per_consumer(void **state)
{
	assert_true(begin_ok(&inbox, "ledger", "evt_1"));
	assert_int_equal(pg_conn_depth(conn), 1);
	assert_int_equal(inbox.ops->commit(inbox.self), HEX_OK);
	assert_int_equal(pg_conn_depth(conn), 0);
	assert_int_equal(scalar("SELECT count(*) FROM processed_events WHERE consumer = 'ledger' "
	                        "AND event_id = 'evt_1'"),
	                 1);

	/* Applied before: no transaction is left open. */
	assert_false(begin_ok(&inbox, "ledger", "evt_1"));
	assert_int_equal(pg_conn_depth(conn), 0);
	assert_false(begin_ok(&inbox2, "ledger", "evt_1"));

	/* Each consumer applies it once. */
	assert_true(begin_ok(&inbox, "membership", "evt_1"));
	assert_int_equal(inbox.ops->commit(inbox.self), HEX_OK);
	assert_int_equal(scalar("SELECT count(*) FROM processed_events"), 2);
}

static void test_begin_refuses_bad_names_and_touches_nothing(void **state)
{
	const char *consumers[] = {"", "Ledger", "ledger-1", "a_consumer_name_that_is_too_long_"};
	bool first = true;
	for (size_t i = 0; i < sizeof consumers / sizeof *consumers; i++) {
		assert_int_equal(inbox.ops->begin(inbox.self, consumers[i], "evt_1", &first),
		                 HEX_INVALID);
		assert_false(first);
	}
	first = true;
	assert_int_equal(inbox.ops->begin(inbox.self, "ledger", "", &first), HEX_INVALID);
	assert_false(first);
	assert_int_equal(pg_conn_depth(conn), 0);
	assert_int_equal(scalar("SELECT count(*) FROM processed_events"), 0);
}

/* A two-entry top-up of USER_A's eur wallet from Stripe clearing, keyed by key. */
static enum hex_status post_top_up(struct ledger_repo *lr, const char *txn_id, const char *key)
{
	struct ledger_txn_request t = {.n = 2};
	snprintf(t.id, sizeof t.id, "%s", txn_id);
	snprintf(t.idempotency_key, sizeof t.idempotency_key, "%s", key);
	snprintf(t.reference, sizeof t.reference, "payment:%s", key);
	t.postings[0] = (struct ledger_posting){
	    .account = {.kind = LEDGER_WALLET, .owner_id = USER_A, .currency = "eur"},
	    .amount = 500};
	t.postings[1] = (struct ledger_posting){
	    .account = {.kind = LEDGER_STRIPE_CLEARING, .currency = "eur"}, .amount = -500};
	struct ledger_txn out;
	bool dup = true;
	return lr->ops->post(lr->self, &t, T0, &out, &dup);
}

static void test_the_record_commits_with_the_work_or_not_at_all(void **state)
{
	struct ledger_repo lr = pg_ledger_repo_port(conn);

	/* The repository's own transaction nests in the consumer's: a rollback takes both. */
	assert_true(begin_ok(&inbox, "ledger", "evt_pay"));
	assert_int_equal(post_top_up(&lr, "00000000-0000-4000-8000-000000000001", "k1"), HEX_OK);
	assert_int_equal(pg_conn_depth(conn), 1);
	assert_int_equal(scalar("SELECT count(*) FROM journal_transactions"), 0); /* not yet */
	inbox.ops->rollback(inbox.self);
	assert_int_equal(pg_conn_depth(conn), 0);
	assert_int_equal(scalar("SELECT count(*) FROM journal_transactions"), 0);
	assert_int_equal(scalar("SELECT count(*) FROM processed_events"), 0);

	/* So the event is still to apply; this time it commits, record and entries together. */
	assert_true(begin_ok(&inbox, "ledger", "evt_pay"));
	assert_int_equal(post_top_up(&lr, "00000000-0000-4000-8000-000000000002", "k1"), HEX_OK);
	assert_int_equal(inbox.ops->commit(inbox.self), HEX_OK);
	assert_int_equal(scalar("SELECT count(*) FROM journal_transactions"), 1);
	assert_int_equal(scalar("SELECT count(*) FROM entries"), 2);
	assert_int_equal(scalar("SELECT count(*) FROM processed_events"), 1);
	assert_false(begin_ok(&inbox, "ledger", "evt_pay"));
}

static void test_a_failed_repository_call_inside_keeps_the_record(void **state)
{
	struct payment_repo pay = pg_payment_repo_port(conn);
	struct membership_effect eff;
	assert_true(begin_ok(&inbox, "membership", "evt_m"));
	/* No such user: the repository rolls its own level back, the consumer's goes on. */
	assert_int_equal(pay.ops->record_membership_event(pay.self, "mem_1", USER_A,
	                                                  MEMBERSHIP_MEMBER, T0, &eff),
	                 HEX_NOT_FOUND);
	assert_int_equal(pg_conn_depth(conn), 1);
	assert_int_equal(inbox.ops->commit(inbox.self), HEX_OK);
	assert_int_equal(scalar("SELECT count(*) FROM processed_events"), 1);
	assert_int_equal(scalar("SELECT count(*) FROM membership_events"), 0);
}

struct racer {
	struct event_inbox *in;
	const char *event_id;
	atomic_bool done;
	bool first;
	enum hex_status st, commit_st;
};

static void *racer_run(void *arg)
{
	struct racer *r = arg;
	r->st = r->in->ops->begin(r->in->self, "ledger", r->event_id, &r->first);
	if (r->st == HEX_OK && r->first)
		r->commit_st = r->in->ops->commit(r->in->self);
	atomic_store(&r->done, true);
	return NULL;
}

/* Starts a second member on evt while the first holds it; checks that it waits. */
static void race_against_held(struct racer *r, pthread_t *t, const char *evt)
{
	memset(r, 0, sizeof *r);
	r->in = &inbox2;
	r->event_id = evt;
	atomic_init(&r->done, false);
	assert_int_equal(pthread_create(t, NULL, racer_run, r), 0);
	usleep(300000);
	assert_false(atomic_load(&r->done)); /* waits on the first member's transaction */
}

static void test_a_second_member_waits_for_the_first(void **state)
{
	struct racer r;
	pthread_t t;

	/* The first member commits: the second finds the event applied. */
	assert_true(begin_ok(&inbox, "ledger", "evt_race"));
	race_against_held(&r, &t, "evt_race");
	assert_int_equal(inbox.ops->commit(inbox.self), HEX_OK);
	pthread_join(t, NULL);
	assert_int_equal(r.st, HEX_OK);
	assert_false(r.first);
	assert_int_equal(pg_conn_depth(conn2), 0);

	/* The first member rolls back: the second applies it. */
	assert_true(begin_ok(&inbox, "ledger", "evt_race2"));
	race_against_held(&r, &t, "evt_race2");
	inbox.ops->rollback(inbox.self);
	pthread_join(t, NULL);
	assert_int_equal(r.st, HEX_OK);
	assert_true(r.first);
	assert_int_equal(r.commit_st, HEX_OK);
	assert_int_equal(scalar("SELECT count(*) FROM processed_events"), 2);
}

/* A batch: several events' transactions and failures nested in one commit. */
static void test_a_batch_commits_its_events_and_failures_together(void **state)
{
	for (int round = 0; round < 2; round++) {
		bool commit = round == 1; /* first rolled back, then committed */
		assert_int_equal(inbox.ops->batch_begin(inbox.self), HEX_OK);
		assert_true(begin_ok(&inbox, "ledger", "evt_b1"));
		assert_int_equal(inbox.ops->commit(inbox.self), HEX_OK);
		assert_true(begin_ok(&inbox, "ledger", "evt_b2"));
		inbox.ops->rollback(inbox.self); /* its handler failed */
		struct event_msg m = msg_of("evt_b2", 1, PAYLOAD);
		bool dead = true;
		assert_int_equal(
		    (inbox.ops->fail)(inbox.self, "ledger", &m, "no funds", T0, T0 + SEC, &dead),
		    HEX_OK);
		assert_false(dead);
		assert_int_equal(pg_conn_depth(conn), 1); /* still inside the batch */
		/* Nothing is visible to others before the batch commits. */
		assert_int_equal(scalar("SELECT count(*) FROM processed_events"), 0);
		if (commit) {
			assert_int_equal(inbox.ops->batch_commit(inbox.self), HEX_OK);
		} else {
			inbox.ops->batch_rollback(inbox.self);
		}
		assert_int_equal(pg_conn_depth(conn), 0);
		assert_int_equal(scalar("SELECT count(*) FROM processed_events"), commit ? 1 : 0);
		assert_int_equal(scalar("SELECT count(*) FROM event_failures"), commit ? 1 : 0);
		assert_int_equal(scalar("SELECT count(*) FROM outbox WHERE consumer = 'ledger'"),
		                 commit ? 1 : 0);
	}
	/* Applied once: the next begin says so. */
	assert_false(begin_ok(&inbox, "ledger", "evt_b1"));
}

static void test_fail_with_a_retry_schedules_the_next_attempt(void **state)
{
	struct event_msg m = msg_of("evt_r", 1, PAYLOAD);
	assert_false(fail_ok("ledger", &m, "account locked\nby a test", T0, T0 + 30 * SEC));
	assert_string_equal(text_of("SELECT attempt || ' ' || error || ' ' || " PG_SQL_US(
	                        "failed_at") " FROM event_failures"),
	                    "1 account locked by a test 1764439200123456");
	assert_string_equal(text_of("SELECT consumer || ' ' || attempt || ' ' || " PG_SQL_US(
	                        "available_at") " || ' ' || payload::text "
	                                        "FROM outbox WHERE published_at IS NULL"),
	                    "ledger 2 1764439230123456 " PAYLOAD);
	assert_int_equal(scalar("SELECT count(*) FROM dead_letters"), 0);

	/* The retry waits out its delay, then goes to that consumer alone. */
	struct event_batch b = {0};
	assert_int_equal(outbox.ops->claim(outbox.self, 5, T0 + 30 * SEC - 1, &b), HEX_OK);
	assert_int_equal(b.n, 0);
	assert_int_equal(outbox.ops->claim(outbox.self, 5, T0 + 30 * SEC, &b), HEX_OK);
	assert_int_equal(b.n, 1);
	assert_string_equal(b.items[0].event_id, "evt_r");
	assert_string_equal(b.items[0].consumer, "ledger");
	assert_int_equal(b.items[0].attempt, 2);
	assert_string_equal(b.items[0].payload, PAYLOAD);
	outbox.ops->release(outbox.self);
	event_batch_clear(&b);

	/* Another member recording the same attempt changes nothing. */
	assert_false(fail_ok("ledger", &m, "again", T0 + SEC, T0 + 99 * SEC));
	assert_int_equal(scalar("SELECT count(*) FROM event_failures"), 1);
	assert_int_equal(scalar("SELECT count(*) FROM outbox"), 1);
	assert_string_equal(text_of("SELECT error FROM event_failures"),
	                    "account locked by a test");
}

static void test_fail_without_a_retry_opens_a_dead_letter(void **state)
{
	struct event_msg m = msg_of("evt_d", 1, PAYLOAD);
	assert_false(fail_ok("ledger", &m, "first", T0, T0 + SEC));
	m.attempt = 2;
	assert_false(fail_ok("ledger", &m, "second", T0 + SEC, T0 + 3 * SEC));
	m.attempt = 3;
	assert_true(fail_ok("ledger", &m, "third", T0 + 3 * SEC, 0));
	assert_int_equal(scalar("SELECT count(*) FROM outbox"), 2); /* attempts 2 and 3 only */

	int64_t id = dead_letter_id("ledger", "evt_d");
	assert_true(id > 0);
	struct dead_letter d;
	assert_int_equal(dl.ops->get(dl.self, id, &d), HEX_OK);
	assert_int_equal(d.id, id);
	assert_string_equal(d.consumer, "ledger");
	assert_string_equal(d.event_id, "evt_d");
	assert_string_equal(d.topic, TOPIC);
	assert_int_equal(d.attempts, 3);
	assert_string_equal(d.error, "third");
	assert_int_equal(d.status, DEAD_LETTER_OPEN);
	assert_int_equal(d.created_at_us, T0 + 3 * SEC);
	assert_int_equal(d.resolved_at_us, 0);
	assert_string_equal(d.resolved_by, "");
	assert_string_equal(d.payload, PAYLOAD);
	assert_int_equal(d.nhistory, 3);
	const char *errors[] = {"first", "second", "third"};
	int64_t times[] = {T0, T0 + SEC, T0 + 3 * SEC};
	for (int i = 0; i < 3; i++) {
		assert_int_equal(d.history[i].attempt, i + 1);
		assert_string_equal(d.history[i].error, errors[i]);
		assert_int_equal(d.history[i].failed_at_us, times[i]);
	}
	free(d.payload);

	/* Another consumer's failure of the same event is its own dead letter. */
	assert_true(fail_ok("notify", &m, "no mail server", T0, 0));
	/* The same consumer dying on it again while one is open: still one open row. */
	m.attempt = 4;
	assert_true(fail_ok("ledger", &m, "fourth", T0 + 4 * SEC, 0));
	assert_int_equal(scalar("SELECT count(*) FROM dead_letters WHERE consumer = 'ledger'"), 1);
	assert_int_equal(scalar("SELECT count(*) FROM dead_letters"), 2);
	assert_int_equal(scalar("SELECT count(*) FROM event_failures"), 5);
	long open = 0;
	assert_int_equal(dl.ops->count_open(dl.self, &open), HEX_OK);
	assert_int_equal(open, 2);
}

static void test_fail_dead_letters_what_could_never_be_retried(void **state)
{
	/* Not JSON: a retry could never be relayed, so it dies at once, kept as it came. */
	struct event_msg m = msg_of("evt_bad", 1, "{\"truncated\": ");
	assert_true(fail_ok("ledger", &m, "unparseable", T0, T0 + SEC));
	assert_int_equal(scalar("SELECT count(*) FROM outbox"), 0);
	assert_string_equal(text_of("SELECT payload FROM dead_letters"), "{\"truncated\": ");
	assert_string_equal(text_of("SELECT attempts || ' ' || error FROM dead_letters"),
	                    "1 unparseable");

	/* No topic to relay it on. */
	m = msg_of("evt_notopic", 2, "{}");
	m.topic[0] = '\0';
	assert_true(fail_ok("ledger", &m, "lost its topic", T0, T0 + SEC));
	assert_int_equal(scalar("SELECT count(*) FROM outbox"), 0);
	assert_int_equal(scalar("SELECT count(*) FROM dead_letters WHERE event_id = 'evt_notopic' "
	                        "AND topic = '' AND attempts = 2"),
	                 1);

	/* No payload at all (a stream entry without one). */
	m = msg_of("stream:7-1", 1, "");
	m.payload = NULL;
	m.payload_len = 0;
	assert_true(fail_ok("ledger", &m, "the stream entry is malformed", T0, 0));
	assert_string_equal(text_of("SELECT '[' || payload || ']' FROM dead_letters "
	                            "WHERE event_id = 'stream:7-1'"),
	                    "[]");
}

static void test_garbled_text_still_reaches_the_dead_letters(void **state)
{
	char error[700];
	memset(error, 'e', sizeof error);
	memcpy(error + 510, "\xc3\xa9", 2); /* é across the 511-byte cut: left out whole */
	error[sizeof error - 1] = '\0';
	const char payload[] = "{\"a\": \"\xff\xfe\"}\x00tail";
	struct event_msg m = msg_of("evt_\xff\xfe", 1, "");
	m.payload = (char *)payload;
	m.payload_len = sizeof payload - 1;
	assert_true(fail_ok("ledger", &m, error, T0, T0 + SEC));

	assert_string_equal(text_of("SELECT event_id FROM dead_letters"), "evt_??");
	assert_string_equal(text_of("SELECT payload FROM dead_letters"), "{\"a\": \"??\"}?tail");
	assert_int_equal(scalar("SELECT octet_length(error) FROM dead_letters"), 510);
	/* The consumer's begin names the event the same way: applied at most once. */
	assert_true(begin_ok(&inbox, "ledger", "evt_\xff\xfe"));
	assert_int_equal(inbox.ops->commit(inbox.self), HEX_OK);
	assert_false(begin_ok(&inbox, "ledger", "evt_\xff\xfe"));
	assert_string_equal(text_of("SELECT event_id FROM processed_events"), "evt_??");
}

static void test_fail_refuses_what_names_no_event(void **state)
{
	struct event_msg m = msg_of("evt_1", 1, "{}");
	bool dead = true;
	assert_int_equal((inbox.ops->fail)(inbox.self, "Ledger", &m, "x", T0, 0, &dead),
	                 HEX_INVALID);
	assert_false(dead);
	m.attempt = 0;
	assert_int_equal((inbox.ops->fail)(inbox.self, "ledger", &m, "x", T0, 0, &dead),
	                 HEX_INVALID);
	m = msg_of("", 1, "{}");
	assert_int_equal((inbox.ops->fail)(inbox.self, "ledger", &m, "x", T0, 0, &dead),
	                 HEX_INVALID);
	assert_false(dead);
	assert_int_equal(pg_conn_depth(conn), 0);
	assert_int_equal(scalar("SELECT count(*) FROM event_failures"), 0);
	assert_int_equal(scalar("SELECT count(*) FROM dead_letters"), 0);
}

/* ---- dead letters ---- */

/* Opens a dead letter of consumer for event_id after `attempts` attempts; returns its id. */
static int64_t make_dead(const char *consumer, const char *event_id, int attempts,
                         const char *payload, int64_t at)
{
	struct event_msg m = msg_of(event_id, 1, payload);
	for (int a = 1; a <= attempts; a++) {
		char why[32];
		snprintf(why, sizeof why, "failure %d", a);
		m.attempt = a;
		bool dead = fail_ok(consumer, &m, why, at + a, a < attempts ? at + a + 1 : 0);
		assert_int_equal(dead, a == attempts);
	}
	/* The retries are out already: a test claims only what it adds itself. */
	assert_true(raw_ok("UPDATE outbox SET published_at = now() WHERE published_at IS NULL"));
	return dead_letter_id(consumer, event_id);
}

static void test_list_pages_newest_first(void **state)
{
	int64_t a = make_dead("ledger", "evt_a", 1, "{}", T0);
	int64_t b = make_dead("ledger", "evt_b", 2, "{}", T0);
	int64_t c = make_dead("notify", "evt_c", 1, "{}", T0);
	struct dead_letter out;
	assert_int_equal(dl.ops->discard(dl.self, b, "ops", "known bad", T0, &out), HEX_OK);

	struct dead_letter_page *p = calloc(1, sizeof *p);
	assert_int_equal(dl.ops->list(dl.self, false, 1, 0, p), HEX_OK);
	assert_int_equal(p->count, 1);
	assert_true(p->has_more);
	assert_int_equal(p->items[0].id, c);
	assert_null(p->items[0].payload);
	assert_int_equal(p->items[0].nhistory, 0);
	assert_int_equal(dl.ops->list(dl.self, false, 1, c, p), HEX_OK);
	assert_int_equal(p->count, 1);
	assert_false(p->has_more); /* b is closed: not in the open list */
	assert_int_equal(p->items[0].id, a);

	assert_int_equal(dl.ops->list(dl.self, true, HEX_LIST_MAX, 0, p), HEX_OK);
	assert_int_equal(p->count, 3);
	assert_false(p->has_more);
	assert_int_equal(p->items[1].id, b);
	assert_int_equal(p->items[1].status, DEAD_LETTER_DISCARDED);
	assert_string_equal(p->items[1].reason, "known bad");
	assert_int_equal(p->items[1].attempts, 2);
	assert_string_equal(p->items[1].error, "failure 2");
	assert_int_equal(dl.ops->list(dl.self, true, 5, a, p), HEX_OK);
	assert_int_equal(p->count, 0);

	int bad_limits[] = {0, -1, HEX_LIST_MAX + 1};
	for (size_t i = 0; i < sizeof bad_limits / sizeof *bad_limits; i++)
		assert_int_equal(dl.ops->list(dl.self, true, bad_limits[i], 0, p), HEX_INVALID);
	assert_int_equal(dl.ops->list(dl.self, true, 5, -1, p), HEX_INVALID);
	assert_int_equal(p->count, 0);
	free(p);

	long open = -1;
	assert_int_equal(dl.ops->count_open(dl.self, &open), HEX_OK);
	assert_int_equal(open, 2);
}

static void test_unknown_ids_are_not_found(void **state)
{
	make_dead("ledger", "evt_a", 1, "{}", T0);
	struct dead_letter d;
	int64_t ids[] = {0, -5, 999};
	for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
		assert_int_equal(dl.ops->get(dl.self, ids[i], &d), HEX_NOT_FOUND);
		assert_null(d.payload);
		assert_int_equal(dl.ops->replay(dl.self, ids[i], "ops", T0, &d), HEX_NOT_FOUND);
		assert_int_equal(dl.ops->discard(dl.self, ids[i], "ops", "why", T0, &d),
		                 HEX_NOT_FOUND);
		assert_int_equal(d.id, 0);
	}
	assert_int_equal(pg_conn_depth(conn), 0);
	assert_int_equal(scalar("SELECT count(*) FROM dead_letters WHERE status = 'open'"), 1);
	assert_int_equal(scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL"), 0);
}

static void test_replay_schedules_the_event_again_and_keeps_the_trail(void **state)
{
	int64_t id = make_dead("ledger", "evt_rp", 3, PAYLOAD, T0);
	struct dead_letter d;
	assert_int_equal(dl.ops->replay(dl.self, id, "alice", T0 + 100 * SEC, &d), HEX_OK);
	assert_int_equal(pg_conn_depth(conn), 0);
	assert_int_equal(d.id, id);
	assert_int_equal(d.status, DEAD_LETTER_REPLAYED);
	assert_string_equal(d.resolved_by, "alice");
	assert_int_equal(d.resolved_at_us, T0 + 100 * SEC);
	assert_int_equal(d.attempts, 3);
	assert_string_equal(d.reason, "");
	assert_null(d.payload);

	/* Due at once, for that consumer alone, as the next attempt. */
	struct event_batch b = {0};
	assert_int_equal(outbox.ops->claim(outbox.self, 5, T0 + 100 * SEC, &b), HEX_OK);
	assert_int_equal(b.n, 1);
	assert_string_equal(b.items[0].event_id, "evt_rp");
	assert_string_equal(b.items[0].consumer, "ledger");
	assert_int_equal(b.items[0].attempt, 4);
	assert_string_equal(b.items[0].payload, PAYLOAD);
	assert_int_equal(outbox.ops->published(outbox.self, &b, T0 + 100 * SEC), HEX_OK);
	event_batch_clear(&b);

	/* Once only: a second replay or a discard is a conflict that shows who closed it. */
	assert_int_equal(dl.ops->replay(dl.self, id, "bob", T0 + 101 * SEC, &d), HEX_CONFLICT);
	assert_int_equal(d.status, DEAD_LETTER_REPLAYED);
	assert_string_equal(d.resolved_by, "alice");
	assert_int_equal(dl.ops->discard(dl.self, id, "bob", "late", T0, &d), HEX_CONFLICT);
	assert_int_equal(d.status, DEAD_LETTER_REPLAYED);
	assert_int_equal(scalar("SELECT count(*) FROM outbox WHERE consumer = 'ledger' AND "
	                        "attempt = 4"),
	                 1);
	assert_int_equal(pg_conn_depth(conn), 0);

	/* The replay fails too: a new dead letter; each row tells its own attempts. */
	struct event_msg m = msg_of("evt_rp", 4, PAYLOAD);
	assert_true(fail_ok("ledger", &m, "still broken", T0 + 102 * SEC, 0));
	int64_t id2 = dead_letter_id("ledger", "evt_rp");
	assert_true(id2 > id);
	assert_int_equal(dl.ops->get(dl.self, id, &d), HEX_OK);
	assert_int_equal(d.status, DEAD_LETTER_REPLAYED);
	assert_int_equal(d.nhistory, 3);
	assert_int_equal(d.history[2].attempt, 3);
	free(d.payload);
	assert_int_equal(dl.ops->get(dl.self, id2, &d), HEX_OK);
	assert_int_equal(d.status, DEAD_LETTER_OPEN);
	assert_int_equal(d.attempts, 4);
	assert_int_equal(d.nhistory, 4);
	assert_string_equal(d.history[3].error, "still broken");
	free(d.payload);
}

static void test_replay_of_a_payload_that_is_not_json_changes_nothing(void **state)
{
	struct event_msg m = msg_of("evt_nj", 1, "<xml/>");
	assert_true(fail_ok("ledger", &m, "unparseable", T0, 0));
	int64_t id = dead_letter_id("ledger", "evt_nj");
	struct dead_letter d;
	assert_int_equal(dl.ops->replay(dl.self, id, "alice", T0, &d), HEX_INVALID);
	assert_int_equal(pg_conn_depth(conn), 0);
	assert_int_equal(d.id, 0);
	assert_int_equal(scalar("SELECT count(*) FROM outbox"), 0);
	assert_string_equal(
	    text_of("SELECT status || coalesce(resolved_by, '-') FROM dead_letters"), "open-");
	/* It can only be discarded. */
	assert_int_equal(dl.ops->discard(dl.self, id, "alice", "not JSON", T0, &d), HEX_OK);
	assert_int_equal(d.status, DEAD_LETTER_DISCARDED);
}

static void test_discard_closes_with_a_reason(void **state)
{
	int64_t id = make_dead("ledger", "evt_ds", 1, "{}", T0);
	struct dead_letter d;
	char long_actor[DEAD_LETTER_ACTOR_MAX + 2], long_reason[DEAD_LETTER_REASON_MAX + 2];
	memset(long_actor, 'a', sizeof long_actor - 1);
	long_actor[sizeof long_actor - 1] = '\0';
	memset(long_reason, 'r', sizeof long_reason - 1);
	long_reason[sizeof long_reason - 1] = '\0';
	assert_int_equal(dl.ops->discard(dl.self, id, "bob", "", T0, &d), HEX_INVALID);
	assert_int_equal(dl.ops->discard(dl.self, id, "", "why", T0, &d), HEX_INVALID);
	assert_int_equal(dl.ops->discard(dl.self, id, long_actor, "why", T0, &d), HEX_INVALID);
	assert_int_equal(dl.ops->discard(dl.self, id, "bob", long_reason, T0, &d), HEX_INVALID);
	assert_int_equal(dl.ops->replay(dl.self, id, "", T0, &d), HEX_INVALID);
	assert_int_equal(dl.ops->replay(dl.self, id, long_actor, T0, &d), HEX_INVALID);
	assert_string_equal(text_of("SELECT status FROM dead_letters"), "open");

	assert_int_equal(dl.ops->discard(dl.self, id, "bob", "duplicate of evt_9", T0 + 7, &d),
	                 HEX_OK);
	assert_int_equal(d.status, DEAD_LETTER_DISCARDED);
	assert_string_equal(d.reason, "duplicate of evt_9");
	assert_string_equal(d.resolved_by, "bob");
	assert_int_equal(d.resolved_at_us, T0 + 7);
	assert_int_equal(dl.ops->get(dl.self, id, &d), HEX_OK);
	assert_string_equal(d.reason, "duplicate of evt_9");
	assert_int_equal(d.nhistory, 1);
	free(d.payload);

	assert_int_equal(dl.ops->discard(dl.self, id, "carol", "again", T0, &d), HEX_CONFLICT);
	assert_string_equal(d.resolved_by, "bob");
	assert_int_equal(dl.ops->replay(dl.self, id, "carol", T0, &d), HEX_CONFLICT);
	assert_int_equal(d.status, DEAD_LETTER_DISCARDED);
	assert_int_equal(scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL"), 0);
	long open = -1;
	assert_int_equal(dl.ops->count_open(dl.self, &open), HEX_OK);
	assert_int_equal(open, 0);
}

static void test_history_keeps_the_newest_attempts(void **state)
{
	int64_t id = make_dead("ledger", "evt_h", DEAD_LETTER_HISTORY_MAX + 4, "{}", T0);
	struct dead_letter d;
	assert_int_equal(dl.ops->get(dl.self, id, &d), HEX_OK);
	assert_int_equal(d.attempts, DEAD_LETTER_HISTORY_MAX + 4);
	assert_int_equal(d.nhistory, DEAD_LETTER_HISTORY_MAX);
	assert_int_equal(d.history[0].attempt, 5);
	assert_string_equal(d.history[0].error, "failure 5");
	for (int i = 1; i < d.nhistory; i++)
		assert_int_equal(d.history[i].attempt, d.history[i - 1].attempt + 1);
	assert_int_equal(d.history[DEAD_LETTER_HISTORY_MAX - 1].attempt,
	                 DEAD_LETTER_HISTORY_MAX + 4);
	free(d.payload);
}

static void test_the_schema_guards_the_rules_itself(void **state)
{
	make_dead("ledger", "evt_g", 1, "{}", T0);
	const char *refused[] = {
	    /* Thrown away without a reason, or closed without who and when. */
	    "UPDATE dead_letters SET status = 'discarded', resolved_at = now(), "
	    "resolved_by = 'x'",
	    "UPDATE dead_letters SET status = 'discarded', resolved_at = now(), "
	    "resolved_by = 'x', reason = ''",
	    "UPDATE dead_letters SET status = 'replayed', resolved_at = now()",
	    "UPDATE dead_letters SET status = 'replayed', resolved_by = 'x'",
	    "UPDATE dead_letters SET status = 'lost'",
	    /* A second open row for the same consumer and event. */
	    "INSERT INTO dead_letters (consumer, event_id, topic, payload, attempts, error) "
	    "VALUES ('ledger', 'evt_g', 't', '', 1, '')",
	    /* Names and sizes the structs cannot hold. */
	    "INSERT INTO processed_events (consumer, event_id) VALUES ('Ledger', 'e')",
	    "INSERT INTO processed_events (consumer, event_id) VALUES ('ledger', '')",
	    "INSERT INTO event_failures VALUES ('ledger', 'e', 1, repeat('x', 512), now())",
	    "INSERT INTO event_failures VALUES ('ledger', 'e', 0, '', now())",
	    "INSERT INTO outbox (event_id, topic, payload) VALUES (repeat('x', 256), 't', '{}')",
	    "INSERT INTO outbox (event_id, topic, payload, consumer) VALUES ('e', 't', '{}', 'A')",
	    "INSERT INTO outbox (event_id, topic, payload, attempt) VALUES ('e', 't', '{}', 0)",
	};
	for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
		if (raw_ok(refused[i]))
			fail_msg("accepted: %s", refused[i]);
	assert_true(raw_ok("UPDATE dead_letters SET status = 'discarded', resolved_at = now(), "
	                   "resolved_by = 'x', reason = 'r'"));
	/* Closed, the event may die again. */
	assert_true(raw_ok("INSERT INTO dead_letters (consumer, event_id, topic, payload, "
	                   "attempts, error) VALUES ('ledger', 'evt_g', 't', '', 1, '')"));
	/* One delivery per (topic, event, consumer, attempt). */
	assert_true(
	    raw_ok("INSERT INTO outbox (event_id, topic, payload) VALUES ('e', 't', '{}')"));
	assert_false(
	    raw_ok("INSERT INTO outbox (event_id, topic, payload) VALUES ('e', 't', '{}')"));
	assert_true(raw_ok("INSERT INTO outbox (event_id, topic, payload, consumer, attempt) "
	                   "VALUES ('e', 't', '{}', 'ledger', 2)"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_claim_takes_due_rows_oldest_first, setup),
	    cmocka_unit_test_setup(test_a_batch_commits_its_events_and_failures_together, setup),
	    cmocka_unit_test_setup(test_claim_limit_out_of_range_is_invalid, setup),
	    cmocka_unit_test_setup(test_release_leaves_rows_for_the_next_claim, setup),
	    cmocka_unit_test_setup(test_a_held_claim_is_skipped_not_waited_for, setup),
	    cmocka_unit_test_setup(test_two_relays_share_every_row_once, setup),
	    cmocka_unit_test_setup(test_published_refuses_rows_it_did_not_claim, setup),
	    cmocka_unit_test_setup(test_lag_counts_unpublished_and_ages_the_oldest_due, setup),
	    cmocka_unit_test_setup(test_webhook_outbox_rows_are_claimed_as_first_deliveries, setup),
	    cmocka_unit_test_setup(test_begin_says_first_once_per_consumer, setup),
	    cmocka_unit_test_setup(test_begin_refuses_bad_names_and_touches_nothing, setup),
	    cmocka_unit_test_setup(test_the_record_commits_with_the_work_or_not_at_all, setup),
	    cmocka_unit_test_setup(test_a_failed_repository_call_inside_keeps_the_record, setup),
	    cmocka_unit_test_setup(test_a_second_member_waits_for_the_first, setup),
	    cmocka_unit_test_setup(test_fail_with_a_retry_schedules_the_next_attempt, setup),
	    cmocka_unit_test_setup(test_fail_without_a_retry_opens_a_dead_letter, setup),
	    cmocka_unit_test_setup(test_fail_dead_letters_what_could_never_be_retried, setup),
	    cmocka_unit_test_setup(test_garbled_text_still_reaches_the_dead_letters, setup),
	    cmocka_unit_test_setup(test_fail_refuses_what_names_no_event, setup),
	    cmocka_unit_test_setup(test_list_pages_newest_first, setup),
	    cmocka_unit_test_setup(test_unknown_ids_are_not_found, setup),
	    cmocka_unit_test_setup(test_replay_schedules_the_event_again_and_keeps_the_trail,
	                           setup),
	    cmocka_unit_test_setup(test_replay_of_a_payload_that_is_not_json_changes_nothing,
	                           setup),
	    cmocka_unit_test_setup(test_discard_closes_with_a_reason, setup),
	    cmocka_unit_test_setup(test_history_keeps_the_newest_attempts, setup),
	    cmocka_unit_test_setup(test_the_schema_guards_the_rules_itself, setup),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

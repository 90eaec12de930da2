/*
 * pg_payment_repo against a real PostgreSQL, alone and under the payment service: request
 * storage, concurrent duplicates, Stripe events in one transaction, every delivery order,
 * the membership hook, and the schema's own checks.
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

#include "adapters/postgres/pg_conn.h"
#include "adapters/postgres/pg_payment_repo.h"
#include "adapters/postgres/pg_user_repo.h"
#include "core/payment_service.h"
#include "support/pg_testdb.h"

#define T0          INT64_C(1764439200123456) /* 2025-11-29T18:00:00.123456Z */
#define UNKNOWN_ID  "00000000-0000-4000-8000-0000deadbeef"
#define PAYLOAD_FMT "{\"id\": \"%s\", \"object\": \"event\", \"data\": {\"n\": [1, 2.50]}}"
#define ROUNDS      12

/* ---- test doubles of the ports that are not PostgreSQL (thread-safe) ---- */

static atomic_int id_counter;
static atomic_llong clock_us;

static void test_new_id(void *self, char out[HEX_ID_LEN + 1])
{
	/* Not in creation order, so that ordering by id is really tested. */
	unsigned n = (unsigned)atomic_fetch_add(&id_counter, 1) + 1;
	snprintf(out, HEX_ID_LEN + 1, "%08x-0000-4000-8000-%012x", n * 2654435761u, n);
}

static const struct id_source_ops test_ids_ops = {.new_id = test_new_id};

static int64_t test_now_us(void *self)
{
	return atomic_fetch_add(&clock_us, 1000);
}

static const struct clock_ops test_clock_ops = {.now_us = test_now_us};

/* A user cache that only records deletions. */
struct test_cache {
	pthread_mutex_t mu;
	int dels;
	char last[HEX_ID_LEN + 1];
};

static enum hex_status test_cache_get(void *self, const char *id, struct user *out)
{
	return HEX_NOT_FOUND;
}

static void test_cache_put(void *self, const struct user *u)
{
}

static enum hex_status test_cache_del(void *self, const char *id)
{
	struct test_cache *c = self;
	pthread_mutex_lock(&c->mu);
	c->dels++;
	hex_strlcpy(c->last, id, sizeof c->last);
	pthread_mutex_unlock(&c->mu);
	return HEX_OK;
}

static const struct user_cache_ops test_cache_ops = {
    .get = test_cache_get, .put = test_cache_put, .del = test_cache_del};

/*
 * A provider with Stripe's idempotency: one intent per key, replayed after. Before acting
 * it checks, on its own connection, that the payment of the key is committed: request
 * storage means the provider never hears of a payment the database could lose.
 */
#define GW_MAX 256

struct test_gateway {
	pthread_mutex_t mu;
	PGconn *check;
	char keys[GW_MAX][HEX_IDEMPOTENCY_KEY_MAX + 1];
	int nintents;
	int calls;
	int unstored_calls;
	int fail_next;    /* answer HEX_UNAVAILABLE before acting, this many times */
	bool lose_next;   /* act, then answer HEX_UNAVAILABLE */
	bool refuse_next; /* answer HEX_INVALID */
};

static bool gateway_row_committed(struct test_gateway *g, const char *key)
{
	const char *params[] = {key};
	PGresult *r = PQexecParams(
	    g->check, "SELECT count(*) FROM payments WHERE stripe_idempotency_key = $1", 1, NULL,
	    params, NULL, NULL, 0);
	bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "1") == 0;
	PQclear(r);
	return ok;
}

static enum hex_status test_gateway_create_intent(void *self,
                                                  const struct gateway_intent_request *req,
                                                  struct gateway_intent *out, struct hex_err *err)
{
	struct test_gateway *g = self;
	enum hex_status st = HEX_OK;
	pthread_mutex_lock(&g->mu);
	g->calls++;
	if (!gateway_row_committed(g, req->idempotency_key))
		g->unstored_calls++;
	if (g->fail_next > 0) {
		g->fail_next--;
		st = hex_fail(err, HEX_UNAVAILABLE, NULL, "timed out before sending");
		goto out;
	}
	if (g->refuse_next) {
		g->refuse_next = false;
		st = hex_fail(err, HEX_INVALID, "amount", "Amount must be at least 50 cents");
		goto out;
	}
	int i = 0;
	while (i < g->nintents && strcmp(g->keys[i], req->idempotency_key) != 0)
		i++;
	if (i == g->nintents) {
		if (g->nintents == GW_MAX)
			abort(); /* no cmocka assertion off the main thread */
		hex_strlcpy(g->keys[g->nintents++], req->idempotency_key, sizeof g->keys[0]);
	}
	*out = (struct gateway_intent){.status = PAYMENT_REQUIRES_PAYMENT_METHOD,
	                               .amount = req->amount};
	snprintf(out->id, sizeof out->id, "pi_test_%d", i + 1);
	snprintf(out->client_secret, sizeof out->client_secret, "pi_test_%d_secret_abc", i + 1);
	memcpy(out->currency, req->currency, sizeof out->currency);
	if (g->lose_next) {
		g->lose_next = false;
		st = hex_fail(err, HEX_UNAVAILABLE, NULL, "timed out after sending");
	}
out:
	pthread_mutex_unlock(&g->mu);
	return st;
}

static const struct payment_gateway_ops test_gateway_ops = {.create_intent =
                                                                test_gateway_create_intent};

/* ---- fixture ---- */

static struct pg_testdb db;
static struct pg_conn *conn, *conn2;
static struct payment_repo repo, repo2;
static struct user_repo users;
static struct test_gateway gateway = {.mu = PTHREAD_MUTEX_INITIALIZER};
static struct test_cache cache = {.mu = PTHREAD_MUTEX_INITIALIZER};
static struct payment_service svc, svc2;
static int user_counter;

static struct payment_service service_on(struct payment_repo r)
{
	return (struct payment_service){
	    .repo = r,
	    .gateway = {.ops = &test_gateway_ops, .self = &gateway},
	    .cache = {.ops = &test_cache_ops, .self = &cache},
	    .clock = {.ops = &test_clock_ops, .self = NULL},
	    .ids = {.ops = &test_ids_ops, .self = NULL},
	};
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
	repo = pg_payment_repo_port(conn);
	repo2 = pg_payment_repo_port(conn2);
	users = pg_user_repo_port(conn);
	struct hex_err err = {0};
	assert_int_equal(pg_conn_prepare_all(conn, &err), HEX_OK);
	assert_int_equal(pg_conn_prepare_all(conn2, &err), HEX_OK);
	gateway.check = PQconnectdb(db.conninfo);
	assert_int_equal(PQstatus(gateway.check), CONNECTION_OK);
	svc = service_on(repo);
	svc2 = service_on(repo2);
	return 0;
}

static int group_teardown(void **state)
{
	PQfinish(gateway.check);
	pg_conn_free(conn);
	pg_conn_free(conn2);
	pg_testdb_drop(&db);
	return 0;
}

static int setup(void **state)
{
	pg_testdb_exec(&db, "TRUNCATE payments, stripe_events, outbox, membership_events, users "
	                    "RESTART IDENTITY CASCADE");
	atomic_store(&clock_us, T0);
	pthread_mutex_lock(&gateway.mu);
	gateway.nintents = gateway.calls = gateway.unstored_calls = gateway.fail_next = 0;
	gateway.lose_next = gateway.refuse_next = false;
	pthread_mutex_unlock(&gateway.mu);
	cache.dels = 0;
	cache.last[0] = '\0';
	return 0;
}

/* ---- helpers ---- */

static long long count_sql(const char *fmt, const char *arg)
{
	char sql[1024];
	snprintf(sql, sizeof sql, fmt, arg);
	return pg_testdb_scalar(&db, sql);
}

static struct user add_user(void)
{
	struct user u = {.membership = MEMBERSHIP_FREE, .role = ROLE_USER};
	test_new_id(NULL, u.id);
	snprintf(u.email, sizeof u.email, "user%d@example.com", ++user_counter);
	u.created_at_us = u.updated_at_us = T0;
	assert_int_equal(users.ops->insert(users.self, &u, "$y$hash"), HEX_OK);
	return u;
}

static enum membership membership_of(const char *user_id)
{
	struct user u;
	assert_int_equal(users.ops->get(users.self, user_id, &u), HEX_OK);
	return u.membership;
}

static struct payment_record make_record(const char *user_id, const char *client_key,
                                         int64_t created_us)
{
	struct payment_record rec = {0};
	test_new_id(NULL, rec.payment.id);
	hex_strlcpy(rec.payment.user_id, user_id, sizeof rec.payment.user_id);
	rec.payment.amount = 1099;
	memcpy(rec.payment.currency, "usd", 4);
	rec.payment.purpose = PURPOSE_WALLET_TOP_UP;
	rec.payment.status = PAYMENT_REQUIRES_PAYMENT_METHOD;
	rec.payment.created_at_us = rec.payment.updated_at_us = created_us;
	if (client_key != NULL)
		hex_strlcpy(rec.client_key, client_key, sizeof rec.client_key);
	snprintf(rec.stripe_idempotency_key, sizeof rec.stripe_idempotency_key, "hexpay_%s",
	         rec.payment.id);
	return rec;
}

static void assert_payment_equal(const struct payment *a, const struct payment *b)
{
	assert_string_equal(a->id, b->id);
	assert_string_equal(a->user_id, b->user_id);
	assert_int_equal(a->amount, b->amount);
	assert_string_equal(a->currency, b->currency);
	assert_int_equal(a->purpose, b->purpose);
	assert_int_equal(a->status, b->status);
	assert_string_equal(a->stripe_payment_intent_id, b->stripe_payment_intent_id);
	assert_string_equal(a->client_secret, b->client_secret);
	assert_int_equal(a->created_at_us, b->created_at_us);
	assert_int_equal(a->updated_at_us, b->updated_at_us);
}

static struct payment create_ok(struct payment_service *s, const char *user_id, const char *purpose,
                                const char *key)
{
	struct payment_create_request rq = {
	    .user_id = user_id,
	    .amount = 2500,
	    .currency = "EUR",
	    .purpose = purpose,
	    .client_key = key,
	};
	struct payment p;
	struct hex_err err = {0};
	enum hex_status st = payment_service_create(s, &rq, &p, &err);
	if (st != HEX_OK)
		fail_msg("create: %s: %s", hex_status_name(st), err.message);
	return p;
}

/* An event with a real JSON payload (owned by the caller: free ev->payload). */
static struct payment_event make_event(const char *id, enum payment_event_kind kind,
                                       const struct payment *p)
{
	struct payment_event ev = {.kind = kind, .created_s = 1764439200};
	hex_strlcpy(ev.id, id, sizeof ev.id);
	hex_strlcpy(ev.type, payment_event_kind_name(kind), sizeof ev.type);
	if (p != NULL) {
		hex_strlcpy(ev.intent_id, p->stripe_payment_intent_id, sizeof ev.intent_id);
		hex_strlcpy(ev.payment_id, p->id, sizeof ev.payment_id);
		ev.amount = p->amount;
		memcpy(ev.currency, p->currency, sizeof ev.currency);
	}
	char *payload = malloc(512);
	assert_non_null(payload);
	snprintf(payload, 512, PAYLOAD_FMT, id);
	ev.payload = payload;
	ev.payload_len = strlen(payload);
	return ev;
}

static bool apply_ok(struct payment_service *s, const struct payment_event *ev)
{
	bool dup = true;
	struct hex_err err = {0};
	enum hex_status st = payment_service_apply_event(s, ev, &dup, &err);
	if (st != HEX_OK)
		fail_msg("apply %s: %s: %s", ev->id, hex_status_name(st), err.message);
	return dup;
}

static enum payment_status status_of(const char *id)
{
	struct payment p;
	assert_int_equal(repo.ops->get(repo.self, id, &p), HEX_OK);
	return p.status;
}

/* ---- the repository alone ---- */

static void test_insert_get_find_round_trip(void **state)
{
	struct user u = add_user();
	struct payment_record rec = make_record(u.id, "key-1", T0);
	rec.payment.purpose = PURPOSE_MEMBERSHIP;
	rec.payment.amount = HEX_AMOUNT_MAX;
	memcpy(rec.payment.currency, "jpy", 4);
	rec.payment.updated_at_us = T0 + 1;
	assert_int_equal(repo.ops->insert(repo.self, &rec), HEX_OK);

	struct payment got;
	memset(&got, 0x5a, sizeof got);
	assert_int_equal(repo.ops->get(repo.self, rec.payment.id, &got), HEX_OK);
	assert_payment_equal(&got, &rec.payment);

	struct payment_record found;
	memset(&found, 0x5a, sizeof found);
	assert_int_equal(repo.ops->find_by_client_key(repo.self, u.id, "key-1", &found), HEX_OK);
	assert_payment_equal(&found.payment, &rec.payment);
	assert_string_equal(found.client_key, "key-1");
	assert_string_equal(found.stripe_idempotency_key, rec.stripe_idempotency_key);
	assert_string_equal(found.failure_message, "");

	/* Absent values are NULL in the table, not empty strings. */
	assert_int_equal(count_sql("SELECT count(*) FROM payments WHERE id = '%s' AND "
	                           "stripe_payment_intent_id IS NULL AND client_secret IS NULL "
	                           "AND failure_message IS NULL AND purpose = 'membership' AND "
	                           "created_at = '2025-11-29T18:00:00.123456Z'",
	                           rec.payment.id),
	                 1);
	struct payment_record keyless = make_record(u.id, NULL, T0);
	assert_int_equal(repo.ops->insert(repo.self, &keyless), HEX_OK);
	assert_int_equal(count_sql("SELECT count(*) FROM payments WHERE id = '%s' AND "
	                           "client_key IS NULL",
	                           keyless.payment.id),
	                 1);
}

static void test_lookups_of_unknown_or_malformed_ids(void **state)
{
	struct payment p;
	struct payment_record rec;
	struct user u = add_user();
	assert_int_equal(repo.ops->get(repo.self, UNKNOWN_ID, &p), HEX_NOT_FOUND);
	assert_int_equal(repo.ops->get(repo.self, "nope", &p), HEX_NOT_FOUND);
	assert_int_equal(repo.ops->get(repo.self, "'; DROP TABLE payments; --", &p), HEX_NOT_FOUND);
	assert_int_equal(repo.ops->find_by_client_key(repo.self, u.id, "none", &rec),
	                 HEX_NOT_FOUND);
	assert_int_equal(repo.ops->find_by_client_key(repo.self, "nope", "k", &rec), HEX_NOT_FOUND);
	assert_int_equal(repo.ops->find_by_client_key(repo.self, u.id, "", &rec), HEX_NOT_FOUND);
	assert_int_equal(
	    repo.ops->attach_intent(repo.self, UNKNOWN_ID, "pi_1", "s", PAYMENT_PROCESSING, T0, &p),
	    HEX_NOT_FOUND);
	assert_int_equal(repo.ops->mark_failed(repo.self, UNKNOWN_ID, "no", T0, &p), HEX_NOT_FOUND);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM payments"), 0);
}

static void test_unique_rules_of_request_storage(void **state)
{
	struct user a = add_user(), b = add_user();
	struct payment_record first = make_record(a.id, "k", T0);
	assert_int_equal(repo.ops->insert(repo.self, &first), HEX_OK);

	struct payment_record same_key = make_record(a.id, "k", T0);
	assert_int_equal(repo.ops->insert(repo.self, &same_key), HEX_CONFLICT);
	struct payment_record other_user = make_record(b.id, "k", T0);
	assert_int_equal(repo.ops->insert(repo.self, &other_user), HEX_OK);
	struct payment_record same_stripe_key = make_record(a.id, NULL, T0);
	hex_strlcpy(same_stripe_key.stripe_idempotency_key, first.stripe_idempotency_key,
	            sizeof same_stripe_key.stripe_idempotency_key);
	assert_int_equal(repo.ops->insert(repo.self, &same_stripe_key), HEX_CONFLICT);
	struct payment_record same_id = make_record(a.id, NULL, T0);
	memcpy(same_id.payment.id, first.payment.id, sizeof same_id.payment.id);
	assert_int_equal(repo.ops->insert(repo.self, &same_id), HEX_CONFLICT);
	/* Without a key, any number of payments. */
	for (int i = 0; i < 3; i++) {
		struct payment_record r = make_record(a.id, NULL, T0);
		assert_int_equal(repo.ops->insert(repo.self, &r), HEX_OK);
	}
	struct payment_record bad = make_record("not-a-uuid", NULL, T0);
	assert_int_equal(repo.ops->insert(repo.self, &bad), HEX_INVALID);

	/* An intent belongs to one payment. */
	struct payment p;
	assert_int_equal(repo.ops->attach_intent(repo.self, first.payment.id, "pi_one", "s1",
	                                         PAYMENT_REQUIRES_PAYMENT_METHOD, T0, &p),
	                 HEX_OK);
	assert_int_equal(repo.ops->attach_intent(repo.self, other_user.payment.id, "pi_one", "s2",
	                                         PAYMENT_REQUIRES_PAYMENT_METHOD, T0, &p),
	                 HEX_CONFLICT);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM payments"), 5);
}

static void test_schema_checks_refuse_what_the_core_refuses(void **state)
{
	struct user u = add_user();
	struct payment_record rec = make_record(u.id, NULL, T0);
	memcpy(rec.payment.currency, "USD", 4);
	assert_int_equal(repo.ops->insert(repo.self, &rec), HEX_INTERNAL);
	rec = make_record(u.id, NULL, T0);
	rec.payment.amount = 0;
	assert_int_equal(repo.ops->insert(repo.self, &rec), HEX_INTERNAL);
	rec = make_record(u.id, NULL, T0);
	rec.stripe_idempotency_key[0] = '\0';
	assert_int_equal(repo.ops->insert(repo.self, &rec), HEX_INTERNAL);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM payments"), 0);
	pg_testdb_exec(&db, "DO $$ BEGIN "
	                    "INSERT INTO payments (id, user_id, amount, currency, purpose, status, "
	                    "stripe_idempotency_key) VALUES (gen_random_uuid(), gen_random_uuid(), "
	                    "1, 'usd', 'wallet_top_up', 'paid', 'k'); "
	                    "RAISE EXCEPTION 'status check missing'; "
	                    "EXCEPTION WHEN check_violation THEN NULL; END $$");
}

/* Every (from, to) pair: the status array the adapter builds agrees with the core. */
static void test_attach_moves_status_only_forward(void **state)
{
	struct user u = add_user();
	for (int from = 0; from <= PAYMENT_REFUNDED; from++) {
		for (int to = 0; to <= PAYMENT_REFUNDED; to++) {
			struct payment_record rec = make_record(u.id, NULL, T0);
			rec.payment.status = (enum payment_status)from;
			assert_int_equal(repo.ops->insert(repo.self, &rec), HEX_OK);
			char intent[32];
			snprintf(intent, sizeof intent, "pi_%d_%d", from, to);
			struct payment p;
			assert_int_equal(repo.ops->attach_intent(repo.self, rec.payment.id, intent,
			                                         "secret", (enum payment_status)to,
			                                         T0 + 5, &p),
			                 HEX_OK);
			int want = to > from ? to : from;
			if ((int)p.status != want)
				fail_msg("%s -> %s gave %s",
				         payment_status_name((enum payment_status)from),
				         payment_status_name((enum payment_status)to),
				         payment_status_name(p.status));
			assert_string_equal(p.stripe_payment_intent_id, intent);
			assert_string_equal(p.client_secret, "secret");
			assert_int_equal(p.updated_at_us, T0 + 5);
			assert_int_equal(status_of(rec.payment.id), want);

			struct payment f;
			assert_int_equal(repo.ops->mark_failed(repo.self, rec.payment.id,
			                                       "declined", T0 + 6, &f),
			                 HEX_OK);
			assert_int_equal(f.status, want < PAYMENT_FAILED ? PAYMENT_FAILED : want);
		}
	}
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM payments WHERE "
	                                       "failure_message = 'declined'"),
	                 25);
}

static void test_list_pages_newest_first(void **state)
{
	struct user a = add_user(), b = add_user();
	char ids[7][HEX_ID_LEN + 1];
	int64_t times[7] = {T0, T0 + 1, T0 + 1, T0 + 1, T0 + 2, T0 + 3, T0 + 3};
	for (int i = 0; i < 7; i++) {
		struct payment_record r = make_record(i % 2 == 0 ? a.id : b.id, NULL, times[i]);
		if (i == 4)
			r.payment.status = PAYMENT_SUCCEEDED;
		assert_int_equal(repo.ops->insert(repo.self, &r), HEX_OK);
		memcpy(ids[i], r.payment.id, sizeof ids[i]);
	}
	/* The expected order, from the database's own sort. */
	char want[7][HEX_ID_LEN + 1];
	PGconn *pc = PQconnectdb(db.conninfo);
	PGresult *r = PQexec(pc, "SELECT id FROM payments ORDER BY created_at DESC, id DESC");
	assert_int_equal(PQntuples(r), 7);
	for (int i = 0; i < 7; i++)
		hex_strlcpy(want[i], PQgetvalue(r, i, 0), sizeof want[i]);
	PQclear(r);
	PQfinish(pc);

	static struct payment_page page;
	struct payment_cursor cur;
	struct payment_filter f = {.status = -1, .limit = 3};
	int seen = 0;
	for (;;) {
		assert_int_equal(repo.ops->list(repo.self, &f, &page), HEX_OK);
		for (int i = 0; i < page.count; i++)
			assert_string_equal(page.items[i].id, want[seen++]);
		if (!page.has_more)
			break;
		cur.created_at_us = page.items[page.count - 1].created_at_us;
		memcpy(cur.id, page.items[page.count - 1].id, sizeof cur.id);
		f.after = &cur;
	}
	assert_int_equal(seen, 7);

	f = (struct payment_filter){.status = -1, .limit = 100, .user_id = a.id};
	assert_int_equal(repo.ops->list(repo.self, &f, &page), HEX_OK);
	assert_int_equal(page.count, 4);
	assert_false(page.has_more);
	for (int i = 0; i < page.count; i++)
		assert_string_equal(page.items[i].user_id, a.id);
	f.status = PAYMENT_SUCCEEDED;
	assert_int_equal(repo.ops->list(repo.self, &f, &page), HEX_OK);
	assert_int_equal(page.count, 1);
	assert_string_equal(page.items[0].id, ids[4]);
	f.user_id = b.id;
	assert_int_equal(repo.ops->list(repo.self, &f, &page), HEX_OK);
	assert_int_equal(page.count, 0);

	struct payment_cursor bad = {.id = "x"};
	struct payment_filter invalid[] = {
	    {.status = -1, .limit = 0},
	    {.status = -1, .limit = HEX_LIST_MAX + 1},
	    {.status = 9, .limit = 10},
	    {.status = -1, .limit = 10, .user_id = "x"},
	    {.status = -1, .limit = 10, .after = &bad},
	};
	for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
		assert_int_equal(repo.ops->list(repo.self, &invalid[i], &page), HEX_INVALID);
}

static void test_payment_outlives_its_user(void **state)
{
	struct user u = add_user();
	struct payment p = create_ok(&svc, u.id, "wallet_top_up", NULL);
	assert_int_equal(users.ops->remove(users.self, u.id), HEX_OK);
	struct payment got;
	assert_int_equal(repo.ops->get(repo.self, p.id, &got), HEX_OK);
	assert_payment_equal(&got, &p);
}

/* ---- the service on PostgreSQL: request storage ---- */

static void test_service_create_and_replay(void **state)
{
	struct user u = add_user();
	struct payment p = create_ok(&svc, u.id, "membership", "order-7");
	assert_string_equal(p.currency, "eur");
	assert_string_equal(p.stripe_payment_intent_id, "pi_test_1");
	assert_string_equal(p.client_secret, "pi_test_1_secret_abc");
	assert_int_equal(count_sql("SELECT count(*) FROM payments WHERE stripe_idempotency_key = "
	                           "'hexpay_%s'",
	                           p.id),
	                 1);
	struct payment again = create_ok(&svc, u.id, "membership", "order-7");
	assert_payment_equal(&again, &p);
	assert_int_equal(gateway.calls, 1);

	struct payment_create_request other = {.user_id = u.id,
	                                       .amount = 2501,
	                                       .currency = "eur",
	                                       .purpose = "membership",
	                                       .client_key = "order-7"};
	struct payment out;
	struct hex_err err = {0};
	assert_int_equal(payment_service_create(&svc, &other, &out, &err), HEX_CONFLICT);
	assert_string_equal(err.code, "idempotency_key_reused");
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM payments"), 1);
	assert_int_equal(gateway.calls, 1);
	assert_int_equal(gateway.unstored_calls, 0);
}

static void test_service_timeout_then_retry_uses_the_stored_key(void **state)
{
	struct user u = add_user();
	struct payment_create_request rq = {.user_id = u.id,
	                                    .amount = 700,
	                                    .currency = "gbp",
	                                    .purpose = "wallet_top_up",
	                                    .client_key = "retry"};
	struct payment out;
	struct hex_err err = {0};
	gateway.fail_next = 1;
	assert_int_equal(payment_service_create(&svc, &rq, &out, &err), HEX_UNAVAILABLE);
	gateway.lose_next = true;
	assert_int_equal(payment_service_create(&svc, &rq, &out, &err), HEX_UNAVAILABLE);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM payments WHERE "
	                                       "stripe_payment_intent_id IS NULL"),
	                 1);
	assert_int_equal(payment_service_create(&svc, &rq, &out, &err), HEX_OK);
	assert_int_equal(gateway.calls, 3);
	assert_int_equal(gateway.nintents, 1);
	char want[64];
	snprintf(want, sizeof want, "hexpay_%s", out.id);
	assert_string_equal(gateway.keys[0], want);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM payments"), 1);
	assert_int_equal(gateway.unstored_calls, 0);
}

static void test_service_refusal_is_stored_and_replayed(void **state)
{
	struct user u = add_user();
	struct payment_create_request rq = {.user_id = u.id,
	                                    .amount = 10,
	                                    .currency = "usd",
	                                    .purpose = "wallet_top_up",
	                                    .client_key = "tiny"};
	struct payment out;
	struct hex_err err = {0};
	gateway.refuse_next = true;
	assert_int_equal(payment_service_create(&svc, &rq, &out, &err), HEX_INVALID);
	assert_string_equal(err.message, "Amount must be at least 50 cents");
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM payments WHERE status = "
	                                       "'failed' AND failure_message = 'Amount must be at "
	                                       "least 50 cents'"),
	                 1);
	struct hex_err again = {0};
	assert_int_equal(payment_service_create(&svc, &rq, &out, &again), HEX_INVALID);
	assert_string_equal(again.message, err.message);
	assert_int_equal(gateway.calls, 1);
}

struct racer {
	struct payment_service *svc;
	pthread_barrier_t *start;
	const char *user_id;
	const char *key;
	enum payment_event_kind kind; /* for event racers */
	const struct payment_event *ev;
	enum hex_status st;
	struct payment out;
	bool dup;
};

static void *race_create(void *arg)
{
	struct racer *r = arg;
	struct payment_create_request rq = {.user_id = r->user_id,
	                                    .amount = 4200,
	                                    .currency = "usd",
	                                    .purpose = "wallet_top_up",
	                                    .client_key = r->key};
	pthread_barrier_wait(r->start);
	r->st = payment_service_create(r->svc, &rq, &r->out, NULL);
	return NULL;
}

static void test_two_threads_same_client_key_make_one_payment(void **state)
{
	struct user u = add_user();
	for (int round = 0; round < ROUNDS; round++) {
		char key[32];
		snprintf(key, sizeof key, "double-click-%d", round);
		pthread_barrier_t start;
		pthread_barrier_init(&start, NULL, 2);
		struct racer a = {.svc = &svc, .start = &start, .user_id = u.id, .key = key};
		struct racer b = {.svc = &svc2, .start = &start, .user_id = u.id, .key = key};
		pthread_t ta, tb;
		assert_int_equal(pthread_create(&ta, NULL, race_create, &a), 0);
		assert_int_equal(pthread_create(&tb, NULL, race_create, &b), 0);
		pthread_join(ta, NULL);
		pthread_join(tb, NULL);
		pthread_barrier_destroy(&start);
		/* Both succeed with the one payment (the loser resumed the winner's request). */
		assert_int_equal(a.st, HEX_OK);
		assert_int_equal(b.st, HEX_OK);
		assert_string_equal(a.out.id, b.out.id);
		assert_string_equal(a.out.stripe_payment_intent_id, b.out.stripe_payment_intent_id);
		assert_int_equal(
		    count_sql("SELECT count(*) FROM payments WHERE client_key = '%s'", key), 1);
	}
	assert_int_equal(gateway.nintents, ROUNDS);
	assert_int_equal(gateway.unstored_calls, 0);
}

/* ---- the service on PostgreSQL: events ---- */

static void test_each_kind_and_its_rows(void **state)
{
	static const struct {
		enum payment_event_kind kind;
		enum payment_status want;
	} cases[] = {
	    {EVENT_INTENT_SUCCEEDED, PAYMENT_SUCCEEDED},
	    {EVENT_INTENT_FAILED, PAYMENT_FAILED},
	    {EVENT_CHECKOUT_COMPLETED, PAYMENT_SUCCEEDED},
	    {EVENT_CHARGE_REFUNDED, PAYMENT_REFUNDED},
	    {EVENT_OTHER, PAYMENT_REQUIRES_PAYMENT_METHOD},
	};
	struct user u = add_user();
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct payment p = create_ok(&svc, u.id, "wallet_top_up", NULL);
		char id[32];
		snprintf(id, sizeof id, "evt_kind_%zu", i);
		struct payment_event ev = make_event(id, cases[i].kind, &p);
		assert_false(apply_ok(&svc, &ev));
		assert_int_equal(status_of(p.id), cases[i].want);
		assert_int_equal(
		    count_sql("SELECT count(*) FROM stripe_events WHERE id = '%s'", id), 1);
		/* The outbox row carries the event's JSON exactly as received. */
		char sql[1024];
		snprintf(
		    sql, sizeof sql,
		    "SELECT count(*) FROM outbox WHERE event_id = '%s' AND topic = "
		    "'payment_events' AND published_at IS NULL AND payload::text = '" PAYLOAD_FMT
		    "'",
		    id, id);
		assert_int_equal(pg_testdb_scalar(&db, sql), 1);
		free((char *)ev.payload);
	}
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM stripe_events WHERE "
	                                       "created_at = '2025-11-29T18:00:00Z'"),
	                 5);
	assert_int_equal(cache.dels, 0);
}

static void test_unknown_payment_and_duplicates_are_recorded_once(void **state)
{
	struct payment_event ev = make_event("evt_stranger", EVENT_INTENT_SUCCEEDED, NULL);
	hex_strlcpy(ev.payment_id, UNKNOWN_ID, sizeof ev.payment_id);
	hex_strlcpy(ev.intent_id, "pi_unknown", sizeof ev.intent_id);
	assert_false(apply_ok(&svc, &ev));
	assert_true(apply_ok(&svc, &ev));
	assert_true(apply_ok(&svc2, &ev));
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM stripe_events WHERE id = "
	                                       "'evt_stranger' AND intent_id = 'pi_unknown' AND "
	                                       "payment_id = '" UNKNOWN_ID "'"),
	                 1);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM outbox"), 1);
	free((char *)ev.payload);

	/* Metadata that is no UUID is stored as no payment id, not an error. */
	ev = make_event("evt_junk_meta", EVENT_OTHER, NULL);
	hex_strlcpy(ev.payment_id, "1; DROP TABLE x", sizeof ev.payment_id);
	assert_false(apply_ok(&svc, &ev));
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM stripe_events WHERE id = "
	                                       "'evt_junk_meta' AND payment_id IS NULL"),
	                 1);
	free((char *)ev.payload);
}

static void test_event_learns_the_intent_of_a_payment_without_one(void **state)
{
	struct user u = add_user();
	struct payment_create_request rq = {.user_id = u.id,
	                                    .amount = 700,
	                                    .currency = "usd",
	                                    .purpose = "wallet_top_up",
	                                    .client_key = "k"};
	struct payment out;
	gateway.fail_next = 1;
	assert_int_equal(payment_service_create(&svc, &rq, &out, NULL), HEX_UNAVAILABLE);
	struct payment_record rec;
	assert_int_equal(repo.ops->find_by_client_key(repo.self, u.id, "k", &rec), HEX_OK);

	struct payment_event ev = make_event("evt_learn", EVENT_INTENT_SUCCEEDED, &rec.payment);
	hex_strlcpy(ev.intent_id, "pi_learnt", sizeof ev.intent_id);
	assert_false(apply_ok(&svc, &ev));
	free((char *)ev.payload);
	struct payment got;
	assert_int_equal(repo.ops->get(repo.self, rec.payment.id, &got), HEX_OK);
	assert_string_equal(got.stripe_payment_intent_id, "pi_learnt");
	assert_int_equal(got.status, PAYMENT_SUCCEEDED);

	/* The late answer of the create does not move the status back. */
	assert_int_equal(repo.ops->attach_intent(repo.self, rec.payment.id, "pi_learnt", "sec",
	                                         PAYMENT_REQUIRES_PAYMENT_METHOD, T0, &got),
	                 HEX_OK);
	assert_int_equal(got.status, PAYMENT_SUCCEEDED);

	/* A refund that knows only the intent finds it. */
	ev = make_event("evt_refund_by_intent", EVENT_CHARGE_REFUNDED, NULL);
	hex_strlcpy(ev.intent_id, "pi_learnt", sizeof ev.intent_id);
	assert_false(apply_ok(&svc, &ev));
	free((char *)ev.payload);
	assert_int_equal(status_of(rec.payment.id), PAYMENT_REFUNDED);

	/* An intent another payment already has is not taken, and fails nothing. */
	struct payment other = create_ok(&svc, u.id, "wallet_top_up", NULL);
	struct payment_record lone = make_record(u.id, NULL, T0);
	assert_int_equal(repo.ops->insert(repo.self, &lone), HEX_OK);
	ev = make_event("evt_confused", EVENT_INTENT_FAILED, &lone.payment);
	hex_strlcpy(ev.intent_id, other.stripe_payment_intent_id, sizeof ev.intent_id);
	assert_false(apply_ok(&svc, &ev));
	free((char *)ev.payload);
	assert_int_equal(repo.ops->get(repo.self, lone.payment.id, &got), HEX_OK);
	assert_string_equal(got.stripe_payment_intent_id, "");
	assert_int_equal(got.status, PAYMENT_FAILED);
}

static const enum payment_event_kind moving_kinds[4] = {
    EVENT_INTENT_SUCCEEDED, EVENT_INTENT_FAILED, EVENT_CHARGE_REFUNDED, EVENT_CHECKOUT_COMPLETED};

static bool next_permutation(int *a, int n)
{
	int i = n - 2;
	while (i >= 0 && a[i] >= a[i + 1])
		i--;
	if (i < 0)
		return false;
	int j = n - 1;
	while (a[j] <= a[i])
		j--;
	int t = a[i];
	a[i] = a[j];
	a[j] = t;
	for (int l = i + 1, r = n - 1; l < r; l++, r--) {
		t = a[l];
		a[l] = a[r];
		a[r] = t;
	}
	return true;
}

static void test_every_delivery_order_ends_in_the_same_state(void **state)
{
	int runs = 0;
	for (unsigned mask = 1; mask < 16; mask++) {
		int order[4], n = 0;
		bool has_s = false, has_f = false, has_r = false;
		for (int k = 0; k < 4; k++) {
			if (!(mask & (1u << k)))
				continue;
			order[n++] = k;
			has_s |= k == 0 || k == 3;
			has_f |= k == 1;
			has_r |= k == 2;
		}
		enum payment_status want = has_r   ? PAYMENT_REFUNDED
		                           : has_s ? PAYMENT_SUCCEEDED
		                           : has_f ? PAYMENT_FAILED
		                                   : PAYMENT_REQUIRES_PAYMENT_METHOD;
		do {
			struct user u = add_user();
			struct payment p = create_ok(&svc, u.id, "membership", NULL);
			int dels = cache.dels;
			for (int i = 0; i < n; i++) {
				char id[48];
				snprintf(id, sizeof id, "evt_order_%d_%d", runs, i);
				struct payment_event ev =
				    make_event(id, moving_kinds[order[i]], &p);
				assert_false(apply_ok(&svc, &ev));
				assert_true(apply_ok(&svc2, &ev));
				free((char *)ev.payload);
			}
			if (status_of(p.id) != want ||
			    (membership_of(u.id) == MEMBERSHIP_MEMBER) != has_s)
				fail_msg("run %d (mask %u): status %s, member %d", runs, mask,
				         payment_status_name(status_of(p.id)),
				         membership_of(u.id) == MEMBERSHIP_MEMBER);
			assert_int_equal(cache.dels - dels, has_s ? 1 : 0);
			if (has_s)
				assert_string_equal(cache.last, u.id);
			runs++;
		} while (next_permutation(order, n));
	}
	assert_int_equal(runs, 64);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM outbox"),
	                 pg_testdb_scalar(&db, "SELECT count(*) FROM stripe_events"));
}

static void *race_event(void *arg)
{
	struct racer *r = arg;
	pthread_barrier_wait(r->start);
	r->st = payment_service_apply_event(r->svc, r->ev, &r->dup, NULL);
	return NULL;
}

static void test_two_threads_same_event_record_it_once(void **state)
{
	struct user u = add_user();
	for (int round = 0; round < ROUNDS; round++) {
		struct payment p = create_ok(&svc, u.id, "membership", NULL);
		char id[32];
		snprintf(id, sizeof id, "evt_race_%d", round);
		struct payment_event ev = make_event(id, EVENT_INTENT_SUCCEEDED, &p);
		pthread_barrier_t start;
		pthread_barrier_init(&start, NULL, 2);
		struct racer a = {.svc = &svc, .start = &start, .ev = &ev};
		struct racer b = {.svc = &svc2, .start = &start, .ev = &ev};
		pthread_t ta, tb;
		assert_int_equal(pthread_create(&ta, NULL, race_event, &a), 0);
		assert_int_equal(pthread_create(&tb, NULL, race_event, &b), 0);
		pthread_join(ta, NULL);
		pthread_join(tb, NULL);
		pthread_barrier_destroy(&start);
		free((char *)ev.payload);
		assert_int_equal(a.st, HEX_OK);
		assert_int_equal(b.st, HEX_OK);
		assert_true(a.dup != b.dup);
		assert_int_equal(
		    count_sql("SELECT count(*) FROM stripe_events WHERE id = '%s'", id), 1);
		assert_int_equal(count_sql("SELECT count(*) FROM outbox WHERE event_id = '%s'", id),
		                 1);
		assert_int_equal(status_of(p.id), PAYMENT_SUCCEEDED);
	}
	/* Only the first purchase changed the membership. */
	assert_int_equal(cache.dels, 1);
	assert_int_equal(membership_of(u.id), MEMBERSHIP_MEMBER);
}

/*
 * A failure after the event row was written (the payment update, the membership update,
 * the outbox insert) leaves nothing at all, and the same event applies cleanly later.
 */
static void test_a_failed_event_transaction_leaves_nothing(void **state)
{
	static const struct {
		const char *name;
		const char *add, *drop;
		enum payment_event_kind kind;
	} faults[] = {
	    {"payment update",
	     "ALTER TABLE payments ADD CONSTRAINT t_no_refund "
	     "CHECK (status <> 'refunded') NOT VALID",
	     "ALTER TABLE payments DROP CONSTRAINT t_no_refund", EVENT_CHARGE_REFUNDED},
	    {"membership update",
	     "ALTER TABLE users ADD CONSTRAINT t_no_member "
	     "CHECK (membership <> 'member') NOT VALID",
	     "ALTER TABLE users DROP CONSTRAINT t_no_member", EVENT_INTENT_SUCCEEDED},
	    {"outbox insert",
	     "ALTER TABLE outbox ADD CONSTRAINT t_no_outbox CHECK (false) NOT VALID",
	     "ALTER TABLE outbox DROP CONSTRAINT t_no_outbox", EVENT_INTENT_SUCCEEDED},
	};
	for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
		struct user u = add_user();
		struct payment p = create_ok(&svc, u.id, "membership", NULL);
		if (faults[i].kind == EVENT_CHARGE_REFUNDED) {
			struct payment_event paid =
			    make_event("evt_pre", EVENT_INTENT_SUCCEEDED, &p);
			hex_strlcpy(paid.id, "evt_pre_paid", sizeof paid.id);
			assert_false(apply_ok(&svc, &paid));
			free((char *)paid.payload);
		}
		enum payment_status before = status_of(p.id);
		enum membership member_before = membership_of(u.id);
		long long events = pg_testdb_scalar(&db, "SELECT count(*) FROM stripe_events");
		long long outbox = pg_testdb_scalar(&db, "SELECT count(*) FROM outbox");
		int dels = cache.dels;

		pg_testdb_exec(&db, faults[i].add);
		char id[32];
		snprintf(id, sizeof id, "evt_fault_%zu", i);
		struct payment_event ev = make_event(id, faults[i].kind, &p);
		bool dup = true;
		struct hex_err err = {0};
		enum hex_status st = payment_service_apply_event(&svc, &ev, &dup, &err);
		if (st != HEX_INTERNAL)
			fail_msg("%s: %s", faults[i].name, hex_status_name(st));
		assert_string_equal(err.message, "internal error");
		assert_false(dup);
		assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM stripe_events"),
		                 events);
		assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM outbox"), outbox);
		assert_int_equal(status_of(p.id), before);
		assert_int_equal(membership_of(u.id), member_before);
		assert_int_equal(cache.dels, dels);

		pg_testdb_exec(&db, faults[i].drop);
		assert_false(apply_ok(&svc, &ev));
		free((char *)ev.payload);
		assert_int_equal(count_sql("SELECT count(*) FROM outbox WHERE event_id = '%s'", id),
		                 1);
		assert_int_equal(status_of(p.id), faults[i].kind == EVENT_CHARGE_REFUNDED
		                                      ? PAYMENT_REFUNDED
		                                      : PAYMENT_SUCCEEDED);
		assert_int_equal(membership_of(u.id), MEMBERSHIP_MEMBER);
	}
}

static void test_a_payload_that_is_not_json_records_nothing(void **state)
{
	struct user u = add_user();
	struct payment p = create_ok(&svc, u.id, "wallet_top_up", NULL);
	struct payment_event ev = make_event("evt_bad_json", EVENT_INTENT_SUCCEEDED, &p);
	/* Only the first bytes count: the rest is not part of the payload. */
	ev.payload_len = 10;
	bool dup;
	assert_int_equal(payment_service_apply_event(&svc, &ev, &dup, NULL), HEX_INTERNAL);
	free((char *)ev.payload);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM stripe_events"), 0);
	assert_int_equal(status_of(p.id), PAYMENT_REQUIRES_PAYMENT_METHOD);
}

/* ---- the membership hook ---- */

static void test_membership_hook_is_idempotent_per_event(void **state)
{
	struct user u = add_user();
	bool dup = true;
	struct hex_err err = {0};
	assert_int_equal(payment_service_membership_hook(&svc, "mev_1", u.id, "member", &dup, &err),
	                 HEX_OK);
	assert_false(dup);
	assert_int_equal(membership_of(u.id), MEMBERSHIP_MEMBER);
	assert_int_equal(cache.dels, 1);
	assert_string_equal(cache.last, u.id);
	assert_int_equal(count_sql("SELECT count(*) FROM membership_events WHERE event_id = "
	                           "'mev_1' AND membership = 'member' AND user_id = '%s'",
	                           u.id),
	                 1);

	assert_int_equal(payment_service_membership_hook(&svc2, "mev_1", u.id, "free", &dup, &err),
	                 HEX_OK);
	assert_true(dup);
	assert_int_equal(membership_of(u.id), MEMBERSHIP_MEMBER);
	assert_int_equal(cache.dels, 1);

	struct user before;
	assert_int_equal(users.ops->get(users.self, u.id, &before), HEX_OK);
	/* Setting what is already set changes no time stamp. */
	assert_int_equal(payment_service_membership_hook(&svc, "mev_2", u.id, "member", &dup, &err),
	                 HEX_OK);
	struct user after;
	assert_int_equal(users.ops->get(users.self, u.id, &after), HEX_OK);
	assert_int_equal(after.updated_at_us, before.updated_at_us);

	assert_int_equal(payment_service_membership_hook(&svc, NULL, u.id, "free", &dup, &err),
	                 HEX_OK);
	assert_false(dup);
	assert_int_equal(membership_of(u.id), MEMBERSHIP_FREE);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM membership_events"), 2);

	assert_int_equal(
	    payment_service_membership_hook(&svc, "mev_3", UNKNOWN_ID, "member", &dup, &err),
	    HEX_NOT_FOUND);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM membership_events WHERE "
	                                       "event_id = 'mev_3'"),
	                 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_insert_get_find_round_trip, setup),
	    cmocka_unit_test_setup(test_lookups_of_unknown_or_malformed_ids, setup),
	    cmocka_unit_test_setup(test_unique_rules_of_request_storage, setup),
	    cmocka_unit_test_setup(test_schema_checks_refuse_what_the_core_refuses, setup),
	    cmocka_unit_test_setup(test_attach_moves_status_only_forward, setup),
	    cmocka_unit_test_setup(test_list_pages_newest_first, setup),
	    cmocka_unit_test_setup(test_payment_outlives_its_user, setup),
	    cmocka_unit_test_setup(test_service_create_and_replay, setup),
	    cmocka_unit_test_setup(test_service_timeout_then_retry_uses_the_stored_key, setup),
	    cmocka_unit_test_setup(test_service_refusal_is_stored_and_replayed, setup),
	    cmocka_unit_test_setup(test_two_threads_same_client_key_make_one_payment, setup),
	    cmocka_unit_test_setup(test_each_kind_and_its_rows, setup),
	    cmocka_unit_test_setup(test_unknown_payment_and_duplicates_are_recorded_once, setup),
	    cmocka_unit_test_setup(test_event_learns_the_intent_of_a_payment_without_one, setup),
	    cmocka_unit_test_setup(test_every_delivery_order_ends_in_the_same_state, setup),
	    cmocka_unit_test_setup(test_two_threads_same_event_record_it_once, setup),
	    cmocka_unit_test_setup(test_a_failed_event_transaction_leaves_nothing, setup),
	    cmocka_unit_test_setup(test_a_payload_that_is_not_json_records_nothing, setup),
	    cmocka_unit_test_setup(test_membership_hook_is_idempotent_per_event, setup),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

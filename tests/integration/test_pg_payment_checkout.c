/*
 * Checkout Sessions in PostgreSQL: pg_payment_repo.attach_checkout and the columns of
 * 0005_checkout, alone and under payment_service_checkout with a provider that checks the
 * request is committed before it hears of it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/postgres/pg_conn.h"
#include "adapters/postgres/pg_payment_repo.h"
#include "adapters/postgres/pg_user_repo.h"
#include "core/payment_service.h"
#include "support/pg_testdb.h"

#define T0         INT64_C(1764439200123456) /* 2025-11-29T18:00:00.123456Z */
#define UNKNOWN_ID "00000000-0000-4000-8000-0000deadbeef"
#define PAYLOAD    "{\"id\": \"evt_cs\", \"object\": \"event\"}"
#define SUCCESS    "https://example.com/ok"
#define CANCEL     "https://example.com/no"

static struct pg_testdb db;
static struct pg_conn *conn;
static struct payment_repo repo;
static struct user_repo users;
static PGconn *raw; /* a second session: sees only what is committed */
static int id_counter;
static int64_t clock_us;

static void test_new_id(void *self, char out[HEX_ID_LEN + 1])
{
	unsigned n = (unsigned)++id_counter;
	snprintf(out, HEX_ID_LEN + 1, "%08x-0000-4000-8000-%012x", n * 2654435761u, n);
}

static const struct id_source_ops test_ids_ops = {.new_id = test_new_id};

static int64_t test_now_us(void *self)
{
	return clock_us += 1000;
}

static const struct clock_ops test_clock_ops = {.now_us = test_now_us};

/* A provider with Stripe's idempotency for sessions, checking request storage. */
struct test_gateway {
	char keys[8][HEX_IDEMPOTENCY_KEY_MAX + 1];
	int nsessions;
	int calls;
	int unstored_calls;
	bool fail_next; /* HEX_UNAVAILABLE before acting */
	struct gateway_checkout_request last;
};

static struct test_gateway gateway;

static bool committed(const char *key)
{
	const char *params[] = {key};
	PGresult *r =
	    PQexecParams(raw,
	                 "SELECT count(*) FROM payments WHERE stripe_idempotency_key = $1 "
	                 "AND stripe_checkout_session_id IS NULL",
	                 1, NULL, params, NULL, NULL, 0);
	bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "1") == 0;
	PQclear(r);
	return ok;
}

static enum hex_status test_create_checkout(void *self, const struct gateway_checkout_request *req,
                                            struct gateway_checkout *out, struct hex_err *err)
{
	struct test_gateway *g = self;
	g->calls++;
	g->last = *req;
	if (!committed(req->idempotency_key))
		g->unstored_calls++;
	if (g->fail_next) {
		g->fail_next = false;
		return hex_fail(err, HEX_UNAVAILABLE, NULL, "timed out");
	}
	int i = 0;
	while (i < g->nsessions && strcmp(g->keys[i], req->idempotency_key) != 0)
		i++;
	if (i == g->nsessions)
		hex_strlcpy(g->keys[g->nsessions++], req->idempotency_key, sizeof g->keys[0]);
	snprintf(out->id, sizeof out->id, "cs_test_%d", i + 1);
	snprintf(out->url, sizeof out->url, "https://checkout.stripe.com/c/pay/cs_test_%d", i + 1);
	return HEX_OK;
}

static enum hex_status test_no_intent(void *self, const struct gateway_intent_request *req,
                                      struct gateway_intent *out, struct hex_err *err)
{
	return hex_fail(err, HEX_INTERNAL, NULL, "not in this test");
}

static enum hex_status test_no_retrieve(void *self, const char *id, struct gateway_intent *out,
                                        struct hex_err *err)
{
	return hex_fail(err, HEX_INTERNAL, NULL, "not in this test");
}

static const struct payment_gateway_ops test_gateway_ops = {
    .create_intent = test_no_intent,
    .create_checkout = test_create_checkout,
    .retrieve_intent = test_no_retrieve,
};

static struct payment_service service(void)
{
	return (struct payment_service){
	    .repo = repo,
	    .gateway = {.ops = &test_gateway_ops, .self = &gateway},
	    .clock = {.ops = &test_clock_ops, .self = NULL},
	    .ids = {.ops = &test_ids_ops, .self = NULL},
	    .membership_price = 999,
	    .membership_currency = "usd",
	    .checkout_success_url = SUCCESS,
	    .checkout_cancel_url = CANCEL,
	};
}

static int group_setup(void **state)
{
	pg_testdb_create_migrated(&db);
	struct hex_err err = {0};
	conn = pg_conn_open(db.conninfo, &err);
	if (conn == NULL)
		fail_msg("%s", err.message);
	repo = pg_payment_repo_port(conn);
	users = pg_user_repo_port(conn);
	assert_int_equal(pg_conn_prepare_all(conn, &err), HEX_OK);
	raw = PQconnectdb(db.conninfo);
	assert_int_equal(PQstatus(raw), CONNECTION_OK);
	return 0;
}

static int group_teardown(void **state)
{
	PQfinish(raw);
	pg_conn_free(conn);
	pg_testdb_drop(&db);
	return 0;
}

static int setup(void **state)
{
	pg_testdb_exec(&db, "TRUNCATE payments, stripe_events, outbox, users CASCADE");
	clock_us = T0;
	memset(&gateway, 0, sizeof gateway);
	return 0;
}

static struct payment_record make_record(const char *client_key)
{
	struct payment_record rec = {0};
	test_new_id(NULL, rec.payment.id);
	test_new_id(NULL, rec.payment.user_id);
	rec.payment.amount = 999;
	memcpy(rec.payment.currency, "usd", 4);
	rec.payment.purpose = PURPOSE_MEMBERSHIP;
	rec.payment.status = PAYMENT_REQUIRES_PAYMENT_METHOD;
	rec.payment.created_at_us = rec.payment.updated_at_us = T0;
	if (client_key != NULL)
		hex_strlcpy(rec.client_key, client_key, sizeof rec.client_key);
	snprintf(rec.stripe_idempotency_key, sizeof rec.stripe_idempotency_key, "hexcs_%s",
	         rec.payment.id);
	return rec;
}

/* True when sql fails on the raw session (a schema check refused it). */
static bool refused(const char *sql)
{
	PGresult *r = PQexec(raw, sql);
	bool bad = PQresultStatus(r) != PGRES_COMMAND_OK;
	PQclear(r);
	return bad;
}

/* ---- the repository ---- */

static void test_attach_checkout_is_stored_and_read_back(void **state)
{
	struct payment_record rec = make_record("ck-1");
	assert_int_equal(repo.ops->insert(repo.self, &rec), HEX_OK);
	struct payment_record out;
	memset(&out, 0x55, sizeof out);
	assert_int_equal(repo.ops->attach_checkout(repo.self, rec.payment.id, "cs_live_1",
	                                           "https://checkout.stripe.com/c/pay/cs_live_1",
	                                           T0 + 5000, &out),
	                 HEX_OK);
	assert_string_equal(out.payment.id, rec.payment.id);
	assert_string_equal(out.stripe_checkout_session_id, "cs_live_1");
	assert_string_equal(out.checkout_url, "https://checkout.stripe.com/c/pay/cs_live_1");
	assert_string_equal(out.stripe_idempotency_key, rec.stripe_idempotency_key);
	assert_string_equal(out.client_key, "ck-1");
	assert_int_equal(out.payment.status, PAYMENT_REQUIRES_PAYMENT_METHOD);
	assert_int_equal(out.payment.updated_at_us, T0 + 5000);
	assert_int_equal(out.payment.created_at_us, T0);

	struct payment_record found;
	assert_int_equal(
	    repo.ops->find_by_client_key(repo.self, rec.payment.user_id, "ck-1", &found), HEX_OK);
	assert_string_equal(found.stripe_checkout_session_id, "cs_live_1");
	assert_string_equal(found.checkout_url, out.checkout_url);
	/* Committed: another session sees it. */
	char sql[256];
	snprintf(sql, sizeof sql,
	         "SELECT count(*) FROM payments WHERE id = '%s' AND stripe_checkout_session_id = "
	         "'cs_live_1'",
	         rec.payment.id);
	assert_int_equal(pg_testdb_scalar(&db, sql), 1);
}

static void test_a_payment_without_checkout_reads_empty_fields(void **state)
{
	struct payment_record rec = make_record("plain");
	assert_int_equal(repo.ops->insert(repo.self, &rec), HEX_OK);
	struct payment_record found;
	memset(&found, 0x55, sizeof found);
	assert_int_equal(
	    repo.ops->find_by_client_key(repo.self, rec.payment.user_id, "plain", &found), HEX_OK);
	assert_string_equal(found.stripe_checkout_session_id, "");
	assert_string_equal(found.checkout_url, "");
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM payments WHERE "
	                                       "stripe_checkout_session_id IS NULL AND "
	                                       "checkout_url IS NULL"),
	                 1);
}

static void test_insert_carries_a_known_session(void **state)
{
	struct payment_record rec = make_record("known");
	hex_strlcpy(rec.stripe_checkout_session_id, "cs_known",
	            sizeof rec.stripe_checkout_session_id);
	hex_strlcpy(rec.checkout_url, "https://pay.example/cs_known", sizeof rec.checkout_url);
	assert_int_equal(repo.ops->insert(repo.self, &rec), HEX_OK);
	struct payment_record found;
	assert_int_equal(
	    repo.ops->find_by_client_key(repo.self, rec.payment.user_id, "known", &found), HEX_OK);
	assert_string_equal(found.stripe_checkout_session_id, "cs_known");
	assert_string_equal(found.checkout_url, "https://pay.example/cs_known");
}

static void test_attach_checkout_errors(void **state)
{
	struct payment_record a = make_record(NULL), b = make_record(NULL);
	assert_int_equal(repo.ops->insert(repo.self, &a), HEX_OK);
	assert_int_equal(repo.ops->insert(repo.self, &b), HEX_OK);
	struct payment_record out;
	assert_int_equal(
	    repo.ops->attach_checkout(repo.self, UNKNOWN_ID, "cs_x", "https://x", T0, &out),
	    HEX_NOT_FOUND);
	assert_int_equal(
	    repo.ops->attach_checkout(repo.self, "not-a-uuid", "cs_x", "https://x", T0, &out),
	    HEX_NOT_FOUND);
	assert_int_equal(
	    repo.ops->attach_checkout(repo.self, a.payment.id, "", "https://x", T0, &out),
	    HEX_INVALID);
	assert_int_equal(repo.ops->attach_checkout(repo.self, a.payment.id, "cs_x", "", T0, &out),
	                 HEX_INVALID);
	assert_int_equal(
	    repo.ops->attach_checkout(repo.self, a.payment.id, "cs_one", "https://1", T0, &out),
	    HEX_OK);
	/* One session pays for one payment: b cannot take a's session, and stays as it was. */
	assert_int_equal(
	    repo.ops->attach_checkout(repo.self, b.payment.id, "cs_one", "https://1", T0, &out),
	    HEX_CONFLICT);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM payments WHERE "
	                                       "stripe_checkout_session_id IS NULL"),
	                 1);
}

static void test_schema_refuses_empty_or_oversized_values(void **state)
{
	struct payment_record rec = make_record(NULL);
	assert_int_equal(repo.ops->insert(repo.self, &rec), HEX_OK);
	char sql[3000];
	snprintf(sql, sizeof sql,
	         "UPDATE payments SET stripe_checkout_session_id = '' WHERE id = '%s'",
	         rec.payment.id);
	assert_true(refused(sql));
	snprintf(sql, sizeof sql,
	         "UPDATE payments SET checkout_url = repeat('u', 2049) WHERE id = '%s'",
	         rec.payment.id);
	assert_true(refused(sql));
	snprintf(sql, sizeof sql,
	         "UPDATE payments SET checkout_url = repeat('u', 2048) WHERE id = '%s'",
	         rec.payment.id);
	assert_false(refused(sql));
}

/* ---- under the service ---- */

static void test_service_checkout_retry_replay_and_completion(void **state)
{
	struct payment_service svc = service();
	struct user u = {.membership = MEMBERSHIP_FREE, .role = ROLE_USER};
	test_new_id(NULL, u.id);
	hex_strlcpy(u.email, "buyer@example.com", sizeof u.email);
	u.created_at_us = u.updated_at_us = T0;
	assert_int_equal(users.ops->insert(users.self, &u, "$y$hash"), HEX_OK);

	struct payment_checkout_request rq = {.user_id = u.id, .client_key = "buy-1"};
	struct payment p;
	char session[HEX_STRIPE_ID_MAX + 1];
	static char url[HEX_URL_MAX + 1];
	struct hex_err err = {0};
	gateway.fail_next = true;
	assert_int_equal(payment_service_checkout(&svc, &rq, &p, session, url, &err),
	                 HEX_UNAVAILABLE);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM payments WHERE "
	                                       "stripe_checkout_session_id IS NULL AND "
	                                       "purpose = 'membership' AND amount = 999"),
	                 1);

	assert_int_equal(payment_service_checkout(&svc, &rq, &p, session, url, &err), HEX_OK);
	assert_int_equal(gateway.calls, 2);
	assert_int_equal(gateway.unstored_calls, 0);
	assert_int_equal(gateway.nsessions, 1);
	assert_string_equal(session, "cs_test_1");
	assert_string_equal(url, "https://checkout.stripe.com/c/pay/cs_test_1");
	assert_string_equal(gateway.last.success_url, SUCCESS);
	assert_string_equal(gateway.last.cancel_url, CANCEL);

	/* A repeat answers the stored session without asking the provider. */
	char session2[HEX_STRIPE_ID_MAX + 1];
	static char url2[HEX_URL_MAX + 1];
	struct payment p2;
	assert_int_equal(payment_service_checkout(&svc, &rq, &p2, session2, url2, &err), HEX_OK);
	assert_int_equal(gateway.calls, 2);
	assert_string_equal(session2, session);
	assert_string_equal(url2, url);
	assert_string_equal(p2.id, p.id);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM payments"), 1);

	/* Stripe's checkout.session.completed names the payment in its metadata. */
	struct payment_event ev = {.kind = EVENT_CHECKOUT_COMPLETED,
	                           .created_s = 1764439200,
	                           .amount = 999,
	                           .payload = PAYLOAD,
	                           .payload_len = strlen(PAYLOAD)};
	hex_strlcpy(ev.id, "evt_cs", sizeof ev.id);
	hex_strlcpy(ev.type, "checkout.session.completed", sizeof ev.type);
	memcpy(ev.payment_id, p.id, sizeof ev.payment_id);
	memcpy(ev.currency, "usd", 4);
	bool dup = true;
	assert_int_equal(payment_service_apply_event(&svc, &ev, &dup, &err), HEX_OK);
	assert_false(dup);
	struct user after;
	assert_int_equal(users.ops->get(users.self, u.id, &after), HEX_OK);
	assert_int_equal(after.membership, MEMBERSHIP_MEMBER);
	struct payment done;
	assert_int_equal(repo.ops->get(repo.self, p.id, &done), HEX_OK);
	assert_int_equal(done.status, PAYMENT_SUCCEEDED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_attach_checkout_is_stored_and_read_back, setup),
	    cmocka_unit_test_setup(test_a_payment_without_checkout_reads_empty_fields, setup),
	    cmocka_unit_test_setup(test_insert_carries_a_known_session, setup),
	    cmocka_unit_test_setup(test_attach_checkout_errors, setup),
	    cmocka_unit_test_setup(test_schema_refuses_empty_or_oversized_values, setup),
	    cmocka_unit_test_setup(test_service_checkout_retry_replay_and_completion, setup),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

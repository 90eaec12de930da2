/*
 * test_stripe_gateway: the Stripe adapter against the fake Stripe (tests/fakes): the
 * wire format it sends, retries with one idempotency key, what is and is not retried,
 * replays, and a Stripe that is down or silent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "adapters/stripe/stripe_client.h"
#include "adapters/stripe/stripe_gateway.h"
#include "support/fake_stripe_server.h"

#define PAYMENT_ID  "5b0e9c1a-7d2f-4e3b-8a6c-1f2e3d4c5b6a"
#define USER_ID     "0f1e2d3c-4b5a-4968-8776-655443322110"
#define TRACEPARENT "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static struct fake_stripe fake;

static int start_fake(void **state)
{
	return fake_stripe_start(&fake) ? 0 : -1;
}

static int stop_fake(void **state)
{
	fake_stripe_stop(&fake);
	return 0;
}

static int reset_fake(void **state)
{
	return fake_stripe_control(&fake, "{\"reset\": true}") ? 0 : -1;
}

static void control(const char *json)
{
	assert_true(fake_stripe_control(&fake, json));
}

static struct stripe_config test_config(const char *base)
{
	return (struct stripe_config){
	    .api_base = base,
	    .secret_key = FAKE_STRIPE_SECRET_KEY,
	    .connect_timeout_ms = 1000,
	    .timeout_ms = 2000,
	    .max_retries = 3,
	    .backoff_base_ms = 10,
	};
}

static struct stripe_gateway *gateway_with(const struct stripe_config *cfg)
{
	struct hex_err err = {0};
	struct stripe_gateway *g = stripe_gateway_new(cfg, &err);
	if (g == NULL)
		fail_msg("gateway: %s", err.message);
	return g;
}

static struct stripe_gateway *new_gateway(void)
{
	struct stripe_config cfg = test_config(fake.base_url);
	return gateway_with(&cfg);
}

static struct gateway_intent_request intent_request(const char *key)
{
	struct gateway_intent_request r = {
	    .amount = 1099,
	    .currency = "usd",
	    .payment_id = PAYMENT_ID,
	    .user_id = USER_ID,
	    .purpose = PURPOSE_WALLET_TOP_UP,
	};
	hex_strlcpy(r.idempotency_key, key, sizeof r.idempotency_key);
	return r;
}

static enum hex_status create_intent(struct stripe_gateway *g,
                                     const struct gateway_intent_request *req,
                                     struct gateway_intent *out, struct hex_err *err)
{
	struct payment_gateway port = stripe_gateway_port(g);
	memset(err, 0, sizeof *err);
	return port.ops->create_intent(port.self, req, out, err);
}

static enum hex_status retrieve_intent(struct stripe_gateway *g, const char *id,
                                       struct gateway_intent *out, struct hex_err *err)
{
	struct payment_gateway port = stripe_gateway_port(g);
	memset(err, 0, sizeof *err);
	return port.ops->retrieve_intent(port.self, id, out, err);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *last_header(const json_t *stats, const char *name)
{
	const json_t *h = json_object_get(json_object_get(stats, "last_request"), "headers");
	return json_string_value(json_object_get(h, name));
}

static const char *last_param(const json_t *stats, const char *name)
{
	const json_t *p = json_object_get(json_object_get(stats, "last_request"), "params");
	return json_string_value(json_object_get(p, name));
}

static void expect_param(const json_t *stats, const char *name, const char *want)
{
	const char *got = last_param(stats, name);
	if (got == NULL)
		fail_msg("parameter %s was not sent", name);
	assert_string_equal(got, want);
}

/* Stats must show exactly `requests` requests under key and `intents` intents. */
static void expect_counts(const char *key, long long requests, long long intents)
{
	json_t *stats = fake_stripe_stats(&fake);
	assert_non_null(stats);
	assert_int_equal(fake_stripe_key_requests(stats, key), requests);
	assert_int_equal(fake_stripe_stat(stats, "intents_created"), intents);
	json_decref(stats);
}

static void config_is_checked(void **state)
{
	static const struct {
		struct stripe_config cfg;
		const char *field;
	} bad[] = {
	    {{NULL, "sk_test_x", 1000, 1000, 1, 10}, "stripe_api_base"},
	    {{"", "sk_test_x", 1000, 1000, 1, 10}, "stripe_api_base"},
	    {{"ftp://api.stripe.com", "sk_test_x", 1000, 1000, 1, 10}, "stripe_api_base"},
	    {{"https://api.stripe.com/v1 x", "sk_test_x", 1000, 1000, 1, 10}, "stripe_api_base"},
	    {{"https://api.stripe.com", NULL, 1000, 1000, 1, 10}, "stripe_secret_key"},
	    {{"https://api.stripe.com", "", 1000, 1000, 1, 10}, "stripe_secret_key"},
	    {{"https://api.stripe.com", "sk_test x", 1000, 1000, 1, 10}, "stripe_secret_key"},
	    {{"https://api.stripe.com", "sk\r\nX-Evil: 1", 1000, 1000, 1, 10}, "stripe_secret_key"},
	    {{"https://api.stripe.com", "sk_test_x", 0, 1000, 1, 10}, "stripe_connect_timeout_ms"},
	    {{"https://api.stripe.com", "sk_test_x", 1000, -1, 1, 10}, "stripe_timeout_ms"},
	    {{"https://api.stripe.com", "sk_test_x", 1000, 1000, -1, 10}, "stripe_max_retries"},
	    {{"https://api.stripe.com", "sk_test_x", 1000, 1000, 11, 10}, "stripe_max_retries"},
	    {{"https://api.stripe.com", "sk_test_x", 1000, 1000, 1, -5}, "stripe_backoff_base_ms"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct hex_err err = {0};
		print_message("case %zu\n", i);
		assert_null(stripe_gateway_new(&bad[i].cfg, &err));
		assert_string_equal(err.field, bad[i].field);
	}
	struct stripe_config good = test_config("https://api.stripe.com/");
	struct hex_err err = {0};
	struct stripe_gateway *g = stripe_gateway_new(&good, &err);
	assert_non_null(g);
	stripe_gateway_free(g);
	stripe_gateway_free(NULL);
}

static void create_intent_sends_stripes_wire_format(void **state)
{
	struct stripe_gateway *g = new_gateway();
	struct gateway_intent_request req = intent_request("pay-wire-1");
	hex_strlcpy(req.trace_parent, TRACEPARENT, sizeof req.trace_parent);
	req.purpose = PURPOSE_MEMBERSHIP;
	struct gateway_intent out;
	struct hex_err err;
	assert_int_equal(create_intent(g, &req, &out, &err), HEX_OK);

	assert_memory_equal(out.id, "pi_", 3);
	char secret_prefix[HEX_STRIPE_ID_MAX + 16];
	snprintf(secret_prefix, sizeof secret_prefix, "%s_secret_", out.id);
	assert_memory_equal(out.client_secret, secret_prefix, strlen(secret_prefix));
	assert_int_equal(out.status, PAYMENT_REQUIRES_PAYMENT_METHOD);
	assert_int_equal(out.amount, 1099);
	assert_string_equal(out.currency, "usd");

	json_t *stats = fake_stripe_stats(&fake);
	assert_non_null(stats);
	assert_int_equal(fake_stripe_stat(stats, "intents_created"), 1);
	assert_int_equal(fake_stripe_key_requests(stats, "pay-wire-1"), 1);
	assert_string_equal(last_header(stats, "authorization"), "Bearer " FAKE_STRIPE_SECRET_KEY);
	assert_string_equal(last_header(stats, "stripe-version"), STRIPE_API_VERSION);
	assert_string_equal(last_header(stats, "idempotency-key"), "pay-wire-1");
	assert_string_equal(last_header(stats, "traceparent"), TRACEPARENT);
	assert_string_equal(last_header(stats, "user-agent"), "hexd/" HEX_VERSION);
	assert_string_equal(last_header(stats, "content-type"),
	                    "application/x-www-form-urlencoded");
	expect_param(stats, "amount", "1099");
	expect_param(stats, "currency", "usd");
	expect_param(stats, "automatic_payment_methods[enabled]", "true");
	expect_param(stats, "metadata[payment_id]", PAYMENT_ID);
	expect_param(stats, "metadata[user_id]", USER_ID);
	expect_param(stats, "metadata[purpose]", "membership");
	json_decref(stats);
	stripe_gateway_free(g);
}

static void retrieve_returns_the_intent_and_maps_statuses(void **state)
{
	struct stripe_gateway *g = new_gateway();
	struct gateway_intent_request req = intent_request("pay-retrieve-1");
	struct gateway_intent created, got;
	struct hex_err err;
	assert_int_equal(create_intent(g, &req, &created, &err), HEX_OK);
	assert_int_equal(retrieve_intent(g, created.id, &got, &err), HEX_OK);
	assert_string_equal(got.id, created.id);
	assert_string_equal(got.client_secret, created.client_secret);
	assert_int_equal(got.amount, 1099);

	json_t *stats = fake_stripe_stats(&fake);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(stats, "last_request"), "method")),
	    "GET");
	assert_null(last_header(stats, "idempotency-key"));
	assert_string_equal(last_header(stats, "stripe-version"), STRIPE_API_VERSION);
	json_decref(stats);

	static const struct {
		const char *stripe;
		enum payment_status ours;
	} statuses[] = {
	    {"requires_payment_method", PAYMENT_REQUIRES_PAYMENT_METHOD},
	    {"requires_confirmation", PAYMENT_REQUIRES_PAYMENT_METHOD},
	    {"requires_action", PAYMENT_REQUIRES_PAYMENT_METHOD},
	    {"processing", PAYMENT_PROCESSING},
	    {"requires_capture", PAYMENT_PROCESSING},
	    {"succeeded", PAYMENT_SUCCEEDED},
	    {"canceled", PAYMENT_FAILED},
	};
	for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
		char cmd[512];
		snprintf(cmd, sizeof cmd,
		         "{\"set_intent_status\": {\"id\": \"%s\", \"status\": \"%s\"}}",
		         created.id, statuses[i].stripe);
		control(cmd);
		print_message("%s\n", statuses[i].stripe);
		assert_int_equal(retrieve_intent(g, created.id, &got, &err), HEX_OK);
		assert_int_equal(got.status, statuses[i].ours);
	}

	/* A status this API version never sends is not guessed at. */
	char cmd[512];
	snprintf(cmd, sizeof cmd, "{\"set_intent_status\": {\"id\": \"%s\", \"status\": \"odd\"}}",
	         created.id);
	control(cmd);
	assert_int_equal(retrieve_intent(g, created.id, &got, &err), HEX_INTERNAL);
	stripe_gateway_free(g);
}

static void retrieve_unknown_or_bad_id(void **state)
{
	struct stripe_gateway *g = new_gateway();
	struct gateway_intent got;
	struct hex_err err;
	assert_int_equal(retrieve_intent(g, "pi_doesnotexist", &got, &err), HEX_NOT_FOUND);

	/* Ids that could change the path never leave the process. */
	char long_id[HEX_STRIPE_ID_MAX + 2];
	memset(long_id, 'a', sizeof long_id - 1);
	long_id[sizeof long_id - 1] = '\0';
	const char *const bad[] = {"",     "../v1/charges", "pi_1/../x", "pi_1?expand=x",
	                           "pi 1", long_id};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(retrieve_intent(g, bad[i], &got, &err), HEX_INVALID);
		assert_string_equal(err.field, "id");
	}
	assert_int_equal(retrieve_intent(g, NULL, &got, &err), HEX_INVALID);
	json_t *stats = fake_stripe_stats(&fake);
	assert_int_equal(fake_stripe_stat(stats, "requests"), 1);
	json_decref(stats);
	stripe_gateway_free(g);
}

static void checkout_session_for_membership(void **state)
{
	struct stripe_gateway *g = new_gateway();
	struct gateway_checkout_request req = {
	    .idempotency_key = "checkout-1",
	    .amount = 1500,
	    .currency = "eur",
	    .payment_id = PAYMENT_ID,
	    .user_id = USER_ID,
	    .success_url = "https://hex.example/paid?session={CHECKOUT_SESSION_ID}&x=1",
	    .cancel_url = "https://hex.example/cancel",
	    .trace_parent = TRACEPARENT,
	};
	struct gateway_checkout out;
	struct hex_err err = {0};
	struct payment_gateway port = stripe_gateway_port(g);
	assert_int_equal(port.ops->create_checkout(port.self, &req, &out, &err), HEX_OK);
	assert_memory_equal(out.id, "cs_test_", 8);
	char url[HEX_URL_MAX + 1];
	snprintf(url, sizeof url, "https://checkout.stripe.com/c/pay/%s", out.id);
	assert_string_equal(out.url, url);
	assert_string_equal(out.payment_intent_id, ""); /* none until the buyer pays */

	json_t *stats = fake_stripe_stats(&fake);
	assert_int_equal(fake_stripe_stat(stats, "sessions_created"), 1);
	assert_string_equal(last_header(stats, "idempotency-key"), "checkout-1");
	assert_string_equal(last_header(stats, "traceparent"), TRACEPARENT);
	expect_param(stats, "mode", "payment");
	expect_param(stats, "line_items[0][price_data][currency]", "eur");
	expect_param(stats, "line_items[0][price_data][unit_amount]", "1500");
	expect_param(stats, "line_items[0][price_data][product_data][name]", "Membership");
	expect_param(stats, "line_items[0][quantity]", "1");
	expect_param(stats, "success_url", req.success_url);
	expect_param(stats, "cancel_url", req.cancel_url);
	expect_param(stats, "client_reference_id", USER_ID);
	expect_param(stats, "metadata[payment_id]", PAYMENT_ID);
	expect_param(stats, "metadata[purpose]", "membership");
	expect_param(stats, "payment_intent_data[metadata][payment_id]", PAYMENT_ID);
	expect_param(stats, "payment_intent_data[metadata][user_id]", USER_ID);
	json_decref(stats);

	struct gateway_checkout_request no_url = req;
	no_url.success_url[0] = '\0';
	assert_int_equal(port.ops->create_checkout(port.self, &no_url, &out, &err), HEX_INVALID);
	assert_string_equal(err.field, "success_url");
	stripe_gateway_free(g);
}

static void timeout_then_retry_creates_one_intent(void **state)
{
	/* The fake creates the intent, then answers after 1.5 s: past our 400 ms. */
	control("{\"delay_next\": [1500]}");
	struct stripe_config cfg = test_config(fake.base_url);
	cfg.timeout_ms = 400;
	struct stripe_gateway *g = gateway_with(&cfg);
	struct gateway_intent_request req = intent_request("pay-timeout-1");
	struct gateway_intent out;
	struct hex_err err;
	int64_t start = now_ms();
	assert_int_equal(create_intent(g, &req, &out, &err), HEX_OK);
	assert_true(now_ms() - start >= 400);

	json_t *stats = fake_stripe_stats(&fake);
	assert_int_equal(fake_stripe_key_requests(stats, "pay-timeout-1"), 2);
	assert_int_equal(fake_stripe_stat(stats, "intents_created"), 1);
	assert_int_equal(fake_stripe_stat(stats, "replays"), 1);
	json_decref(stats);
	/* What we got is the intent the first, timed-out attempt created. */
	struct gateway_intent got;
	assert_int_equal(retrieve_intent(g, out.id, &got, &err), HEX_OK);
	assert_string_equal(got.client_secret, out.client_secret);
	stripe_gateway_free(g);
}

static void server_errors_then_rate_limit_are_retried(void **state)
{
	control("{\"fail_next\": [500, 429, 503]}");
	struct stripe_gateway *g = new_gateway();
	struct gateway_intent_request req = intent_request("pay-5xx-1");
	struct gateway_intent out;
	struct hex_err err;
	assert_int_equal(create_intent(g, &req, &out, &err), HEX_OK);
	expect_counts("pay-5xx-1", 4, 1);
	stripe_gateway_free(g);
}

static void lock_timeout_and_hangup_are_retried(void **state)
{
	control("{\"fail_next\": [409], \"hangup_next\": 1}");
	struct stripe_gateway *g = new_gateway();
	struct gateway_intent_request req = intent_request("pay-409-1");
	struct gateway_intent out;
	struct hex_err err;
	assert_int_equal(create_intent(g, &req, &out, &err), HEX_OK);
	expect_counts("pay-409-1", 3, 1);
	stripe_gateway_free(g);
}

static void retries_run_out(void **state)
{
	control("{\"fail_next\": [500, 502, 500, 500, 500]}");
	struct stripe_config cfg = test_config(fake.base_url);
	cfg.max_retries = 2;
	struct stripe_gateway *g = gateway_with(&cfg);
	struct gateway_intent_request req = intent_request("pay-exhaust-1");
	struct gateway_intent out;
	struct hex_err err;
	assert_int_equal(create_intent(g, &req, &out, &err), HEX_UNAVAILABLE);
	expect_counts("pay-exhaust-1", 3, 0);

	/* Still rate limited after every retry: unavailable, not a refusal. */
	control("{\"reset\": true, \"fail_next\": [429, 429, 429]}");
	req = intent_request("pay-429-1");
	assert_int_equal(create_intent(g, &req, &out, &err), HEX_UNAVAILABLE);
	expect_counts("pay-429-1", 3, 0);
	stripe_gateway_free(g);
}

static void permanent_refusals_are_not_retried(void **state)
{
	struct stripe_gateway *g = new_gateway();
	struct gateway_intent_request req = intent_request("pay-400-1");
	hex_strlcpy(req.currency, "xxx", sizeof req.currency); /* well formed, not accepted */
	struct gateway_intent out;
	struct hex_err err;
	assert_int_equal(create_intent(g, &req, &out, &err), HEX_INVALID);
	assert_string_equal(err.field, "currency");
	assert_non_null(strstr(err.message, "Invalid currency: xxx"));
	expect_counts("pay-400-1", 1, 0);

	control("{\"fail_next\": [402]}");
	req = intent_request("pay-402-1");
	assert_int_equal(create_intent(g, &req, &out, &err), HEX_INVALID);
	assert_string_equal(err.message, "Your card was declined.");
	expect_counts("pay-402-1", 1, 0);

	control("{\"fail_next\": [{\"status\": 400, \"message\": \"Amount too small\", "
	        "\"param\": \"amount\"}]}");
	req = intent_request("pay-400-2");
	assert_int_equal(create_intent(g, &req, &out, &err), HEX_INVALID);
	assert_string_equal(err.message, "Amount too small");
	assert_string_equal(err.field, "amount");
	expect_counts("pay-400-2", 1, 0);
	stripe_gateway_free(g);
}

static void should_retry_header_wins(void **state)
{
	struct stripe_gateway *g = new_gateway();
	struct gateway_intent out;
	struct hex_err err;

	control("{\"fail_next\": [{\"status\": 500, \"should_retry\": false}]}");
	struct gateway_intent_request req = intent_request("pay-noretry-1");
	assert_int_equal(create_intent(g, &req, &out, &err), HEX_UNAVAILABLE);
	expect_counts("pay-noretry-1", 1, 0);

	control("{\"fail_next\": [{\"status\": 400, \"should_retry\": true}]}");
	req = intent_request("pay-retry400-1");
	assert_int_equal(create_intent(g, &req, &out, &err), HEX_OK);
	expect_counts("pay-retry400-1", 2, 1);
	stripe_gateway_free(g);
}

static void same_key_replays_other_params_conflict(void **state)
{
	struct stripe_gateway *g = new_gateway();
	struct gateway_intent_request req = intent_request("pay-replay-1");
	struct gateway_intent first, second;
	struct hex_err err;
	assert_int_equal(create_intent(g, &req, &first, &err), HEX_OK);
	assert_int_equal(create_intent(g, &req, &second, &err), HEX_OK);
	assert_string_equal(second.id, first.id);
	assert_string_equal(second.client_secret, first.client_secret);
	expect_counts("pay-replay-1", 2, 1);

	req.amount = 2000;
	assert_int_equal(create_intent(g, &req, &second, &err), HEX_CONFLICT);
	expect_counts("pay-replay-1", 3, 1);
	stripe_gateway_free(g);
}

static void unreadable_answers(void **state)
{
	struct stripe_gateway *g = new_gateway();
	struct gateway_intent out;
	struct hex_err err;

	/* A proxy's HTML page on a 502 is retried like any 5xx. */
	control("{\"fail_next\": [{\"status\": 502, \"raw_body\": \"<html>Bad Gateway</html>\"}]}");
	struct gateway_intent_request req = intent_request("pay-html-1");
	assert_int_equal(create_intent(g, &req, &out, &err), HEX_OK);
	expect_counts("pay-html-1", 2, 1);

	/* A 200 we cannot read may have created something: unknown, not retried blindly. */
	control("{\"fail_next\": [{\"status\": 200, \"raw_body\": \"{\\\"id\\\": \"}]}");
	req = intent_request("pay-garbled-1");
	assert_int_equal(create_intent(g, &req, &out, &err), HEX_UNAVAILABLE);
	expect_counts("pay-garbled-1", 1, 1); /* only the first case's */

	/* JSON, but not an intent: our side cannot use it. */
	control("{\"fail_next\": [{\"status\": 200, \"raw_body\": \"{\\\"object\\\": "
	        "\\\"list\\\"}\"}]}");
	req = intent_request("pay-shape-1");
	assert_int_equal(create_intent(g, &req, &out, &err), HEX_INTERNAL);
	expect_counts("pay-shape-1", 1, 1);

	/* A 4xx without Stripe's error JSON is not explained away as the user's fault. */
	control("{\"fail_next\": [{\"status\": 400, \"raw_body\": \"nope\"}]}");
	req = intent_request("pay-raw400-1");
	assert_int_equal(create_intent(g, &req, &out, &err), HEX_INTERNAL);
	expect_counts("pay-raw400-1", 1, 1);
	stripe_gateway_free(g);
}

static void bad_requests_never_leave(void **state)
{
	struct stripe_gateway *g = new_gateway();
	struct gateway_intent out;
	struct hex_err err;
	struct gateway_intent_request req = intent_request("pay-local-1");
	req.amount = 0;
	assert_int_equal(create_intent(g, &req, &out, &err), HEX_INVALID);
	assert_string_equal(err.field, "amount");
	req = intent_request("pay-local-2");
	hex_strlcpy(req.currency, "USD", sizeof req.currency);
	assert_int_equal(create_intent(g, &req, &out, &err), HEX_INVALID);
	assert_string_equal(err.field, "currency");
	req = intent_request("");
	assert_int_equal(create_intent(g, &req, &out, &err), HEX_INTERNAL);
	req = intent_request("key with spaces");
	assert_int_equal(create_intent(g, &req, &out, &err), HEX_INTERNAL);
	req = intent_request("pay-local-3");
	hex_strlcpy(req.payment_id, "not-a-uuid", sizeof req.payment_id);
	assert_int_equal(create_intent(g, &req, &out, &err), HEX_INTERNAL);
	req = intent_request("pay-local-4");
	req.purpose = (enum payment_purpose)7;
	assert_int_equal(create_intent(g, &req, &out, &err), HEX_INVALID);
	json_t *stats = fake_stripe_stats(&fake);
	assert_int_equal(fake_stripe_stat(stats, "requests"), 0);
	json_decref(stats);
	stripe_gateway_free(g);
}

/* Runs fn with stderr sent to a file; returns what was written (malloc'd). */
static char *capture_stderr(void (*fn)(void *), void *arg)
{
	char path[] = "/tmp/hex-stripe-log-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	fn(arg);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	off_t len = lseek(fd, 0, SEEK_END);
	char *text = calloc(1, (size_t)len + 1);
	assert_non_null(text);
	assert_int_equal(pread(fd, text, (size_t)len, 0), len);
	close(fd);
	unlink(path);
	return text;
}

#define WRONG_KEY "sk_test_wrong_key_must_never_be_logged_9f8e7d"

static void call_with_wrong_key(void *arg)
{
	struct hex_err *err = arg;
	struct stripe_config cfg = test_config(fake.base_url);
	cfg.secret_key = WRONG_KEY;
	struct stripe_gateway *g = gateway_with(&cfg);
	struct gateway_intent_request req = intent_request("pay-auth-1");
	struct gateway_intent out;
	assert_int_equal(create_intent(g, &req, &out, err), HEX_INTERNAL);
	stripe_gateway_free(g);
}

static void wrong_key_is_internal_and_never_logged(void **state)
{
	struct hex_err err;
	char *log = capture_stderr(call_with_wrong_key, &err);
	assert_non_null(strstr(log, "stripe_auth_failed"));
	assert_null(strstr(log, WRONG_KEY));
	assert_null(strstr(log, "sk_test_wrong"));
	assert_null(strstr(err.message, "sk_test"));
	free(log);
	expect_counts("pay-auth-1", 1, 0); /* a 401 is not retried */
}

static void stripe_down_is_unavailable_quickly(void **state)
{
	int port = fake_stripe_unused_port();
	assert_true(port > 0);
	char base[64];
	snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
	struct stripe_config cfg = test_config(base);
	cfg.max_retries = 2;
	struct stripe_gateway *g = gateway_with(&cfg);
	struct gateway_intent_request req = intent_request("pay-down-1");
	struct gateway_intent out;
	struct hex_err err;
	int64_t start = now_ms();
	assert_int_equal(create_intent(g, &req, &out, &err), HEX_UNAVAILABLE);
	/* Refused connections: the backoff sleeps are all the time it takes. */
	assert_true(now_ms() - start < 1000);
	stripe_gateway_free(g);
}

/* A peer that accepts connections (the kernel does) and never answers. */
static void silent_stripe_times_out_per_attempt(void **state)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	int port = 0;
	for (int i = 0; i < 50 && port == 0; i++) {
		int p = fake_stripe_unused_port();
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p)};
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (p > 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0)
			port = p;
	}
	assert_true(port > 0);
	assert_int_equal(listen(fd, 16), 0);
	char base[64];
	snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
	struct stripe_config cfg = test_config(base);
	cfg.connect_timeout_ms = 200;
	cfg.timeout_ms = 300;
	cfg.max_retries = 1;
	struct stripe_gateway *g = gateway_with(&cfg);
	struct gateway_intent_request req = intent_request("pay-silent-1");
	struct gateway_intent out;
	struct hex_err err;
	int64_t start = now_ms();
	assert_int_equal(create_intent(g, &req, &out, &err), HEX_UNAVAILABLE);
	int64_t took = now_ms() - start;
	print_message("two attempts of 300 ms took %lld ms\n", (long long)took);
	assert_true(took >= 600);
	assert_true(took < 1500);
	stripe_gateway_free(g);
	close(fd);
}

static void client_reports_attempts_and_replays(void **state)
{
	struct stripe_config cfg = test_config(fake.base_url);
	struct hex_err err = {0};
	struct stripe_client *c = stripe_client_new(&cfg, &err);
	assert_non_null(c);
	const char *body = "amount=500&currency=gbp";
	struct stripe_request req = {
	    .method = STRIPE_POST,
	    .path = "/v1/payment_intents",
	    .body = body,
	    .body_len = strlen(body),
	    .idempotency_key = "client-1",
	};
	json_t *out = NULL;
	struct stripe_reply_info info;
	control("{\"fail_next\": [500]}");
	assert_int_equal(stripe_client_call(c, &req, &out, &info, &err), HEX_OK);
	assert_int_equal(info.attempts, 2);
	assert_int_equal(info.http_status, 200);
	assert_false(info.replayed);
	assert_memory_equal(info.request_id, "req_", 4);
	assert_int_equal(json_integer_value(json_object_get(out, "amount")), 500);
	json_decref(out);

	assert_int_equal(stripe_client_call(c, &req, &out, &info, &err), HEX_OK);
	assert_true(info.replayed);
	assert_int_equal(info.attempts, 1);
	json_decref(out);

	/* A POST without a key is refused before it is sent. */
	req.idempotency_key = NULL;
	assert_int_equal(stripe_client_call(c, &req, &out, &info, &err), HEX_INTERNAL);
	assert_null(out);
	assert_int_equal(info.attempts, 0);

	/* An unknown route is Stripe's 404. */
	struct stripe_request get = {.method = STRIPE_GET, .path = "/v1/nothing_here"};
	assert_int_equal(stripe_client_call(c, &get, &out, NULL, &err), HEX_NOT_FOUND);
	expect_counts("client-1", 3, 1);
	stripe_client_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(config_is_checked),
	    cmocka_unit_test_setup(create_intent_sends_stripes_wire_format, reset_fake),
	    cmocka_unit_test_setup(retrieve_returns_the_intent_and_maps_statuses, reset_fake),
	    cmocka_unit_test_setup(retrieve_unknown_or_bad_id, reset_fake),
	    cmocka_unit_test_setup(checkout_session_for_membership, reset_fake),
	    cmocka_unit_test_setup(timeout_then_retry_creates_one_intent, reset_fake),
	    cmocka_unit_test_setup(server_errors_then_rate_limit_are_retried, reset_fake),
	    cmocka_unit_test_setup(lock_timeout_and_hangup_are_retried, reset_fake),
	    cmocka_unit_test_setup(retries_run_out, reset_fake),
	    cmocka_unit_test_setup(permanent_refusals_are_not_retried, reset_fake),
	    cmocka_unit_test_setup(should_retry_header_wins, reset_fake),
	    cmocka_unit_test_setup(same_key_replays_other_params_conflict, reset_fake),
	    cmocka_unit_test_setup(unreadable_answers, reset_fake),
	    cmocka_unit_test_setup(bad_requests_never_leave, reset_fake),
	    cmocka_unit_test_setup(wrong_key_is_internal_and_never_logged, reset_fake),
	    cmocka_unit_test(stripe_down_is_unavailable_quickly),
	    cmocka_unit_test(silent_stripe_times_out_per_attempt),
	    cmocka_unit_test_setup(client_reports_attempts_and_replays, reset_fake),
	};
	return cmocka_run_group_tests(tests, start_fake, stop_fake);
}

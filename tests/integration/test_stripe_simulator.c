/*
 * test_stripe_simulator: the simulated gateway against a tiny webhook receiver in this
 * test (a thread on a loopback port that records requests and answers 200, 500 the
 * first N times, or nothing at all). Checked: deliveries come delay_ms after the create,
 * signed so that stripe_signature_verify accepts them and shaped so that
 * stripe_event_parse reads them; the decline rule; idempotency by key; Checkout's two
 * events; retries of a failing receiver; chaos (duplicates, reordering, lost first
 * deliveries) with every event still arriving; and a free() that stops at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "adapters/stripe/stripe_event.h"
#include "adapters/stripe/stripe_signature.h"
#include "adapters/stripe/stripe_simulator.h"
#include "core/logger.h"

#define SECRET       "whsec_simulator_test_3f9a1c2b7d4e5f60"
#define OTHER_SECRET "whsec_simulator_test_not_the_one_used"
#define PAYMENT_ID   "5b0e9c1a-7d2f-4e3b-8a6c-1f2e3d4c5b6a"
#define USER_ID      "0f1e2d3c-4b5a-4968-8776-655443322110"
#define WEBHOOK_PATH "/v2/stripe/webhook"
#define RECV_MAX     512
#define HEAD_MAX     8192
#define PORT_LOW     20000
#define PORT_HIGH    32000

/* ---- the receiver ---- */

struct received {
	char method[16];
	char path[128];
	char content_type[128];
	char signature[512];
	char *body;
	size_t len;
	int64_t at_ms;
};

struct receiver {
	int fd;
	char url[128];
	pthread_t thread;
	atomic_bool stop;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int fail_first; /* answer 500 to this many requests first */
	bool stall;     /* read the request, then never answer */
	int count;
	struct received reqs[RECV_MAX];
};

static struct receiver rx;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* Copies the value of header name (case-insensitive) from the head into out. */
static void header_value(const char *head, const char *name, char *out, size_t n)
{
	out[0] = '\0';
	size_t nlen = strlen(name);
	for (const char *line = strstr(head, "\r\n"); line != NULL;
	     line = strstr(line + 2, "\r\n")) {
		const char *p = line + 2;
		if (strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
			p += nlen + 1;
			while (*p == ' ')
				p++;
			const char *end = strstr(p, "\r\n");
			size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
			snprintf(out, n, "%.*s", (int)len, p);
			return;
		}
	}
}

static void send_all(int fd, const char *s)
{
	size_t len = strlen(s);
	while (len > 0) {
		ssize_t w = send(fd, s, len, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		s += w;
		len -= (size_t)w;
	}
}

/* Reads one request, records it, answers as told. */
static void receiver_serve(int fd)
{
	char head[HEAD_MAX + 1];
	size_t got = 0;
	char *end = NULL;
	while (end == NULL && got < HEAD_MAX) {
		ssize_t r = recv(fd, head + got, HEAD_MAX - got, 0);
		if (r <= 0)
			return;
		got += (size_t)r;
		head[got] = '\0';
		end = strstr(head, "\r\n\r\n");
	}
	if (end == NULL)
		return;
	struct received rec = {.at_ms = now_ms()};
	sscanf(head, "%15s %127s", rec.method, rec.path);
	header_value(head, "Content-Type", rec.content_type, sizeof rec.content_type);
	header_value(head, "Stripe-Signature", rec.signature, sizeof rec.signature);
	char length_text[32];
	header_value(head, "Content-Length", length_text, sizeof length_text);
	size_t want = (size_t)strtoul(length_text, NULL, 10);
	size_t have = got - (size_t)(end + 4 - head);
	rec.body = malloc(want + 1);
	memcpy(rec.body, end + 4, have < want ? have : want);
	while (have < want) {
		ssize_t r = recv(fd, rec.body + have, want - have, 0);
		if (r <= 0)
			break;
		have += (size_t)r;
	}
	rec.len = have < want ? have : want;
	rec.body[rec.len] = '\0';

	pthread_mutex_lock(&rx.mu);
	bool fail = rx.count < rx.fail_first;
	bool stall = rx.stall;
	if (rx.count < RECV_MAX)
		rx.reqs[rx.count++] = rec;
	else
		free(rec.body);
	pthread_cond_broadcast(&rx.cond);
	pthread_mutex_unlock(&rx.mu);

	while (stall && !atomic_load(&rx.stop))
		sleep_ms(10);
	if (!stall)
		send_all(fd, fail ? "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
		                    "Connection: close\r\n\r\n"
		                  : "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		                    "Content-Length: 2\r\nConnection: close\r\n\r\n{}");
}

static void *receiver_run(void *arg)
{
	while (!atomic_load(&rx.stop)) {
		struct pollfd pfd = {.fd = rx.fd, .events = POLLIN};
		if (poll(&pfd, 1, 20) <= 0)
			continue;
		int c = accept(rx.fd, NULL, NULL);
		if (c < 0)
			continue;
		struct timeval tv = {.tv_sec = 2};
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		receiver_serve(c);
		close(c);
	}
	return NULL;
}

static int receiver_start(void **state)
{
	memset(&rx, 0, sizeof rx);
	pthread_mutex_init(&rx.mu, NULL);
	pthread_cond_init(&rx.cond, NULL);
	atomic_init(&rx.stop, false);
	for (int i = 0; i < 50; i++) {
		unsigned int r = 0;
		if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
			r = (unsigned int)getpid() * 7919u + (unsigned int)i;
		int port = PORT_LOW + (int)(r % (PORT_HIGH - PORT_LOW));
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
		    listen(fd, 64) == 0) {
			rx.fd = fd;
			snprintf(rx.url, sizeof rx.url, "http://127.0.0.1:%d" WEBHOOK_PATH, port);
			return pthread_create(&rx.thread, NULL, receiver_run, NULL) == 0 ? 0 : -1;
		}
		if (fd >= 0)
			close(fd);
	}
	fprintf(stderr, "no free port for the receiver\n");
	return -1;
}

static char *capture_stop(void);
static FILE *capture_file;

static int receiver_stop(void **state)
{
	/* A failed assertion jumps here with the log still captured: show it. */
	if (capture_file != NULL)
		free(capture_stop());
	atomic_store(&rx.stop, true);
	pthread_join(rx.thread, NULL);
	close(rx.fd);
	for (int i = 0; i < rx.count; i++)
		free(rx.reqs[i].body);
	pthread_cond_destroy(&rx.cond);
	pthread_mutex_destroy(&rx.mu);
	return 0;
}

static int received_count(void)
{
	pthread_mutex_lock(&rx.mu);
	int n = rx.count;
	pthread_mutex_unlock(&rx.mu);
	return n;
}

/* True once at least n requests came, false after timeout_ms. */
static bool wait_for(int n, int timeout_ms)
{
	int64_t until = now_ms() + timeout_ms;
	while (received_count() < n) {
		if (now_ms() >= until)
			return false;
		sleep_ms(5);
	}
	return true;
}

/* A stable copy of request i (the receiver only appends). */
static const struct received *request_at(int i)
{
	pthread_mutex_lock(&rx.mu);
	const struct received *r = i < rx.count ? &rx.reqs[i] : NULL;
	pthread_mutex_unlock(&rx.mu);
	assert_non_null(r);
	return r;
}

/* ---- capturing the log ---- */

static int saved_stderr = -1;

static void capture_start(void)
{
	fflush(stderr);
	capture_file = tmpfile();
	assert_non_null(capture_file);
	saved_stderr = dup(STDERR_FILENO);
	dup2(fileno(capture_file), STDERR_FILENO);
}

/* The log since capture_start, malloc'd; the caller frees it. */
static char *capture_stop(void)
{
	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	long n = ftell(capture_file);
	char *text = calloc(1, (size_t)n + 1);
	rewind(capture_file);
	size_t r = fread(text, 1, (size_t)n, capture_file);
	text[r] = '\0';
	fclose(capture_file);
	capture_file = NULL;
	fputs(text, stderr); /* still shown, for whoever reads the test output */
	return text;
}

/* ---- the simulator ---- */

static struct stripe_simulator_config config(int delay_ms)
{
	return (struct stripe_simulator_config){
	    .webhook_url = rx.url,
	    .webhook_secret = SECRET,
	    .delay_ms = delay_ms,
	    .failure_amount = STRIPE_SIMULATOR_FAILURE_AMOUNT,
	    .retry_base_ms = 100,
	};
}

static struct stripe_simulator *simulator_with(const struct stripe_simulator_config *c)
{
	struct hex_err err = {0};
	struct stripe_simulator *s = stripe_simulator_new(c, &err);
	if (s == NULL)
		fail_msg("simulator: %s", err.message);
	return s;
}

static struct gateway_intent_request intent_request(const char *key, int64_t amount)
{
	struct gateway_intent_request r = {
	    .amount = amount,
	    .currency = "usd",
	    .payment_id = PAYMENT_ID,
	    .user_id = USER_ID,
	    .purpose = PURPOSE_MEMBERSHIP,
	};
	hex_strlcpy(r.idempotency_key, key, sizeof r.idempotency_key);
	return r;
}

static struct gateway_checkout_request checkout_request(const char *key, int64_t amount)
{
	struct gateway_checkout_request r = {
	    .amount = amount,
	    .currency = "eur",
	    .payment_id = PAYMENT_ID,
	    .user_id = USER_ID,
	    .success_url = "http://127.0.0.1:5000/paid",
	    .cancel_url = "http://127.0.0.1:5000/cancelled",
	};
	hex_strlcpy(r.idempotency_key, key, sizeof r.idempotency_key);
	return r;
}

static enum hex_status create_intent(struct stripe_simulator *s,
                                     const struct gateway_intent_request *req,
                                     struct gateway_intent *out, struct hex_err *err)
{
	struct payment_gateway port = stripe_simulator_port(s);
	memset(err, 0, sizeof *err);
	return port.ops->create_intent(port.self, req, out, err);
}

static enum hex_status create_checkout(struct stripe_simulator *s,
                                       const struct gateway_checkout_request *req,
                                       struct gateway_checkout *out, struct hex_err *err)
{
	struct payment_gateway port = stripe_simulator_port(s);
	memset(err, 0, sizeof *err);
	return port.ops->create_checkout(port.self, req, out, err);
}

static enum hex_status retrieve_intent(struct stripe_simulator *s, const char *id,
                                       struct gateway_intent *out, struct hex_err *err)
{
	struct payment_gateway port = stripe_simulator_port(s);
	memset(err, 0, sizeof *err);
	return port.ops->retrieve_intent(port.self, id, out, err);
}

static void must_create_intent(struct stripe_simulator *s, const char *key, int64_t amount,
                               struct gateway_intent *out)
{
	struct gateway_intent_request req = intent_request(key, amount);
	struct hex_err err;
	assert_int_equal(create_intent(s, &req, out, &err), HEX_OK);
}

static void assert_random_id(const char *id, const char *prefix)
{
	size_t n = strlen(prefix);
	assert_memory_equal(id, prefix, n);
	assert_int_equal(strlen(id), n + 24);
	for (const char *p = id + n; *p != '\0'; p++)
		assert_true((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		            (*p >= 'A' && *p <= 'Z'));
}

/* Checks request r as Stripe's delivery and parses its event into ev. */
static void parse_delivery(const struct received *r, struct payment_event *ev)
{
	struct hex_err err = {0};
	assert_string_equal(r->method, "POST");
	assert_string_equal(r->path, WEBHOOK_PATH);
	assert_string_equal(r->content_type, "application/json; charset=utf-8");
	assert_int_equal(stripe_signature_verify(r->signature, r->body, r->len, SECRET,
	                                         (int64_t)time(NULL), 300, &err),
	                 HEX_OK);
	assert_int_equal(stripe_event_parse(r->body, r->len, ev, &err), HEX_OK);
}

static void wait_idle(struct stripe_simulator *s, int timeout_ms)
{
	struct stripe_simulator_stats st;
	int64_t until = now_ms() + timeout_ms;
	for (;;) {
		stripe_simulator_read_stats(s, &st);
		if (st.pending == 0)
			return;
		if (now_ms() >= until)
			fail_msg("still %llu deliveries pending", (unsigned long long)st.pending);
		sleep_ms(10);
	}
}

/* ---- tests ---- */

static void config_is_checked(void **state)
{
	struct {
		const char *url;
		const char *secret;
		int delay_ms;
		int failure_amount;
		int retry_base_ms;
		const char *field;
	} cases[] = {
	    {NULL, SECRET, 100, 13, 0, "simulated_webhook_url"},
	    {"ftp://127.0.0.1/x", SECRET, 100, 13, 0, "simulated_webhook_url"},
	    {"http://127.0.0.1/a b", SECRET, 100, 13, 0, "simulated_webhook_url"},
	    {rx.url, NULL, 100, 13, 0, "stripe_webhook_secret"},
	    {rx.url, "", 100, 13, 0, "stripe_webhook_secret"},
	    {rx.url, SECRET, -1, 13, 0, "simulated_delay_ms"},
	    {rx.url, SECRET, STRIPE_SIMULATOR_DELAY_MAX_MS + 1, 13, 0, "simulated_delay_ms"},
	    {rx.url, SECRET, 100, 100, 0, "simulated_failure_amount"},
	    {rx.url, SECRET, 100, -1, 0, "simulated_failure_amount"},
	    {rx.url, SECRET, 100, 13, -5, "simulated_retry_base_ms"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct stripe_simulator_config c = {
		    .webhook_url = cases[i].url,
		    .webhook_secret = cases[i].secret,
		    .delay_ms = cases[i].delay_ms,
		    .failure_amount = cases[i].failure_amount,
		    .retry_base_ms = cases[i].retry_base_ms,
		};
		struct hex_err err = {0};
		assert_null(stripe_simulator_new(&c, &err));
		assert_non_null(err.field);
		assert_string_equal(err.field, cases[i].field);
	}
	stripe_simulator_free(NULL);
}

static void intent_succeeds_after_the_delay(void **state)
{
	capture_start();
	struct stripe_simulator_config c = config(150);
	struct stripe_simulator *s = simulator_with(&c);
	struct gateway_intent pi;
	struct hex_err err;
	int64_t t0 = now_ms();
	must_create_intent(s, "key-success", 1099, &pi);

	assert_random_id(pi.id, "pi_sim_");
	assert_memory_equal(pi.client_secret, pi.id, strlen(pi.id));
	assert_memory_equal(pi.client_secret + strlen(pi.id), "_secret_", 8);
	assert_true(strlen(pi.client_secret) > strlen(pi.id) + 8);
	assert_int_equal(pi.status, PAYMENT_REQUIRES_PAYMENT_METHOD);
	assert_int_equal(pi.amount, 1099);
	assert_string_equal(pi.currency, "usd");

	struct gateway_intent now;
	assert_int_equal(retrieve_intent(s, pi.id, &now, &err), HEX_OK);
	assert_int_equal(now.status, PAYMENT_REQUIRES_PAYMENT_METHOD);
	sleep_ms(100);
	assert_int_equal(received_count(), 0); /* not before delay_ms */

	assert_true(wait_for(1, 3000));
	const struct received *r = request_at(0);
	assert_true(r->at_ms - t0 >= 150);
	assert_true(r->at_ms - t0 < 150 + 1500);
	struct payment_event ev;
	parse_delivery(r, &ev);
	assert_int_equal(ev.kind, EVENT_INTENT_SUCCEEDED);
	assert_string_equal(ev.type, "payment_intent.succeeded");
	assert_random_id(ev.id, "evt_sim_");
	assert_string_equal(ev.intent_id, pi.id);
	assert_string_equal(ev.payment_id, PAYMENT_ID);
	assert_int_equal(ev.amount, 1099);
	assert_string_equal(ev.currency, "usd");

	/* A signature under another secret, or of another body, does not verify. */
	assert_int_equal(stripe_signature_verify(r->signature, r->body, r->len, OTHER_SECRET,
	                                         (int64_t)time(NULL), 300, &err),
	                 HEX_INVALID);
	assert_int_equal(stripe_signature_verify(r->signature, r->body, r->len - 1, SECRET,
	                                         (int64_t)time(NULL), 300, &err),
	                 HEX_INVALID);

	/* Stripe's event shape, with our metadata. */
	json_t *root = json_loadb(r->body, r->len, 0, NULL);
	assert_non_null(root);
	assert_string_equal(json_string_value(json_object_get(root, "object")), "event");
	assert_string_equal(json_string_value(json_object_get(root, "api_version")), "2024-06-20");
	assert_true(json_integer_value(json_object_get(root, "created")) >= time(NULL) - 5);
	json_t *obj = json_object_get(json_object_get(root, "data"), "object");
	assert_string_equal(json_string_value(json_object_get(obj, "object")), "payment_intent");
	assert_string_equal(json_string_value(json_object_get(obj, "status")), "succeeded");
	assert_int_equal(json_integer_value(json_object_get(obj, "amount_received")), 1099);
	json_t *meta = json_object_get(obj, "metadata");
	assert_string_equal(json_string_value(json_object_get(meta, "payment_id")), PAYMENT_ID);
	assert_string_equal(json_string_value(json_object_get(meta, "user_id")), USER_ID);
	assert_string_equal(json_string_value(json_object_get(meta, "purpose")), "membership");
	json_decref(root);

	assert_int_equal(retrieve_intent(s, pi.id, &now, &err), HEX_OK);
	assert_int_equal(now.status, PAYMENT_SUCCEEDED);
	assert_string_equal(now.client_secret, pi.client_secret);

	/* Without chaos, once is all. */
	sleep_ms(400);
	assert_int_equal(received_count(), 1);
	struct stripe_simulator_stats st;
	stripe_simulator_read_stats(s, &st);
	assert_int_equal(st.events, 1);
	assert_int_equal(st.delivered, 1);
	assert_int_equal(st.attempts, 1);
	assert_int_equal(st.pending, 0);
	stripe_simulator_free(s);

	char *log = capture_stop();
	assert_null(strstr(log, SECRET));
	assert_null(strstr(log, pi.client_secret));
	assert_non_null(strstr(log, "simulator_webhook_delivered"));
	free(log);
}

static void declined_amount_gets_payment_failed(void **state)
{
	struct stripe_simulator_config c = config(50);
	struct stripe_simulator *s = simulator_with(&c);
	struct gateway_intent pi;
	struct hex_err err;
	must_create_intent(s, "key-declined", 2013, &pi);
	assert_true(wait_for(1, 3000));

	struct payment_event ev;
	parse_delivery(request_at(0), &ev);
	assert_int_equal(ev.kind, EVENT_INTENT_FAILED);
	assert_string_equal(ev.type, "payment_intent.payment_failed");
	assert_string_equal(ev.intent_id, pi.id);
	assert_string_equal(ev.payment_id, PAYMENT_ID);
	assert_int_equal(ev.amount, 2013);
	json_t *root = json_loadb(request_at(0)->body, request_at(0)->len, 0, NULL);
	json_t *obj = json_object_get(json_object_get(root, "data"), "object");
	assert_int_equal(json_integer_value(json_object_get(obj, "amount_received")), 0);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(obj, "last_payment_error"), "code")),
	    "card_declined");
	json_decref(root);

	/* As Stripe's: a declined intent waits for another payment method. */
	struct gateway_intent now;
	assert_int_equal(retrieve_intent(s, pi.id, &now, &err), HEX_OK);
	assert_int_equal(now.status, PAYMENT_REQUIRES_PAYMENT_METHOD);
	sleep_ms(200);
	assert_int_equal(received_count(), 1);
	stripe_simulator_free(s);
}

static void failure_rule_off_declines_nothing(void **state)
{
	struct stripe_simulator_config c = config(20);
	c.failure_amount = 0;
	struct stripe_simulator *s = simulator_with(&c);
	struct gateway_intent pi;
	must_create_intent(s, "key-rule-off", 2013, &pi);
	assert_true(wait_for(1, 3000));
	struct payment_event ev;
	parse_delivery(request_at(0), &ev);
	assert_int_equal(ev.kind, EVENT_INTENT_SUCCEEDED);
	stripe_simulator_free(s);

	/* Another rule declines its own amounts only. */
	c.failure_amount = 42;
	s = simulator_with(&c);
	must_create_intent(s, "key-rule-42a", 1042, &pi);
	must_create_intent(s, "key-rule-42b", 1013, &pi);
	assert_true(wait_for(3, 3000));
	int failed = 0, succeeded = 0;
	for (int i = 1; i < 3; i++) {
		parse_delivery(request_at(i), &ev);
		failed += ev.kind == EVENT_INTENT_FAILED && ev.amount == 1042;
		succeeded += ev.kind == EVENT_INTENT_SUCCEEDED && ev.amount == 1013;
	}
	assert_int_equal(failed, 1);
	assert_int_equal(succeeded, 1);
	stripe_simulator_free(s);
}

static void same_key_same_intent_other_params_conflict(void **state)
{
	struct stripe_simulator_config c = config(50);
	struct stripe_simulator *s = simulator_with(&c);
	struct gateway_intent first, again;
	struct hex_err err;
	must_create_intent(s, "key-idem", 1099, &first);
	must_create_intent(s, "key-idem", 1099, &again);
	assert_string_equal(again.id, first.id);
	assert_string_equal(again.client_secret, first.client_secret);

	struct gateway_intent_request other = intent_request("key-idem", 1100);
	assert_int_equal(create_intent(s, &other, &again, &err), HEX_CONFLICT);
	assert_string_equal(again.id, "");
	other = intent_request("key-idem", 1099);
	hex_strlcpy(other.currency, "eur", sizeof other.currency);
	assert_int_equal(create_intent(s, &other, &again, &err), HEX_CONFLICT);
	other = intent_request("key-idem", 1099);
	hex_strlcpy(other.payment_id, "6b0e9c1a-7d2f-4e3b-8a6c-1f2e3d4c5b6a",
	            sizeof other.payment_id);
	assert_int_equal(create_intent(s, &other, &again, &err), HEX_CONFLICT);
	other = intent_request("key-idem", 1099);
	other.purpose = PURPOSE_WALLET_TOP_UP;
	assert_int_equal(create_intent(s, &other, &again, &err), HEX_CONFLICT);
	/* The key of an intent is not a Checkout's either. */
	struct gateway_checkout_request co = checkout_request("key-idem", 1099);
	struct gateway_checkout session;
	assert_int_equal(create_checkout(s, &co, &session, &err), HEX_CONFLICT);

	/* Another key is another intent. */
	struct gateway_intent second;
	must_create_intent(s, "key-idem-2", 1099, &second);
	assert_string_not_equal(second.id, first.id);

	/* One event per intent, however often the key was replayed. */
	assert_true(wait_for(2, 3000));
	sleep_ms(300);
	assert_int_equal(received_count(), 2);
	struct stripe_simulator_stats st;
	stripe_simulator_read_stats(s, &st);
	assert_int_equal(st.payments, 2);
	assert_int_equal(st.events, 2);
	stripe_simulator_free(s);
}

static void checkout_delivers_completion_and_success(void **state)
{
	struct stripe_simulator_config c = config(80);
	struct stripe_simulator *s = simulator_with(&c);
	struct gateway_checkout_request req = checkout_request("key-checkout", 4900);
	struct gateway_checkout session, again;
	struct hex_err err;
	int64_t t0 = now_ms();
	assert_int_equal(create_checkout(s, &req, &session, &err), HEX_OK);
	assert_random_id(session.id, "cs_sim_");
	assert_random_id(session.payment_intent_id, "pi_sim_");
	char url[300];
	snprintf(url, sizeof url, "http://127.0.0.1/simulated-checkout/%s", session.id);
	assert_string_equal(session.url, url);

	assert_int_equal(create_checkout(s, &req, &again, &err), HEX_OK);
	assert_string_equal(again.id, session.id);
	assert_string_equal(again.payment_intent_id, session.payment_intent_id);
	struct gateway_checkout_request other = req;
	hex_strlcpy(other.success_url, "http://127.0.0.1:5000/elsewhere", sizeof other.success_url);
	assert_int_equal(create_checkout(s, &other, &again, &err), HEX_CONFLICT);

	assert_true(wait_for(2, 3000));
	int completed = 0, succeeded = 0;
	for (int i = 0; i < 2; i++) {
		const struct received *r = request_at(i);
		assert_true(r->at_ms - t0 >= 80);
		struct payment_event ev;
		parse_delivery(r, &ev);
		assert_string_equal(ev.intent_id, session.payment_intent_id);
		assert_string_equal(ev.payment_id, PAYMENT_ID);
		assert_int_equal(ev.amount, 4900);
		assert_string_equal(ev.currency, "eur");
		completed += ev.kind == EVENT_CHECKOUT_COMPLETED;
		succeeded += ev.kind == EVENT_INTENT_SUCCEEDED;
		if (ev.kind == EVENT_CHECKOUT_COMPLETED) {
			json_t *root = json_loadb(r->body, r->len, 0, NULL);
			json_t *obj = json_object_get(json_object_get(root, "data"), "object");
			assert_string_equal(json_string_value(json_object_get(obj, "id")),
			                    session.id);
			assert_string_equal(json_string_value(json_object_get(obj, "object")),
			                    "checkout.session");
			assert_string_equal(
			    json_string_value(json_object_get(obj, "payment_status")), "paid");
			assert_string_equal(json_string_value(json_object_get(
			                        json_object_get(obj, "metadata"), "purpose")),
			                    "membership");
			json_decref(root);
		}
	}
	assert_int_equal(completed, 1);
	assert_int_equal(succeeded, 1);

	struct gateway_intent pi;
	assert_int_equal(retrieve_intent(s, session.payment_intent_id, &pi, &err), HEX_OK);
	assert_int_equal(pi.status, PAYMENT_SUCCEEDED);
	assert_int_equal(pi.amount, 4900);
	sleep_ms(200);
	assert_int_equal(received_count(), 2);
	stripe_simulator_free(s);
}

static void bad_requests_are_refused_and_send_nothing(void **state)
{
	struct stripe_simulator_config c = config(0);
	struct stripe_simulator *s = simulator_with(&c);
	struct gateway_intent pi;
	struct gateway_checkout session;
	struct hex_err err;

	struct gateway_intent_request req = intent_request("key-bad", 0);
	assert_int_equal(create_intent(s, &req, &pi, &err), HEX_INVALID);
	assert_string_equal(err.field, "amount");
	req = intent_request("key-bad", HEX_AMOUNT_MAX + 1LL);
	assert_int_equal(create_intent(s, &req, &pi, &err), HEX_INVALID);
	assert_string_equal(err.field, "amount");
	req = intent_request("key-bad", 100);
	hex_strlcpy(req.currency, "US", sizeof req.currency);
	assert_int_equal(create_intent(s, &req, &pi, &err), HEX_INVALID);
	assert_string_equal(err.field, "currency");
	req = intent_request("", 100);
	assert_int_equal(create_intent(s, &req, &pi, &err), HEX_INTERNAL);
	req = intent_request("key-bad", 100);
	hex_strlcpy(req.payment_id, "not-a-uuid", sizeof req.payment_id);
	assert_int_equal(create_intent(s, &req, &pi, &err), HEX_INTERNAL);
	req = intent_request("key-bad", 100);
	req.purpose = (enum payment_purpose)7;
	assert_int_equal(create_intent(s, &req, &pi, &err), HEX_INVALID);
	assert_string_equal(err.field, "purpose");

	struct gateway_checkout_request co = checkout_request("key-bad-co", 100);
	co.success_url[0] = '\0';
	assert_int_equal(create_checkout(s, &co, &session, &err), HEX_INVALID);
	assert_string_equal(err.field, "success_url");
	co = checkout_request("key-bad-co", 100);
	co.cancel_url[0] = '\0';
	assert_int_equal(create_checkout(s, &co, &session, &err), HEX_INVALID);
	assert_string_equal(err.field, "cancel_url");

	/* Nothing was made, so retrieving anything is 404 and nothing is sent. */
	assert_int_equal(retrieve_intent(s, "pi_sim_000000000000000000000000", &pi, &err),
	                 HEX_NOT_FOUND);
	assert_int_equal(retrieve_intent(s, "pi_sim/../x", &pi, &err), HEX_INVALID);
	assert_string_equal(err.field, "id");
	assert_int_equal(retrieve_intent(s, "", &pi, &err), HEX_INVALID);
	assert_int_equal(retrieve_intent(s, NULL, &pi, &err), HEX_INVALID);
	struct stripe_simulator_stats st;
	stripe_simulator_read_stats(s, &st);
	assert_int_equal(st.payments, 0);
	assert_int_equal(st.events, 0);
	sleep_ms(150);
	assert_int_equal(received_count(), 0);
	stripe_simulator_free(s);
}

static void server_error_is_retried_with_backoff(void **state)
{
	rx.fail_first = 2;
	struct stripe_simulator_config c = config(20);
	struct stripe_simulator *s = simulator_with(&c);
	struct gateway_intent pi;
	must_create_intent(s, "key-retry", 1500, &pi);
	assert_true(wait_for(3, 5000));
	wait_idle(s, 3000);

	struct payment_event first, ev;
	parse_delivery(request_at(0), &first);
	for (int i = 1; i < 3; i++) {
		parse_delivery(request_at(i), &ev);
		assert_string_equal(ev.id, first.id);
	}
	/* 100 ms, then 200 ms: doubling from retry_base_ms. */
	int64_t gap1 = request_at(1)->at_ms - request_at(0)->at_ms;
	int64_t gap2 = request_at(2)->at_ms - request_at(1)->at_ms;
	assert_true(gap1 >= 95 && gap1 < 1000);
	assert_true(gap2 >= 195 && gap2 < 1200);

	struct stripe_simulator_stats st;
	stripe_simulator_read_stats(s, &st);
	assert_int_equal(st.attempts, 3);
	assert_int_equal(st.delivered, 1);
	assert_int_equal(st.dropped, 0);
	sleep_ms(300);
	assert_int_equal(received_count(), 3);
	stripe_simulator_free(s);
}

static void gives_up_after_five_attempts(void **state)
{
	rx.fail_first = 1000;
	struct stripe_simulator_config c = config(0);
	c.retry_base_ms = 20;
	struct stripe_simulator *s = simulator_with(&c);
	struct gateway_intent pi;
	capture_start();
	must_create_intent(s, "key-give-up", 1500, &pi);
	bool came = wait_for(5, 5000);
	if (came)
		wait_idle(s, 3000);
	char *log = capture_stop();
	assert_true(came);
	sleep_ms(400); /* 20+40+80+160 ms of backoff are over: a sixth would be here */
	assert_int_equal(received_count(), 5);
	struct stripe_simulator_stats st;
	stripe_simulator_read_stats(s, &st);
	assert_int_equal(st.attempts, 5);
	assert_int_equal(st.delivered, 0);
	assert_int_equal(st.dropped, 1);
	assert_non_null(strstr(log, "simulator_webhook_failed"));
	assert_non_null(strstr(log, "simulator_webhook_dropped"));
	assert_null(strstr(log, SECRET));
	free(log);
	stripe_simulator_free(s);
}

/* Index in events[] of id, adding it if new. */
static int event_index(char (*events)[HEX_STRIPE_ID_MAX + 1], int *n, const char *id)
{
	for (int i = 0; i < *n; i++)
		if (strcmp(events[i], id) == 0)
			return i;
	hex_strlcpy(events[*n], id, HEX_STRIPE_ID_MAX + 1);
	return (*n)++;
}

static void chaos_duplicates_reorders_and_loses_but_delivers_all(void **state)
{
	enum { INTENTS = 24, CHECKOUTS = 6 };
	struct stripe_simulator_config c = config(60);
	c.chaos = true;
	c.seed = 20261129;
	c.retry_base_ms = 60;
	capture_start();
	struct stripe_simulator *s = simulator_with(&c);
	struct gateway_intent pis[INTENTS];
	for (int i = 0; i < INTENTS; i++) {
		char key[32];
		snprintf(key, sizeof key, "key-chaos-%d", i);
		/* Every sixth is declined by the rule. */
		must_create_intent(s, key, i % 6 == 5 ? 1013 : 1500 + 100 * i, &pis[i]);
	}
	for (int i = 0; i < CHECKOUTS; i++) {
		char key[32];
		snprintf(key, sizeof key, "key-chaos-co-%d", i);
		struct gateway_checkout_request req = checkout_request(key, 2500);
		struct gateway_checkout session;
		struct hex_err err;
		assert_int_equal(create_checkout(s, &req, &session, &err), HEX_OK);
	}
	struct stripe_simulator_stats st;
	stripe_simulator_read_stats(s, &st);
	assert_true(st.chaos_duplicates > 0);
	assert_true(st.chaos_lost > 0);
	assert_true(st.chaos_declined_attempts > 0);
	assert_int_equal(st.events, INTENTS + 2 * CHECKOUTS + st.chaos_declined_attempts);
	wait_idle(s, 15000);
	stripe_simulator_read_stats(s, &st);
	char *log = capture_stop();

	/* Every event id came at least once, some twice; all were signed. */
	static char events[RECV_MAX][HEX_STRIPE_ID_MAX + 1];
	int seen[RECV_MAX] = {0};
	int distinct = 0, count = received_count();
	assert_int_equal(count, (int)st.delivered);
	assert_int_equal(st.dropped, 0);
	bool reordered = false;
	for (int i = 0; i < count; i++) {
		struct payment_event ev;
		parse_delivery(request_at(i), &ev);
		int k = event_index(events, &distinct, ev.id);
		seen[k]++;
		/* A payment_failed after a success of the same intent was overtaken. */
		for (int j = 0; ev.kind == EVENT_INTENT_FAILED && j < i; j++) {
			struct payment_event before;
			parse_delivery(request_at(j), &before);
			reordered |= before.kind == EVENT_INTENT_SUCCEEDED &&
			             strcmp(before.intent_id, ev.intent_id) == 0;
		}
	}
	assert_int_equal(distinct, (int)st.events);
	int twice = 0;
	for (int i = 0; i < distinct; i++)
		twice += seen[i] >= 2;
	assert_true(twice > 0);
	assert_int_equal(count, distinct + twice);
	assert_true(reordered);
	assert_int_equal(st.attempts, st.delivered + st.chaos_lost);

	/* Whatever came in whatever order, every succeeding intent ends succeeded. */
	for (int i = 0; i < INTENTS; i++) {
		struct gateway_intent now;
		struct hex_err err;
		assert_int_equal(retrieve_intent(s, pis[i].id, &now, &err), HEX_OK);
		assert_int_equal(now.status,
		                 i % 6 == 5 ? PAYMENT_REQUIRES_PAYMENT_METHOD : PAYMENT_SUCCEEDED);
	}
	stripe_simulator_free(s);

	for (const char *ev = "simulator_chaos_duplicate\0simulator_chaos_late\0"
	                      "simulator_chaos_lost\0simulator_chaos_declined_attempt\0";
	     *ev != '\0'; ev += strlen(ev) + 1)
		assert_non_null(strstr(log, ev));
	assert_null(strstr(log, SECRET));
	free(log);
}

static void chaos_repeats_with_the_same_seed(void **state)
{
	struct stripe_simulator_stats runs[2];
	for (int run = 0; run < 2; run++) {
		struct stripe_simulator_config c = config(60000);
		c.chaos = true;
		c.seed = 7;
		struct stripe_simulator *s = simulator_with(&c);
		for (int i = 0; i < 40; i++) {
			char key[32];
			struct gateway_intent pi;
			snprintf(key, sizeof key, "key-seed-%d", i);
			must_create_intent(s, key, 1000 + i, &pi);
		}
		stripe_simulator_read_stats(s, &runs[run]);
		stripe_simulator_free(s);
	}
	assert_true(
	    runs[0].chaos_duplicates + runs[0].chaos_lost + runs[0].chaos_declined_attempts > 0);
	assert_int_equal(runs[0].events, runs[1].events);
	assert_int_equal(runs[0].chaos_duplicates, runs[1].chaos_duplicates);
	assert_int_equal(runs[0].chaos_lost, runs[1].chaos_lost);
	assert_int_equal(runs[0].chaos_declined_attempts, runs[1].chaos_declined_attempts);
	assert_int_equal(received_count(), 0);
}

static void free_with_pending_deliveries_is_prompt_and_final(void **state)
{
	struct stripe_simulator_config c = config(200);
	c.chaos = true;
	c.seed = 99;
	struct stripe_simulator *s = simulator_with(&c);
	for (int i = 0; i < 10; i++) {
		char key[32];
		struct gateway_intent pi;
		snprintf(key, sizeof key, "key-free-%d", i);
		must_create_intent(s, key, 1000 + i, &pi);
	}
	struct stripe_simulator_stats st;
	stripe_simulator_read_stats(s, &st);
	assert_true(st.pending >= 10);
	int64_t t0 = now_ms();
	stripe_simulator_free(s);
	assert_true(now_ms() - t0 < 300);
	sleep_ms(500);
	assert_int_equal(received_count(), 0);
}

static void free_interrupts_a_stalled_delivery(void **state)
{
	rx.stall = true;
	struct stripe_simulator_config c = config(0);
	struct stripe_simulator *s = simulator_with(&c);
	struct gateway_intent pi;
	must_create_intent(s, "key-stall", 1000, &pi);
	must_create_intent(s, "key-stall-2", 1001, &pi);
	assert_true(wait_for(1, 3000));
	sleep_ms(50);
	int64_t t0 = now_ms();
	stripe_simulator_free(s);
	/* The POST would wait STRIPE_SIMULATOR_DELIVERY_TIMEOUT_MS for an answer. */
	assert_true(now_ms() - t0 < 500);
	sleep_ms(200);
	assert_int_equal(received_count(), 1);
}

struct racer {
	struct stripe_simulator *s;
	int index;
	struct gateway_intent shared;
	char own[10][HEX_STRIPE_ID_MAX + 1];
	int failures;
};

static void *race_creates(void *arg)
{
	struct racer *r = arg;
	for (int i = 0; i < 10; i++) {
		struct gateway_intent_request req = intent_request("key-race-shared", 777);
		struct gateway_intent pi;
		struct hex_err err;
		if (create_intent(r->s, &req, &r->shared, &err) != HEX_OK)
			r->failures++;
		char key[32];
		snprintf(key, sizeof key, "key-race-%d-%d", r->index, i);
		req = intent_request(key, 700 + i);
		if (create_intent(r->s, &req, &pi, &err) != HEX_OK)
			r->failures++;
		hex_strlcpy(r->own[i], pi.id, sizeof r->own[i]);
	}
	return NULL;
}

static void threads_share_one_simulator(void **state)
{
	enum { THREADS = 4 };
	struct stripe_simulator_config c = config(30);
	struct stripe_simulator *s = simulator_with(&c);
	struct racer racers[THREADS];
	pthread_t threads[THREADS];
	for (int i = 0; i < THREADS; i++) {
		racers[i] = (struct racer){.s = s, .index = i};
		assert_int_equal(pthread_create(&threads[i], NULL, race_creates, &racers[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(racers[i].failures, 0);
		assert_string_equal(racers[i].shared.id, racers[0].shared.id);
		for (int j = 0; j < 10; j++) {
			assert_string_not_equal(racers[i].own[j], racers[0].shared.id);
			for (int k = 0; k < i; k++)
				for (int l = 0; l < 10; l++)
					assert_string_not_equal(racers[i].own[j], racers[k].own[l]);
		}
	}
	int want = 1 + THREADS * 10;
	assert_true(wait_for(want, 10000));
	wait_idle(s, 5000);
	assert_int_equal(received_count(), want);
	struct stripe_simulator_stats st;
	stripe_simulator_read_stats(s, &st);
	assert_int_equal(st.payments, want);
	stripe_simulator_free(s);
}

int main(void)
{
	logger_setup(LOGGER_JSON, LOGGER_INFO);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(config_is_checked, receiver_start, receiver_stop),
	    cmocka_unit_test_setup_teardown(intent_succeeds_after_the_delay, receiver_start,
	                                    receiver_stop),
	    cmocka_unit_test_setup_teardown(declined_amount_gets_payment_failed, receiver_start,
	                                    receiver_stop),
	    cmocka_unit_test_setup_teardown(failure_rule_off_declines_nothing, receiver_start,
	                                    receiver_stop),
	    cmocka_unit_test_setup_teardown(same_key_same_intent_other_params_conflict,
	                                    receiver_start, receiver_stop),
	    cmocka_unit_test_setup_teardown(checkout_delivers_completion_and_success,
	                                    receiver_start, receiver_stop),
	    cmocka_unit_test_setup_teardown(bad_requests_are_refused_and_send_nothing,
	                                    receiver_start, receiver_stop),
	    cmocka_unit_test_setup_teardown(server_error_is_retried_with_backoff, receiver_start,
	                                    receiver_stop),
	    cmocka_unit_test_setup_teardown(gives_up_after_five_attempts, receiver_start,
	                                    receiver_stop),
	    cmocka_unit_test_setup_teardown(chaos_duplicates_reorders_and_loses_but_delivers_all,
	                                    receiver_start, receiver_stop),
	    cmocka_unit_test_setup_teardown(chaos_repeats_with_the_same_seed, receiver_start,
	                                    receiver_stop),
	    cmocka_unit_test_setup_teardown(free_with_pending_deliveries_is_prompt_and_final,
	                                    receiver_start, receiver_stop),
	    cmocka_unit_test_setup_teardown(free_interrupts_a_stalled_delivery, receiver_start,
	                                    receiver_stop),
	    cmocka_unit_test_setup_teardown(threads_share_one_simulator, receiver_start,
	                                    receiver_stop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

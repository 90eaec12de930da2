/* stripe_simulator_delivery.c: the simulator's signed webhook POSTs, queued by time. */
#include "adapters/stripe/stripe_simulator_delivery.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapters/crypto/hmac.h"
#include "core/logger.h"
#include "core/payment.h"
#include "core/xmalloc.h"

#define POLL_MS      1000 /* a wake-up ends the wait at once; this only bounds it */
#define USER_AGENT   "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
#define CONTENT_TYPE "Content-Type: application/json; charset=utf-8"

struct stripe_simulator_delivery_item {
	int64_t due_ms;
	uint64_t seq; /* FIFO among equal due times */
	int attempt;  /* attempts made so far */
	unsigned chaos;
	char id[HEX_STRIPE_ID_MAX + 1];
	char type[64];
	char about[HEX_STRIPE_ID_MAX + 1];
	char *body;
};

struct stripe_simulator_delivery {
	char *url;
	char *secret; /* wiped on free */
	int retry_base_ms;
	CURL *curl;   /* the thread's alone */
	CURLM *multi; /* so that free() can interrupt a POST with curl_multi_wakeup */
	char curl_error[CURL_ERROR_SIZE];

	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cond; /* on CLOCK_MONOTONIC */
	atomic_bool stopping;

	/* Guarded by mu: a binary min-heap on (due_ms, seq). */
	struct stripe_simulator_delivery_item **heap;
	size_t count;
	size_t cap;
	uint64_t next_seq;
	bool in_flight;
	struct stripe_simulator_delivery_stats stats;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

/* curl_global_init is not thread-safe in older libcurl: once per process, first use. */
static void stripe_simulator_delivery_global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int64_t stripe_simulator_delivery_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool stripe_simulator_delivery_url_valid(const char *url)
{
	if (url == NULL || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
		return false;
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)url; *p != '\0'; p++, n++)
		if (n >= STRIPE_SIMULATOR_DELIVERY_URL_MAX || *p <= 0x20 || *p > 0x7e)
			return false;
	return true;
}

/* ---- the queue (callers hold mu) ---- */

static bool stripe_simulator_delivery_before(const struct stripe_simulator_delivery_item *a,
                                             const struct stripe_simulator_delivery_item *b)
{
	return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->seq < b->seq);
}

static void stripe_simulator_delivery_swap(struct stripe_simulator_delivery *d, size_t i, size_t j)
{
	struct stripe_simulator_delivery_item *t = d->heap[i];
	d->heap[i] = d->heap[j];
	d->heap[j] = t;
}

static void stripe_simulator_delivery_push(struct stripe_simulator_delivery *d,
                                           struct stripe_simulator_delivery_item *it)
{
	if (d->count == d->cap) {
		d->cap = d->cap > 0 ? 2 * d->cap : 64;
		d->heap = xrealloc(d->heap, d->cap * sizeof *d->heap);
	}
	it->seq = d->next_seq++;
	size_t i = d->count++;
	d->heap[i] = it;
	while (i > 0 && stripe_simulator_delivery_before(d->heap[i], d->heap[(i - 1) / 2])) {
		stripe_simulator_delivery_swap(d, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	/* The thread may be sleeping until a later due time than this one. */
	pthread_cond_signal(&d->cond);
}

static struct stripe_simulator_delivery_item *
stripe_simulator_delivery_pop(struct stripe_simulator_delivery *d)
{
	struct stripe_simulator_delivery_item *top = d->heap[0];
	d->heap[0] = d->heap[--d->count];
	for (size_t i = 0;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < d->count && stripe_simulator_delivery_before(d->heap[l], d->heap[m]))
			m = l;
		if (r < d->count && stripe_simulator_delivery_before(d->heap[r], d->heap[m]))
			m = r;
		if (m == i)
			break;
		stripe_simulator_delivery_swap(d, i, m);
		i = m;
	}
	return top;
}

static void stripe_simulator_delivery_item_free(struct stripe_simulator_delivery_item *it)
{
	if (it == NULL)
		return;
	free(it->body);
	free(it);
}

/* Waits for the first item that is due; NULL once stopping. */
static struct stripe_simulator_delivery_item *
stripe_simulator_delivery_next(struct stripe_simulator_delivery *d)
{
	while (!atomic_load(&d->stopping)) {
		if (d->count == 0) {
			pthread_cond_wait(&d->cond, &d->mu);
			continue;
		}
		int64_t due = d->heap[0]->due_ms;
		if (due <= stripe_simulator_delivery_now_ms())
			return stripe_simulator_delivery_pop(d);
		struct timespec until = {.tv_sec = due / 1000, .tv_nsec = (due % 1000) * 1000000};
		pthread_cond_timedwait(&d->cond, &d->mu, &until);
	}
	return NULL;
}

/* ---- one attempt ---- */

static size_t stripe_simulator_delivery_discard(char *data, size_t size, size_t n, void *arg)
{
	return size * n;
}

/* Runs the prepared easy handle to its end, or until free() says stop. */
static CURLcode stripe_simulator_delivery_perform(struct stripe_simulator_delivery *d)
{
	CURLcode result = CURLE_ABORTED_BY_CALLBACK;
	if (curl_multi_add_handle(d->multi, d->curl) != CURLM_OK)
		return CURLE_FAILED_INIT;
	while (!atomic_load(&d->stopping)) {
		int running = 0;
		if (curl_multi_perform(d->multi, &running) != CURLM_OK) {
			result = CURLE_FAILED_INIT;
			break;
		}
		if (running == 0) {
			int left = 0;
			CURLMsg *m;
			while ((m = curl_multi_info_read(d->multi, &left)) != NULL)
				if (m->msg == CURLMSG_DONE)
					result = m->data.result;
			break;
		}
		if (curl_multi_poll(d->multi, NULL, 0, POLL_MS, NULL) != CURLM_OK) {
			result = CURLE_FAILED_INIT;
			break;
		}
	}
	curl_multi_remove_handle(d->multi, d->curl);
	return result;
}

/*
 * POSTs it->body signed as of now. Fills why (size n) on failure, for the log. Stripe
 * signs every attempt afresh, so a retry much later still passes the receiver's
 * timestamp tolerance.
 */
static bool stripe_simulator_delivery_post(struct stripe_simulator_delivery *d,
                                           const struct stripe_simulator_delivery_item *it,
                                           char *why, size_t n)
{
	long long t = (long long)time(NULL);
	char *signed_text = xasprintf("%lld.%s", t, it->body);
	char v1[2 * CRYPTO_HMAC_SHA256_LEN + 1];
	crypto_hmac_sha256_hex(d->secret, strlen(d->secret), signed_text, strlen(signed_text), v1);
	free(signed_text);
	char *signature = xasprintf("Stripe-Signature: t=%lld,v1=%s", t, v1);

	struct curl_slist *headers = NULL;
	headers = curl_slist_append(headers, CONTENT_TYPE);
	headers = curl_slist_append(headers, signature);
	/* No "Expect: 100-continue" round trip: Stripe sends the body at once. */
	headers = curl_slist_append(headers, "Expect:");
	if (headers == NULL) /* only an allocation fails curl_slist_append */
		abort();

	d->curl_error[0] = '\0';
	curl_easy_setopt(d->curl, CURLOPT_URL, d->url);
	curl_easy_setopt(d->curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(d->curl, CURLOPT_POSTFIELDS, it->body);
	curl_easy_setopt(d->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(it->body));
	CURLcode rc = stripe_simulator_delivery_perform(d);
	long status = 0;
	if (rc == CURLE_OK)
		curl_easy_getinfo(d->curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_setopt(d->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(headers);
	free(signature);

	if (rc != CURLE_OK)
		snprintf(why, n, "%s",
		         d->curl_error[0] != '\0' ? d->curl_error : curl_easy_strerror(rc));
	else if (status < 200 || status > 299)
		snprintf(why, n, "HTTP %ld", status);
	return rc == CURLE_OK && status >= 200 && status <= 299;
}

/* Says what chaos does to this attempt; true when the attempt is to be "lost". */
static bool stripe_simulator_delivery_apply_chaos(const struct stripe_simulator_delivery *d,
                                                  const struct stripe_simulator_delivery_item *it)
{
	if (it->attempt != 1)
		return false;
	if (it->chaos & SIM_CHAOS_DUPLICATE)
		log_info("simulator_chaos_duplicate", "delivering %s (%s, %s) a second time",
		         it->id, it->type, it->about);
	if (it->chaos & SIM_CHAOS_LATE)
		log_info("simulator_chaos_late",
		         "delivering %s (%s, %s) late: a later event about it went first", it->id,
		         it->type, it->about);
	if (it->chaos & SIM_CHAOS_LOSE_FIRST) {
		log_info("simulator_chaos_lost",
		         "losing the first delivery of %s (%s, %s): it is retried in %d ms", it->id,
		         it->type, it->about, d->retry_base_ms);
		return true;
	}
	return false;
}

/* Frees it, or queues it again after the backoff; under mu. */
static void stripe_simulator_delivery_settle(struct stripe_simulator_delivery *d,
                                             struct stripe_simulator_delivery_item *it, bool ok,
                                             const char *why)
{
	d->stats.attempts++;
	if (ok) {
		d->stats.delivered++;
		log_info("simulator_webhook_delivered", "%s (%s, %s) delivered on attempt %d",
		         it->id, it->type, it->about, it->attempt);
		stripe_simulator_delivery_item_free(it);
		return;
	}
	d->stats.failed++;
	if (it->attempt >= STRIPE_SIMULATOR_DELIVERY_ATTEMPTS) {
		d->stats.dropped++;
		log_warn("simulator_webhook_dropped", "%s (%s, %s) dropped after %d attempts: %s",
		         it->id, it->type, it->about, it->attempt, why);
		stripe_simulator_delivery_item_free(it);
		return;
	}
	int64_t wait = (int64_t)d->retry_base_ms << (it->attempt - 1);
	if (wait > STRIPE_SIMULATOR_DELIVERY_RETRY_MAX_MS)
		wait = STRIPE_SIMULATOR_DELIVERY_RETRY_MAX_MS;
	if (why[0] != '\0')
		log_warn("simulator_webhook_failed",
		         "%s (%s, %s) attempt %d of %d: %s; next in %lld ms", it->id, it->type,
		         it->about, it->attempt, STRIPE_SIMULATOR_DELIVERY_ATTEMPTS, why,
		         (long long)wait);
	it->due_ms = stripe_simulator_delivery_now_ms() + wait;
	stripe_simulator_delivery_push(d, it);
}

static void *stripe_simulator_delivery_run(void *arg)
{
	struct stripe_simulator_delivery *d = arg;
	for (;;) {
		pthread_mutex_lock(&d->mu);
		struct stripe_simulator_delivery_item *it = stripe_simulator_delivery_next(d);
		d->in_flight = it != NULL;
		pthread_mutex_unlock(&d->mu);
		if (it == NULL)
			break;

		char why[CURL_ERROR_SIZE + 32] = "";
		it->attempt++;
		bool lost = stripe_simulator_delivery_apply_chaos(d, it);
		bool ok = !lost && stripe_simulator_delivery_post(d, it, why, sizeof why);

		pthread_mutex_lock(&d->mu);
		d->in_flight = false;
		if (atomic_load(&d->stopping)) {
			pthread_mutex_unlock(&d->mu);
			stripe_simulator_delivery_item_free(it);
			break;
		}
		stripe_simulator_delivery_settle(d, it, ok, why);
		pthread_mutex_unlock(&d->mu);
	}
	return NULL;
}

/* ---- life cycle ---- */

static bool stripe_simulator_delivery_curl(struct stripe_simulator_delivery *d)
{
	pthread_once(&global_once, stripe_simulator_delivery_global_init);
	if (global_rc != CURLE_OK)
		return false;
	d->curl = curl_easy_init();
	d->multi = curl_multi_init();
	if (d->curl == NULL || d->multi == NULL)
		return false;
	curl_easy_setopt(d->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(d->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(d->curl, CURLOPT_CONNECTTIMEOUT_MS,
	                 (long)STRIPE_SIMULATOR_DELIVERY_CONNECT_MS);
	curl_easy_setopt(d->curl, CURLOPT_TIMEOUT_MS, (long)STRIPE_SIMULATOR_DELIVERY_TIMEOUT_MS);
	curl_easy_setopt(d->curl, CURLOPT_USERAGENT, USER_AGENT);
	curl_easy_setopt(d->curl, CURLOPT_WRITEFUNCTION, stripe_simulator_delivery_discard);
	curl_easy_setopt(d->curl, CURLOPT_ERRORBUFFER, d->curl_error);
	return true;
}

struct stripe_simulator_delivery *stripe_simulator_delivery_new(const char *url, const char *secret,
                                                                int retry_base_ms,
                                                                struct hex_err *err)
{
	if (!stripe_simulator_delivery_url_valid(url)) {
		hex_fail(err, HEX_INVALID, "simulated_webhook_url",
		         "the simulator's webhook URL must be an http:// or https:// URL");
		return NULL;
	}
	if (secret == NULL || secret[0] == '\0') {
		hex_fail(err, HEX_INVALID, "stripe_webhook_secret",
		         "the simulator needs the webhook secret to sign its deliveries");
		return NULL;
	}
	if (retry_base_ms < 1 || retry_base_ms > STRIPE_SIMULATOR_DELIVERY_RETRY_MAX_MS) {
		hex_fail(err, HEX_INVALID, "simulated_retry_base_ms",
		         "the simulator's retry wait must be 1..%d ms",
		         STRIPE_SIMULATOR_DELIVERY_RETRY_MAX_MS);
		return NULL;
	}

	struct stripe_simulator_delivery *d = xcalloc(1, sizeof *d);
	d->url = xstrdup(url);
	d->secret = xstrdup(secret);
	d->retry_base_ms = retry_base_ms;
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&d->cond, &attr);
	pthread_condattr_destroy(&attr);
	pthread_mutex_init(&d->mu, NULL);
	atomic_init(&d->stopping, false);
	if (!stripe_simulator_delivery_curl(d)) {
		hex_fail(err, HEX_INTERNAL, NULL, "libcurl failed to initialise");
		goto fail;
	}
	if (pthread_create(&d->thread, NULL, stripe_simulator_delivery_run, d) != 0) {
		hex_fail(err, HEX_INTERNAL, NULL, "cannot start the simulator's delivery thread");
		goto fail;
	}
	return d;
fail:
	curl_multi_cleanup(d->multi);
	curl_easy_cleanup(d->curl);
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->mu);
	explicit_bzero(d->secret, strlen(d->secret));
	free(d->secret);
	free(d->url);
	free(d);
	return NULL;
}

void stripe_simulator_delivery_free(struct stripe_simulator_delivery *d)
{
	if (d == NULL)
		return;
	pthread_mutex_lock(&d->mu);
	atomic_store(&d->stopping, true);
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->mu);
	curl_multi_wakeup(d->multi);
	pthread_join(d->thread, NULL);

	if (d->count > 0)
		log_info("simulator_stopped", "%zu webhook deliveries discarded unsent", d->count);
	for (size_t i = 0; i < d->count; i++)
		stripe_simulator_delivery_item_free(d->heap[i]);
	free(d->heap);
	curl_multi_cleanup(d->multi);
	curl_easy_cleanup(d->curl);
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->mu);
	explicit_bzero(d->secret, strlen(d->secret));
	free(d->secret);
	free(d->url);
	free(d);
}

void stripe_simulator_delivery_schedule(struct stripe_simulator_delivery *d,
                                        const struct stripe_simulator_delivery_event *ev)
{
	struct stripe_simulator_delivery_item *it = xcalloc(1, sizeof *it);
	hex_strlcpy(it->id, ev->id, sizeof it->id);
	hex_strlcpy(it->type, ev->type, sizeof it->type);
	hex_strlcpy(it->about, ev->about, sizeof it->about);
	it->body = ev->body;
	it->due_ms = ev->due_ms;
	it->chaos = ev->chaos;
	pthread_mutex_lock(&d->mu);
	stripe_simulator_delivery_push(d, it);
	pthread_mutex_unlock(&d->mu);
}

void stripe_simulator_delivery_stats(struct stripe_simulator_delivery *d,
                                     struct stripe_simulator_delivery_stats *out)
{
	pthread_mutex_lock(&d->mu);
	*out = d->stats;
	out->pending = d->count + (d->in_flight ? 1 : 0);
	pthread_mutex_unlock(&d->mu);
}

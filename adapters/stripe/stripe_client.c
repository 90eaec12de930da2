/* stripe_client.c: libcurl requests to Stripe with retries and Stripe's error mapping. */
#include "adapters/stripe/stripe_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "core/logger.h"
#include "core/xmalloc.h"

#define API_BASE_MAX        512
#define SECRET_KEY_MAX      256
#define TRACE_PARENT_MAX    55
#define IDEMPOTENCY_KEY_MAX 255
#define BACKOFF_BASE_MAX_MS 60000
#define USER_AGENT          "hexd/" HEX_VERSION

struct stripe_client {
	CURL *curl;
	char *api_base;    /* without a trailing slash */
	char *auth_header; /* "Authorization: Bearer <key>": a secret, wiped on free */
	int connect_timeout_ms;
	int timeout_ms;
	int max_retries;
	int backoff_base_ms;
	uint64_t rng; /* xorshift state for the backoff jitter */
	atomic_flag busy;
	char curl_error[CURL_ERROR_SIZE];
};

/* One attempt's answer. */
struct stripe_answer {
	char *body;
	size_t len;
	size_t cap;
	bool too_large;
	int should_retry; /* Stripe-Should-Retry: -1 absent, 0 false, 1 true */
	bool replayed;
	char request_id[64];
};

/* What to do after an attempt. */
enum stripe_verdict { VERDICT_DONE = 0, VERDICT_RETRY };

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

/* curl_global_init is not thread-safe in older libcurl: once per process, first use. */
static void stripe_client_global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/*
 * A final non-2xx answer, first by status as Stripe's own libraries do (a bad key comes
 * back as 401 with type invalid_request_error), then, for the rest, by error type.
 */
static const struct {
	long status;
	enum hex_status result;
} error_statuses[] = {
    {401, HEX_INTERNAL},    /* authentication: our key is wrong */
    {403, HEX_INTERNAL},    /* permission: our (restricted) key may not do this */
    {402, HEX_INVALID},     /* card_error */
    {404, HEX_NOT_FOUND},   /* no such object */
    {409, HEX_UNAVAILABLE}, /* lock_timeout or a concurrent use of the key: later */
    {429, HEX_UNAVAILABLE}, /* still rate limited after the retries */
};

static const struct {
	const char *type;
	enum hex_status result;
} error_types[] = {
    {"card_error", HEX_INVALID},         {"invalid_request_error", HEX_INVALID},
    {"idempotency_error", HEX_CONFLICT}, {"authentication_error", HEX_INTERNAL},
    {"permission_error", HEX_INTERNAL},  {"rate_limit_error", HEX_UNAVAILABLE},
    {"api_error", HEX_UNAVAILABLE},
};

/* Stripe's `param` names, as the fields of our own API that carry them (static strings). */
static const struct {
	const char *param;
	const char *field;
} param_fields[] = {
    {"amount", "amount"},
    {"currency", "currency"},
    {"line_items[0][price_data][unit_amount]", "amount"},
    {"line_items[0][price_data][currency]", "currency"},
    {"success_url", "success_url"},
    {"cancel_url", "cancel_url"},
    {"payment_method", "payment_method"},
};

/* Failures that another attempt cannot fix: they come from our side or our setup. */
static const CURLcode final_curl_errors[] = {
    CURLE_UNSUPPORTED_PROTOCOL,
    CURLE_URL_MALFORMAT,
    CURLE_NOT_BUILT_IN,
    CURLE_WRITE_ERROR,
    CURLE_SSL_CERTPROBLEM,
    CURLE_SSL_CACERT_BADFILE,
    CURLE_PEER_FAILED_VERIFICATION,
};

/* 1..max visible ASCII characters: nothing that could end or split a header line. */
static bool stripe_client_header_safe(const char *s, size_t max)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++, n++)
		if (n >= max || *p > 0x7e || *p <= 0x20)
			return false;
	return n > 0;
}

static uint64_t stripe_client_random(struct stripe_client *c)
{
	uint64_t x = c->rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	c->rng = x;
	return x;
}

struct stripe_client *stripe_client_new(const struct stripe_config *cfg, struct hex_err *err)
{
	const char *base = cfg->api_base;
	size_t base_len = base != NULL ? strlen(base) : 0;
	if (base == NULL ||
	    (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0) ||
	    !stripe_client_header_safe(base, API_BASE_MAX)) {
		hex_fail(err, HEX_INVALID, "stripe_api_base",
		         "stripe_api_base must be an http:// or https:// URL");
		return NULL;
	}
	if (cfg->secret_key == NULL ||
	    !stripe_client_header_safe(cfg->secret_key, SECRET_KEY_MAX)) {
		hex_fail(err, HEX_INVALID, "stripe_secret_key",
		         "stripe_secret_key must be set, without spaces");
		return NULL;
	}
	if (cfg->connect_timeout_ms <= 0 || cfg->timeout_ms <= 0) {
		hex_fail(err, HEX_INVALID,
		         cfg->connect_timeout_ms <= 0 ? "stripe_connect_timeout_ms"
		                                      : "stripe_timeout_ms",
		         "Stripe timeouts must be positive");
		return NULL;
	}
	if (cfg->max_retries < 0 || cfg->max_retries > STRIPE_CLIENT_RETRIES_MAX) {
		hex_fail(err, HEX_INVALID, "stripe_max_retries", "stripe_max_retries must be 0..%d",
		         STRIPE_CLIENT_RETRIES_MAX);
		return NULL;
	}
	if (cfg->backoff_base_ms < 0 || cfg->backoff_base_ms > BACKOFF_BASE_MAX_MS) {
		hex_fail(err, HEX_INVALID, "stripe_backoff_base_ms",
		         "stripe_backoff_base_ms must be 0..%d", BACKOFF_BASE_MAX_MS);
		return NULL;
	}
	pthread_once(&global_once, stripe_client_global_init);
	if (global_rc != CURLE_OK) {
		hex_fail(err, HEX_INTERNAL, NULL, "libcurl failed to initialise");
		return NULL;
	}
	CURL *curl = curl_easy_init();
	if (curl == NULL) {
		hex_fail(err, HEX_INTERNAL, NULL, "libcurl failed to create a handle");
		return NULL;
	}

	struct stripe_client *c = xcalloc(1, sizeof *c);
	c->curl = curl;
	while (base_len > 0 && base[base_len - 1] == '/')
		base_len--;
	c->api_base = xstrndup(base, base_len);
	c->auth_header = xasprintf("Authorization: Bearer %s", cfg->secret_key);
	c->connect_timeout_ms = cfg->connect_timeout_ms;
	c->timeout_ms = cfg->timeout_ms;
	c->max_retries = cfg->max_retries;
	c->backoff_base_ms = cfg->backoff_base_ms;
	atomic_flag_clear(&c->busy);
	if (getrandom(&c->rng, sizeof c->rng, GRND_NONBLOCK) != (ssize_t)sizeof c->rng)
		c->rng = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)c;
	c->rng |= 1; /* xorshift must never hold zero */
	return c;
}

void stripe_client_free(struct stripe_client *c)
{
	if (c == NULL)
		return;
	curl_easy_cleanup(c->curl);
	explicit_bzero(c->auth_header, strlen(c->auth_header));
	free(c->auth_header);
	free(c->api_base);
	free(c);
}

static size_t stripe_client_on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct stripe_answer *a = userdata;
	size_t n = size * nmemb;
	if (n > STRIPE_CLIENT_REPLY_MAX - a->len) {
		a->too_large = true;
		return 0; /* makes curl stop with CURLE_WRITE_ERROR */
	}
	if (a->len + n + 1 > a->cap) {
		a->cap = a->cap == 0 ? 4096 : a->cap;
		while (a->len + n + 1 > a->cap)
			a->cap *= 2;
		a->body = xrealloc(a->body, a->cap);
	}
	memcpy(a->body + a->len, data, n);
	a->len += n;
	a->body[a->len] = '\0';
	return n;
}

/* Copies a header's value (trimmed) into out when line is `name: value`. */
static bool stripe_client_header_value(const char *line, size_t len, const char *name, char *out,
                                       size_t out_len)
{
	size_t nlen = strlen(name);
	if (len <= nlen || strncasecmp(line, name, nlen) != 0 || line[nlen] != ':')
		return false;
	const char *v = line + nlen + 1;
	const char *end = line + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
		end--;
	size_t vlen = (size_t)(end - v);
	if (vlen >= out_len)
		vlen = out_len - 1;
	memcpy(out, v, vlen);
	out[vlen] = '\0';
	return true;
}

static size_t stripe_client_on_header(char *line, size_t size, size_t nmemb, void *userdata)
{
	struct stripe_answer *a = userdata;
	size_t len = size * nmemb;
	char value[64];
	/* A new status line (after a 100 Continue) starts a new set of headers. */
	if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		a->should_retry = -1;
		a->replayed = false;
		a->request_id[0] = '\0';
	} else if (stripe_client_header_value(line, len, "Stripe-Should-Retry", value,
	                                      sizeof value)) {
		a->should_retry = strcasecmp(value, "true") == 0    ? 1
		                  : strcasecmp(value, "false") == 0 ? 0
		                                                    : -1;
	} else if (stripe_client_header_value(line, len, "Idempotent-Replayed", value,
	                                      sizeof value)) {
		a->replayed = strcasecmp(value, "true") == 0;
	} else {
		stripe_client_header_value(line, len, "Request-Id", a->request_id,
		                           sizeof a->request_id);
	}
	return len;
}

static bool stripe_client_request_valid(const struct stripe_request *req, struct hex_err *err)
{
	const char *why = NULL;
	if (req->path == NULL || req->path[0] != '/' || !stripe_client_header_safe(req->path, 1024))
		why = "bad path";
	else if (req->method != STRIPE_GET && req->method != STRIPE_POST)
		why = "bad method";
	else if (req->method == STRIPE_POST &&
	         (req->idempotency_key == NULL ||
	          !stripe_client_header_safe(req->idempotency_key, IDEMPOTENCY_KEY_MAX)))
		why = "a POST needs a printable Idempotency-Key";
	else if (req->trace_parent != NULL && req->trace_parent[0] != '\0' &&
	         !stripe_client_header_safe(req->trace_parent, TRACE_PARENT_MAX))
		why = "bad traceparent";
	else if (req->method == STRIPE_POST && req->body == NULL && req->body_len != 0)
		why = "body length without a body";
	if (why == NULL)
		return true;
	log_error("stripe_request_refused", "refused to send a Stripe request: %s", why);
	hex_fail(err, HEX_INTERNAL, NULL, "internal error");
	return false;
}

static struct curl_slist *stripe_client_headers(const struct stripe_client *c,
                                                const struct stripe_request *req)
{
	struct curl_slist *h = NULL;
	h = curl_slist_append(h, c->auth_header);
	h = h != NULL ? curl_slist_append(h, "Stripe-Version: " STRIPE_API_VERSION) : NULL;
	h = h != NULL ? curl_slist_append(h, "Accept: application/json") : NULL;
	/* curl would otherwise wait for a 100 Continue before sending larger bodies. */
	h = h != NULL ? curl_slist_append(h, "Expect:") : NULL;
	if (h != NULL && req->method == STRIPE_POST) {
		char line[32 + IDEMPOTENCY_KEY_MAX];
		snprintf(line, sizeof line, "Idempotency-Key: %s", req->idempotency_key);
		h = curl_slist_append(h, line);
		h = h != NULL
		        ? curl_slist_append(h, "Content-Type: application/x-www-form-urlencoded")
		        : NULL;
	}
	if (h != NULL && req->trace_parent != NULL && req->trace_parent[0] != '\0') {
		char line[32 + TRACE_PARENT_MAX];
		snprintf(line, sizeof line, "traceparent: %s", req->trace_parent);
		h = curl_slist_append(h, line);
	}
	return h;
}

/* The list holds a copy of the secret key: wipe it before it goes back to the heap. */
static void stripe_client_headers_free(struct curl_slist *headers)
{
	for (struct curl_slist *h = headers; h != NULL; h = h->next)
		explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(headers);
}

/* One attempt; the answer's fields are reset first. */
static CURLcode stripe_client_perform(struct stripe_client *c, const struct stripe_request *req,
                                      const char *url, struct curl_slist *headers,
                                      struct stripe_answer *a, long *status)
{
	a->len = 0;
	if (a->body != NULL)
		a->body[0] = '\0';
	a->too_large = false;
	a->should_retry = -1;
	a->replayed = false;
	a->request_id[0] = '\0';
	c->curl_error[0] = '\0';
	*status = 0;

	CURL *h = c->curl;
	/* Reset keeps the connection cache, so retries and later calls reuse the link. */
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
	curl_easy_setopt(h, CURLOPT_USERAGENT, USER_AGENT);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->curl_error);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, stripe_client_on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, stripe_client_on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, a);
	if (req->method == STRIPE_POST) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body != NULL ? req->body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
	} else {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	}
	CURLcode rc = curl_easy_perform(h);
	if (rc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	return rc;
}

static bool stripe_client_curl_final(CURLcode rc)
{
	for (size_t i = 0; i < sizeof final_curl_errors / sizeof final_curl_errors[0]; i++)
		if (final_curl_errors[i] == rc)
			return true;
	return false;
}

static bool stripe_client_status_retryable(long status)
{
	return status == 409 || status == 429 || status >= 500;
}

/* Whether another attempt may help: Stripe's header decides where it is sent. */
static enum stripe_verdict stripe_client_verdict(CURLcode rc, long status, int should_retry)
{
	if (rc != CURLE_OK)
		return stripe_client_curl_final(rc) ? VERDICT_DONE : VERDICT_RETRY;
	if (status >= 200 && status < 300)
		return VERDICT_DONE;
	if (should_retry >= 0)
		return should_retry == 1 ? VERDICT_RETRY : VERDICT_DONE;
	return stripe_client_status_retryable(status) ? VERDICT_RETRY : VERDICT_DONE;
}

static const char *stripe_client_param_field(const char *param)
{
	if (param == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof param_fields / sizeof param_fields[0]; i++)
		if (strcmp(param_fields[i].param, param) == 0)
			return param_fields[i].field;
	return NULL;
}

static const char *stripe_client_json_string(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Maps a final non-2xx answer; Stripe's error JSON decides where the status does not. */
static enum hex_status stripe_client_map_error(const struct stripe_request *req, long status,
                                               const struct stripe_answer *a, struct hex_err *err)
{
	const char *method = req->method == STRIPE_POST ? "POST" : "GET";
	json_t *doc = a->body != NULL ? json_loadb(a->body, a->len, 0, NULL) : NULL;
	const json_t *e = json_object_get(doc, "error");
	const char *type = stripe_client_json_string(e, "type");
	const char *code = stripe_client_json_string(e, "code");
	const char *message = stripe_client_json_string(e, "message");
	const char *param = stripe_client_json_string(e, "param");
	/* 5xx: Stripe's trouble, whatever the body says; unknown answers: ours to explain. */
	enum hex_status st = status >= 500 ? HEX_UNAVAILABLE : HEX_INTERNAL;
	bool by_status = status >= 500;
	for (size_t i = 0; !by_status && i < sizeof error_statuses / sizeof error_statuses[0];
	     i++) {
		if (error_statuses[i].status == status) {
			st = error_statuses[i].result;
			by_status = true;
		}
	}
	for (size_t i = 0;
	     !by_status && type != NULL && i < sizeof error_types / sizeof error_types[0]; i++)
		if (strcmp(error_types[i].type, type) == 0)
			st = error_types[i].result;
	log_warn("stripe_error", "Stripe answered %s %s with %ld (type %s, code %s, request %s)",
	         method, req->path, status, type != NULL ? type : "-", code != NULL ? code : "-",
	         a->request_id[0] != '\0' ? a->request_id : "-");

	switch (st) {
	case HEX_INVALID:
		hex_fail(err, st, stripe_client_param_field(param), "%s",
		         message != NULL && message[0] != '\0'
		             ? message
		             : "the payment provider refused the request");
		break;
	case HEX_NOT_FOUND:
		hex_fail(err, st, NULL, "not found at the payment provider");
		break;
	case HEX_CONFLICT:
		hex_fail(err, st, NULL,
		         "the idempotency key was already used with other parameters");
		break;
	case HEX_UNAVAILABLE:
		hex_fail(err, st, NULL, "the payment provider is unavailable");
		break;
	default:
		if (status == 401 || status == 403 ||
		    (type != NULL && strcmp(type, "authentication_error") == 0))
			log_error(
			    "stripe_auth_failed",
			    "Stripe refused our credentials (%ld): check HEX_STRIPE_SECRET_KEY",
			    status);
		hex_fail(err, HEX_INTERNAL, NULL, "internal error");
		st = HEX_INTERNAL;
		break;
	}
	json_decref(doc);
	return st;
}

/* Stripe's schedule: base * 2^(n-1), capped, then 50..100% of it at random. */
static int stripe_client_backoff_ms(struct stripe_client *c, int retry)
{
	int64_t d = c->backoff_base_ms;
	for (int i = 1; i < retry && d < STRIPE_CLIENT_BACKOFF_MAX_MS; i++)
		d *= 2;
	if (d > STRIPE_CLIENT_BACKOFF_MAX_MS)
		d = STRIPE_CLIENT_BACKOFF_MAX_MS;
	int64_t half = d / 2;
	return (int)(d - half + (int64_t)(stripe_client_random(c) % (uint64_t)(half + 1)));
}

static void stripe_client_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* The result of the last attempt, once no retry follows. */
static enum hex_status stripe_client_finish(const struct stripe_request *req, CURLcode rc,
                                            long status, const char *why,
                                            const struct stripe_answer *a, int attempts,
                                            json_t **out, struct hex_err *err)
{
	const char *method = req->method == STRIPE_POST ? "POST" : "GET";
	if (rc != CURLE_OK) {
		log_warn("stripe_unreachable", "%s %s failed after %d attempt(s): %s", method,
		         req->path, attempts, why);
		return hex_fail(err, HEX_UNAVAILABLE, NULL, "the payment provider is unavailable");
	}
	if (status < 200 || status >= 300)
		return stripe_client_map_error(req, status, a, err);
	json_t *doc = json_loadb(a->body != NULL ? a->body : "", a->len, 0, NULL);
	if (!json_is_object(doc)) {
		/* It may have been done: the caller retries with the same key to learn. */
		json_decref(doc);
		log_warn("stripe_bad_answer",
		         "%s %s: a %ld answer that is not a JSON object (request %s)", method,
		         req->path, status, a->request_id[0] != '\0' ? a->request_id : "-");
		return hex_fail(err, HEX_UNAVAILABLE, NULL, "the payment provider is unavailable");
	}
	*out = doc;
	return HEX_OK;
}

static enum hex_status stripe_client_call_locked(struct stripe_client *c,
                                                 const struct stripe_request *req, json_t **out,
                                                 struct stripe_reply_info *info,
                                                 struct hex_err *err)
{
	const char *method = req->method == STRIPE_POST ? "POST" : "GET";
	enum hex_status st = HEX_INTERNAL;
	struct stripe_answer a = {0};
	struct curl_slist *headers = NULL;
	char *url = NULL;

	if (!stripe_client_request_valid(req, err))
		goto out;
	headers = stripe_client_headers(c, req);
	if (headers == NULL) {
		st = hex_fail(err, HEX_INTERNAL, NULL, "internal error");
		goto out;
	}
	url = xasprintf("%s%s", c->api_base, req->path);

	for (int attempt = 1;; attempt++) {
		long status = 0;
		CURLcode rc = stripe_client_perform(c, req, url, headers, &a, &status);
		info->attempts = attempt;
		info->http_status = status;
		info->replayed = a.replayed;
		hex_strlcpy(info->request_id, a.request_id, sizeof info->request_id);

		enum stripe_verdict verdict = stripe_client_verdict(rc, status, a.should_retry);
		char why[CURL_ERROR_SIZE + 64];
		if (rc != CURLE_OK)
			snprintf(why, sizeof why, "%s",
			         a.too_large             ? "answer too large"
			         : c->curl_error[0] != 0 ? c->curl_error
			                                 : curl_easy_strerror(rc));
		else
			snprintf(why, sizeof why, "status %ld", status);

		if (verdict == VERDICT_RETRY && attempt <= c->max_retries) {
			int wait_ms = stripe_client_backoff_ms(c, attempt);
			log_warn("stripe_retry", "%s %s attempt %d failed (%s); retrying in %d ms",
			         method, req->path, attempt, why, wait_ms);
			stripe_client_sleep_ms(wait_ms);
			continue;
		}

		st = stripe_client_finish(req, rc, status, why, &a, attempt, out, err);
		break;
	}
out:
	free(url);
	stripe_client_headers_free(headers);
	free(a.body);
	return st;
}

enum hex_status stripe_client_call(struct stripe_client *c, const struct stripe_request *req,
                                   json_t **out, struct stripe_reply_info *info,
                                   struct hex_err *err)
{
	struct stripe_reply_info scratch;
	if (info == NULL)
		info = &scratch;
	memset(info, 0, sizeof *info);
	*out = NULL;
	/* A curl handle used from two threads at once corrupts memory: stop here instead. */
	if (atomic_flag_test_and_set(&c->busy)) {
		log_error("stripe_client_shared",
		          "a Stripe client was used by two threads at once");
		abort();
	}
	enum hex_status st = stripe_client_call_locked(c, req, out, info, err);
	atomic_flag_clear(&c->busy);
	return st;
}

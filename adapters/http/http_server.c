/* http_server.c: request intake on the loop thread, dispatch on workers, replies. */
#include "adapters/http/http_server.h"

#include "adapters/http/http_idempotency.h"
#include "adapters/http/http_metrics.h"
#include "adapters/json/json_body.h"
#include "core/logger.h"
#include "core/xmalloc.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include <pthread.h>
#include <sys/queue.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

struct http_server {
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	struct http_executor exec;
	struct http_server_config cfg;
	struct event *done_ev;
	pthread_mutex_t done_mu;
	struct http_exchange *done_head, *done_tail;
	int in_flight; /* loop thread only */
	bool draining;
};

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool request_id_ok(const char *v)
{
	size_t n = strlen(v);
	if (n == 0 || n > HTTP_REQUEST_ID_MAX)
		return false;
	return strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") == n;
}

static const struct {
	int status;
	const char *reason;
} reasons[] = {
    {200, "OK"},
    {201, "Created"},
    {204, "No Content"},
    {303, "See Other"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {409, "Conflict"},
    {413, "Payload Too Large"},
    {415, "Unsupported Media Type"},
    {429, "Too Many Requests"},
    {500, "Internal Server Error"},
    {503, "Service Unavailable"},
};

static const char *reason_phrase(int status)
{
	for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
		if (reasons[i].status == status)
			return reasons[i].reason;
	return "Unknown";
}

static void log_access(const struct http_exchange *x, int64_t duration_us)
{
	char fields[512];
	const char *uid = x->caller.user.id;
	snprintf(fields, sizeof fields,
	         "\"method\":\"%s\",\"route\":\"%s\",\"status\":%d,\"duration_us\":%lld%s%s%s",
	         http_method_name(x->method), x->route != NULL ? x->route->pattern : "unmatched",
	         x->status, (long long)duration_us, uid[0] != '\0' ? ",\"user_id\":\"" : "", uid,
	         uid[0] != '\0' ? "\"" : "");
	logger_set_context(x->request_id, x->trace.trace_id);
	logger_write_fields_buffered(x->status >= 500 ? LOGGER_ERROR : LOGGER_INFO, "http_request",
	                             fields);
	logger_set_context(NULL, NULL);
}
/* Loop thread: the one place where a reply leaves. */
static void send_reply(struct http_exchange *x)
{
	struct evhttp_request *req = x->req;
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	char traceparent[HTTP_TRACEPARENT_LEN + 1];
	http_trace_format(&x->trace, traceparent);
	evhttp_add_header(out, "X-Request-Id", x->request_id);
	evhttp_add_header(out, "traceparent", traceparent);
	if (x->reply_body != NULL) {
		evhttp_add_header(out, "Content-Type",
		                  x->content_type != NULL ? x->content_type
		                                          : "application/json; charset=utf-8");
		evbuffer_add(evhttp_request_get_output_buffer(req), x->reply_body, x->reply_len);
	}
	for (int i = 0; i < x->nheaders; i++)
		evhttp_add_header(out, x->headers[i].name, x->headers[i].value);
	if (x->server->draining) /* tell keep-alive clients to go elsewhere */
		evhttp_add_header(out, "Connection", "close");
	struct http_server *s = x->server;
	http_conn_guard_reply_sent(s->cfg.guard, req);
	evhttp_send_reply(req, x->status, reason_phrase(x->status), NULL);
	s->in_flight--;
	int64_t duration_us = now_us() - x->start_us;
	if (s->cfg.metrics && !x->unrecorded)
		http_metrics_record(x->route, x->status, duration_us);
	if (s->cfg.access_log && !x->unrecorded)
		log_access(x, duration_us);
	http_exchange_free(x);
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	struct http_server *s = arg;
	pthread_mutex_lock(&s->done_mu);
	struct http_exchange *x = s->done_head;
	s->done_head = s->done_tail = NULL;
	pthread_mutex_unlock(&s->done_mu);
	while (x != NULL) {
		struct http_exchange *next = x->next;
		send_reply(x);
		x = next;
	}
}

/* Worker thread: hands a finished exchange back to the loop. */
static void post_done(struct http_exchange *x)
{
	struct http_server *s = x->server;
	x->next = NULL;
	pthread_mutex_lock(&s->done_mu);
	if (s->done_tail != NULL)
		s->done_tail->next = x;
	else
		s->done_head = x;
	s->done_tail = x;
	pthread_mutex_unlock(&s->done_mu);
	event_active(s->done_ev, 0, 0);
}

static bool bearer_token(const char *h, const char **token)
{
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return false;
	*token = h + 7;
	while (**token == ' ')
		(*token)++;
	return **token != '\0';
}

static void reply_no_bearer(struct http_exchange *x)
{
	struct hex_err err = {0};
	http_reply_error(
	    x, hex_fail(&err, HEX_UNAUTHENTICATED, NULL, "a Bearer access token is required"),
	    &err);
}

/* Worker thread (or the loop for inline routes, svc NULL): caller, body, handler. */
static void run_exchange(void *job, void *ctx)
{
	struct http_exchange *x = job;
	struct hex_services *svc = ctx;
	struct hex_err err = {0};
	const struct http_route *r = x->route;
	const char *token;
	enum hex_status st = HEX_OK;
	logger_set_context(x->request_id, x->trace.trace_id);
	if (r->auth == AUTH_BEARER && !x->authenticated) {
		if (!bearer_token(x->authorization, &token))
			reply_no_bearer(x);
		else if ((st = auth_service_authenticate(&svc->auth, token, x->cache_missed,
		                                         &x->caller, &err)) != HEX_OK)
			http_reply_error(x, st, &err);
	}
	if (x->status == 0 && r->body == BODY_JSON &&
	    json_body_parse(x->body, x->body_len, &x->json, &err) != HEX_OK)
		http_reply_error(x, HEX_INVALID, &err);
	bool keyed = r->idempotency == IDEM_KEYED && svc != NULL;
	if (x->status == 0 && !(keyed && http_idempotency_begin(x, svc))) {
		r->handler(x, svc);
		if (keyed)
			http_idempotency_finish(x, svc);
	}
	/* A handler path without a reply is a bug: fail loudly. Only a loop-first handler
	 * without services may defer. */
	if (x->status == 0 && !(x->deferred && svc == NULL))
		abort();
	logger_set_context(NULL, NULL);
	if (svc != NULL)
		post_done(x);
}

static const struct {
	enum evhttp_cmd_type cmd;
	enum http_method method;
} methods[] = {
    {EVHTTP_REQ_GET, HTTP_GET},       {EVHTTP_REQ_POST, HTTP_POST},   {EVHTTP_REQ_PUT, HTTP_PUT},
    {EVHTTP_REQ_DELETE, HTTP_DELETE}, {EVHTTP_REQ_PATCH, HTTP_PATCH},
};

static enum http_method method_of(struct evhttp_request *req)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
		if (methods[i].cmd == cmd)
			return methods[i].method;
	return HTTP_OTHER;
}

/* application/json, with or without parameters such as charset. */
static bool is_json_type(const char *ct)
{
	static const char json[] = "application/json";
	if (ct == NULL || strncasecmp(ct, json, sizeof json - 1) != 0)
		return false;
	char next = ct[sizeof json - 1];
	return next == '\0' || next == ';' || next == ' ';
}

static char *header_copy(struct evkeyvalq *h, const char *name)
{
	const char *v = evhttp_find_header(h, name);
	return v != NULL ? xstrdup(v) : NULL;
}

/*
 * Every header called name, in order, joined with ", " (as one list, RFC 9110 5.3): a
 * proxy may add its own line rather than append to the client's. NULL when absent;
 * the caller frees it.
 */
static char *header_joined(struct evkeyvalq *h, const char *name)
{
	size_t len = 0;
	struct evkeyval *kv;
	TAILQ_FOREACH(kv, h, next)
	if (strcasecmp(kv->key, name) == 0)
		len += strlen(kv->value) + 2;
	if (len == 0)
		return NULL;
	char *out = xmalloc(len + 1);
	out[0] = '\0';
	TAILQ_FOREACH(kv, h, next)
	if (strcasecmp(kv->key, name) == 0) {
		if (out[0] != '\0')
			strcat(out, ", ");
		strcat(out, kv->value);
	}
	return out;
}

/* Copies what the worker needs out of the libevent request. */
static struct http_exchange *exchange_new(struct http_server *s, struct evhttp_request *req)
{
	struct http_exchange *x = xcalloc(1, sizeof *x);
	x->req = req;
	x->server = s;
	x->start_us = now_us();
	x->method = method_of(req);
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	const char *rid = evhttp_find_header(in, "X-Request-Id");
	if (rid != NULL && request_id_ok(rid))
		hex_strlcpy(x->request_id, rid, sizeof x->request_id);
	else
		http_trace_random_hex(x->request_id, 2);
	x->authorization = header_copy(in, "Authorization");
	x->idempotency_key = header_copy(in, "Idempotency-Key");
	x->stripe_signature = header_copy(in, "Stripe-Signature");
	x->accept = header_copy(in, "Accept");
	http_trace_begin(&x->trace, evhttp_find_header(in, "traceparent"));

	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	size_t plen = 0;
	char *decoded = path != NULL ? evhttp_uridecode(path, 0, &plen) : NULL;
	/* A decoded NUL would let two different paths look the same. */
	x->path = xstrdup(decoded != NULL && strlen(decoded) == plen ? decoded : "");
	free(decoded);
	x->query = query != NULL ? xstrdup(query) : NULL;

	struct evbuffer *body = evhttp_request_get_input_buffer(req);
	x->body_len = evbuffer_get_length(body);
	x->body = xmalloc(x->body_len + 1);
	evbuffer_remove(body, x->body, x->body_len);
	x->body[x->body_len] = '\0';

	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	char *host = NULL;
	ev_uint16_t port = 0;
	if (conn != NULL)
		evhttp_connection_get_peer(conn, &host, &port);
	char *xff = s->cfg.proxies != NULL && s->cfg.proxies->n > 0
	                ? header_joined(in, "X-Forwarded-For")
	                : NULL;
	if (s->cfg.proxies != NULL)
		http_proxies_client(s->cfg.proxies, host != NULL ? host : "", xff, x->client_addr,
		                    sizeof x->client_addr);
	else
		hex_strlcpy(x->client_addr, host != NULL ? host : "", sizeof x->client_addr);
	free(xff);
	return x;
}

/* Loop thread: hands x to its pool, or answers 503 at once when the pool is full. */
static void dispatch(struct http_exchange *x)
{
	struct http_server *s = x->server;
	enum http_pool pool = x->route->pool == POOL_LOOP_FIRST ? POOL_DEFAULT : x->route->pool;
	if (!s->exec.ops->submit(s->exec.self, pool, run_exchange, x)) {
		http_reply_error_code(x, 503, "unavailable", "server is busy; retry shortly");
		http_reply_header(x, "Retry-After", "1");
		send_reply(x);
	}
}

/* Loop thread: the caller as read from the cache, or why not. */
static void on_caller_cached(void *arg, enum hex_status st, const struct user *u)
{
	struct http_exchange *x = arg;
	struct hex_err err = {0};
	if (st != HEX_OK) { /* miss or Redis trouble: the worker reads through to PostgreSQL */
		x->cache_missed = st == HEX_NOT_FOUND;
		dispatch(x);
		return;
	}
	struct token_claims claims = x->caller.claims;
	if ((st = auth_service_admit(&claims, u, &x->caller, &err)) != HEX_OK) {
		http_reply_error(x, st, &err);
		send_reply(x);
		return;
	}
	x->authenticated = true;
	if (x->route->pool != POOL_LOOP_FIRST) {
		dispatch(x);
		return;
	}
	run_exchange(x, NULL);
	if (x->deferred)
		dispatch(x);
	else
		send_reply(x);
}

/*
 * Loop thread: verifies the bearer token here (CPU only) and reads the caller from the
 * cache without blocking, so a cached read needs no worker at all. Anything this path
 * cannot decide goes to a worker, which decides it the synchronous way.
 */
static void admit_on_loop(struct http_exchange *x)
{
	struct http_server *s = x->server;
	struct hex_err err = {0};
	const char *token;
	if (!bearer_token(x->authorization, &token)) {
		reply_no_bearer(x);
		send_reply(x);
		return;
	}
	struct token_signer *sg = &s->cfg.signer;
	if (sg->ops->verify(sg->self, token, TOKEN_ACCESS, (int64_t)time(NULL), &x->caller.claims,
	                    &err) != HEX_OK) {
		http_reply_error(x, HEX_UNAUTHENTICATED, &err);
		send_reply(x);
		return;
	}
	struct user_cache_async *c = &s->cfg.cache_async;
	if (!c->ops->get(c->self, x->caller.claims.sub, on_caller_cached, x))
		dispatch(x);
}

/* Loop thread: every request starts here. */
static void on_request(struct evhttp_request *req, void *arg)
{
	struct http_server *s = arg;
	struct http_exchange *x = exchange_new(s, req);
	s->in_flight++;
	if (!http_conn_guard_request_read(s->cfg.guard, req)) {
		/* Its connection is shut: this answer goes nowhere, and nothing ran. The guard
		 * counted and logged it; an attack must not flood the access log or the 5xx. */
		x->unrecorded = true;
		http_reply_error_code(x, 503, "unavailable",
		                      "the connection was closed by a limit");
		send_reply(x);
		return;
	}
	char allow[64];
	switch (http_routes_match(s->cfg.listeners, x->method, x->path, &x->route, x->params, allow,
	                          sizeof allow)) {
	case MATCH_NO_PATH:
		http_reply_error_code(x, 404, "not_found", "no such route");
		send_reply(x);
		return;
	case MATCH_NO_METHOD:
		http_reply_header(x, "Allow", allow);
		http_reply_error_code(x, 405, "method_not_allowed",
		                      "method not allowed on this route");
		send_reply(x);
		return;
	case MATCH_OK:
		break;
	}
	if (x->route->body == BODY_JSON &&
	    !is_json_type(
	        evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type"))) {
		http_reply_error_code(x, 415, "unsupported_media_type",
		                      "request body must be application/json");
		send_reply(x);
		return;
	}
	if (x->route->pool == POOL_INLINE) {
		run_exchange(x, NULL);
		send_reply(x);
		return;
	}
	if (x->route->auth == AUTH_BEARER && s->cfg.cache_async.ops != NULL)
		admit_on_loop(x);
	else
		dispatch(x);
}

struct http_server *http_server_new(struct event_base *base, const struct http_server_config *cfg,
                                    struct http_executor exec, int listen_fd, struct hex_err *err)
{
	struct http_server *s = xcalloc(1, sizeof *s);
	s->base = base;
	s->exec = exec;
	s->cfg = *cfg;
	pthread_mutex_init(&s->done_mu, NULL);
	s->done_ev = event_new(base, -1, 0, on_done, s);
	s->http = evhttp_new(base);
	evhttp_set_max_body_size(s->http, (ev_ssize_t)cfg->body_limit);
	evhttp_set_max_headers_size(s->http, (ev_ssize_t)cfg->header_limit);
	evhttp_set_timeout(s->http, cfg->idle_timeout_s);
	if (cfg->guard != NULL)
		http_conn_guard_attach(cfg->guard, s->http);
	evhttp_set_flags(s->http, EVHTTP_SERVER_LINGERING_CLOSE);
	evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
	                                        EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
	                                        EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS);
	evhttp_set_gencb(s->http, on_request, s);

	/* Each loop accepts from its own duplicate of the shared listening socket. */
	int fd = dup(listen_fd);
	struct evconnlistener *l =
	    fd < 0 ? NULL
	           : evconnlistener_new(base, NULL, NULL,
	                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (l == NULL) {
		if (fd >= 0)
			close(fd);
		hex_fail(err, HEX_UNAVAILABLE, NULL, "cannot accept on %s", cfg->listen);
		goto fail;
	}
	s->bound = evhttp_bind_listener(s->http, l);
	return s;
fail:
	http_server_free(s);
	return NULL;
}

void http_server_stop_accepting(struct http_server *s)
{
	s->draining = true;
	if (s->bound != NULL) {
		evhttp_del_accept_socket(s->http, s->bound);
		s->bound = NULL;
	}
}

int http_server_in_flight(struct http_server *s)
{
	return s->in_flight;
}

void http_server_free(struct http_server *s)
{
	if (s == NULL)
		return;
	/* Replies finished after the loop stopped (a forced stop, a drain timeout): their
	 * connections are about to close; free them unsent. */
	for (struct http_exchange *x = s->done_head, *next; x != NULL; x = next) {
		next = x->next;
		http_exchange_free(x);
	}
	if (s->http != NULL)
		evhttp_free(s->http);
	if (s->done_ev != NULL)
		event_free(s->done_ev);
	pthread_mutex_destroy(&s->done_mu);
	free(s);
}

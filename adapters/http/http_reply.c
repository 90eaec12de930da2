/* http_reply.c: building replies, and the one table from core results to HTTP. */
#include "adapters/http/http_exchange.h"

#include "core/xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct status_map {
	int http;
	const char *message; /* used when the service gave none */
};

static const struct status_map status_table[HEX_STATUS_COUNT] = {
    [HEX_OK] = {200, "ok"},
    [HEX_INVALID] = {400, "invalid request"},
    [HEX_UNAUTHENTICATED] = {401, "authentication required"},
    [HEX_FORBIDDEN] = {403, "not allowed"},
    [HEX_NOT_FOUND] = {404, "not found"},
    [HEX_CONFLICT] = {409, "conflict"},
    [HEX_RATE_LIMITED] = {429, "too many requests"},
    [HEX_UNAVAILABLE] = {503, "a dependency is unavailable"},
    [HEX_INTERNAL] = {500, "internal error"},
};

void http_reply_header(struct http_exchange *x, const char *name, const char *value)
{
	if (x->nheaders == HTTP_MAX_HEADERS)
		abort(); /* a programming error: raise HTTP_MAX_HEADERS */
	x->headers[x->nheaders++] = (struct http_header){name, xstrdup(value)};
}

void http_reply_json(struct http_exchange *x, int status, json_t *body)
{
	if (x->status != 0)
		abort(); /* exactly one reply per request */
	x->status = status;
	if (body != NULL) {
		x->reply_body = json_dumps(body, JSON_COMPACT);
		if (x->reply_body == NULL)
			abort();
		x->reply_len = strlen(x->reply_body);
		json_decref(body);
	}
}

void http_reply_empty(struct http_exchange *x, int status)
{
	http_reply_json(x, status, NULL);
}

void http_reply_text(struct http_exchange *x, int status, const char *content_type, char *body,
                     size_t len)
{
	if (x->status != 0)
		abort(); /* exactly one reply per request */
	x->status = status;
	x->content_type = content_type;
	x->reply_body = body;
	x->reply_len = len;
}

static void reply_error_body(struct http_exchange *x, int status, const char *code,
                             const char *message, const char *field)
{
	json_t *body = json_pack("{s:s, s:s, s:s}", "error", message, "code", code, "request_id",
	                         x->request_id);
	if (field != NULL)
		json_object_set_new(body, "field", json_string(field));
	http_reply_json(x, status, body);
}

void http_reply_error_code(struct http_exchange *x, int status, const char *code,
                           const char *message)
{
	reply_error_body(x, status, code, message, NULL);
}

void http_reply_error(struct http_exchange *x, enum hex_status st, const struct hex_err *err)
{
	if ((unsigned)st >= HEX_STATUS_COUNT || st == HEX_OK)
		st = HEX_INTERNAL;
	const struct status_map *m = &status_table[st];
	/* Internal failures never show their detail. */
	bool detail = err != NULL && err->message[0] != '\0' && st != HEX_INTERNAL;
	const char *code = err != NULL && err->code != NULL ? err->code : hex_status_name(st);
	if (st == HEX_UNAUTHENTICATED)
		http_reply_header(x, "WWW-Authenticate", "Bearer");
	if (st == HEX_RATE_LIMITED) {
		char secs[16];
		snprintf(secs, sizeof secs, "%d",
		         err != NULL && err->retry_after_s > 0 ? err->retry_after_s : 1);
		http_reply_header(x, "Retry-After", secs);
	}
	reply_error_body(x, m->http, code, detail ? err->message : m->message,
	                 err != NULL && (st == HEX_INVALID || st == HEX_CONFLICT) ? err->field
	                                                                          : NULL);
}

void http_defer(struct http_exchange *x)
{
	if (x->status != 0)
		abort(); /* replied and deferred: two replies */
	x->deferred = true;
}

void http_exchange_free(struct http_exchange *x)
{
	if (x == NULL)
		return;
	free(x->path);
	free(x->query);
	for (int i = 0; i < HTTP_MAX_PARAMS; i++)
		free(x->params[i]);
	free(x->authorization);
	free(x->idempotency_key);
	free(x->stripe_signature);
	free(x->accept);
	free(x->body);
	if (x->json != NULL)
		json_decref(x->json);
	free(x->reply_body);
	for (int i = 0; i < x->nheaders; i++)
		free(x->headers[i].value);
	free(x);
}

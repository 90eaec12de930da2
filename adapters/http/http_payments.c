/* http_payments.c: the /v2/payments routes. */
#include "adapters/http/http_handlers.h"

#include "adapters/http/http_query.h"
#include "adapters/json/json_body.h"
#include "adapters/json/json_payment.h"
#include "core/xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void http_payments_create(struct http_exchange *x, struct hex_services *svc)
{
	struct hex_err err = {0};
	char traceparent[HTTP_TRACEPARENT_LEN + 1];
	http_trace_format(&x->trace, traceparent);
	struct payment_create_request rq = {.user_id = x->caller.user.id,
	                                    .client_key = x->idempotency_key,
	                                    .trace_parent = traceparent};
	struct payment p;
	enum hex_status st = json_body_int(x->json, "amount", true, &rq.amount, &err);
	if (st == HEX_OK)
		st = json_body_string(x->json, "currency", true, &rq.currency, &err);
	if (st == HEX_OK)
		st = json_body_string(x->json, "purpose", true, &rq.purpose, &err);
	if (st == HEX_OK)
		st = payment_service_create(&svc->payments, &rq, &p, &err);
	if (st != HEX_OK) {
		http_reply_error(x, st, &err);
		return;
	}
	char location[64];
	snprintf(location, sizeof location, "/v2/payments/%s", p.id);
	http_reply_header(x, "Location", location);
	http_reply_json(x, 201, json_payment(&p, true));
}

void http_payments_show(struct http_exchange *x, struct hex_services *svc)
{
	struct hex_err err = {0};
	struct payment p;
	enum hex_status st =
	    payment_service_get(&svc->payments, x->caller.user.id,
	                        x->caller.user.role == ROLE_ADMIN, x->params[0], &p, &err);
	if (st != HEX_OK)
		http_reply_error(x, st, &err);
	else
		http_reply_json(x, 200, json_payment(&p, false));
}

static json_t *payment_page_json(const struct payment_page *page)
{
	json_t *data = json_array();
	for (int i = 0; i < page->count; i++)
		json_array_append_new(data, json_payment(&page->items[i], false));
	json_t *next = json_null();
	if (page->has_more && page->count > 0) {
		char cursor[160];
		const struct payment *last = &page->items[page->count - 1];
		http_cursor_encode('p', last->created_at_us, last->id, 0, cursor, sizeof cursor);
		json_decref(next);
		next = json_string(cursor);
	}
	return json_pack("{s:o, s:o}", "data", data, "next_cursor", next);
}

void http_payments_list(struct http_exchange *x, struct hex_services *svc)
{
	struct hex_err err = {0};
	struct payment_list_request rq = {0};
	struct payment_cursor after;
	struct payment_page *page = NULL;
	char *user_id = http_query_get(x, "user_id");
	char *status = http_query_get(x, "status");
	char *cursor = http_query_get(x, "cursor");
	enum hex_status st = http_query_limit(x, &rq.limit, &err);
	if (st == HEX_OK && cursor != NULL) {
		uint64_t tag;
		st = http_cursor_decode('p', cursor, &after.created_at_us, after.id, &tag, &err);
		rq.after = &after;
	}
	if (st == HEX_OK) {
		rq.user_id = user_id;
		rq.status = status;
		page = xmalloc(sizeof *page);
		st = payment_service_list(&svc->payments, x->caller.user.id,
		                          x->caller.user.role == ROLE_ADMIN, &rq, page, &err);
	}
	if (st == HEX_OK)
		http_reply_json(x, 200, payment_page_json(page));
	else
		http_reply_error(x, st, &err);
	free(page);
	free(user_id);
	free(status);
	free(cursor);
}

/*
 * A browser form posts here and follows the 303 to the provider's payment page; a script
 * that asks for JSON gets the session to redirect to itself.
 */
void http_payments_checkout(struct http_exchange *x, struct hex_services *svc)
{
	struct hex_err err = {0};
	char traceparent[HTTP_TRACEPARENT_LEN + 1];
	http_trace_format(&x->trace, traceparent);
	struct payment_checkout_request rq = {.user_id = x->caller.user.id,
	                                      .client_key = x->idempotency_key,
	                                      .trace_parent = traceparent};
	struct payment p;
	char *session_id = xmalloc(HEX_STRIPE_ID_MAX + 1);
	char *url = xmalloc(HEX_URL_MAX + 1);
	enum hex_status st =
	    payment_service_checkout(&svc->payments, &rq, &p, session_id, url, &err);
	if (st != HEX_OK) {
		http_reply_error(x, st, &err);
		goto out;
	}
	json_t *body =
	    json_pack("{s:s, s:s, s:s}", "id", session_id, "url", url, "payment_id", p.id);
	if (x->accept != NULL && strstr(x->accept, "application/json") != NULL) {
		http_reply_json(x, 200, body);
		goto out;
	}
	http_reply_header(x, "Location", url);
	http_reply_json(x, 303, body);
out:
	free(session_id);
	free(url);
}

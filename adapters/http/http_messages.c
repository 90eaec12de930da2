/* http_messages.c: the /v1/messages routes. */
#include "adapters/http/http_handlers.h"

#include "adapters/http/http_query.h"
#include "adapters/json/json_body.h"
#include "adapters/json/json_message.h"
#include "core/message_service.h"
#include "core/xmalloc.h"

#include <stdio.h>
#include <stdlib.h>

/* The one reply of a handler that produced a message (or failed). Consumes m's body. */
static void reply_message(struct http_exchange *x, int status, enum hex_status st,
                          struct message *m, const struct hex_err *err)
{
	json_t *body = st == HEX_OK ? json_message(m) : NULL;
	if (st != HEX_OK)
		http_reply_error(x, st, err);
	else if (body == NULL)
		http_reply_error(x, HEX_INTERNAL, NULL);
	else
		http_reply_json(x, status, body);
	if (st == HEX_OK)
		message_clear(m);
}

void http_messages_create(struct http_exchange *x, struct hex_services *svc)
{
	struct hex_err err = {0};
	struct message m = {0};
	const char *text;
	/* Only "body" is read: an "id" or "user_id" in the request is ignored. */
	enum hex_status st = json_body_string(x->json, "body", true, &text, &err);
	if (st == HEX_OK)
		st = message_service_create(&svc->messages, &x->caller.user, text, &m, &err);
	if (st == HEX_OK) {
		char location[64];
		snprintf(location, sizeof location, "/v1/messages/%s", m.id);
		http_reply_header(x, "Location", location);
	}
	reply_message(x, 201, st, &m, &err);
}

void http_messages_show(struct http_exchange *x, struct hex_services *svc)
{
	struct hex_err err = {0};
	struct message m = {0};
	enum hex_status st =
	    message_service_read(&svc->messages, &x->caller.user, x->params[0], &m, &err);
	reply_message(x, 200, st, &m, &err);
}

void http_messages_update(struct http_exchange *x, struct hex_services *svc)
{
	struct hex_err err = {0};
	struct message m = {0};
	const char *text;
	enum hex_status st = json_body_string(x->json, "body", true, &text, &err);
	if (st == HEX_OK)
		st = message_service_update(&svc->messages, &x->caller.user, x->params[0], text, &m,
		                            &err);
	reply_message(x, 200, st, &m, &err);
}

void http_messages_delete(struct http_exchange *x, struct hex_services *svc)
{
	struct hex_err err = {0};
	enum hex_status st =
	    message_service_delete(&svc->messages, &x->caller.user, x->params[0], &err);
	if (st != HEX_OK)
		http_reply_error(x, st, &err);
	else
		http_reply_empty(x, 204);
}

/* Reads every list parameter into rq; strings stay owned by the caller's locals. */
static enum hex_status read_list_query(struct http_exchange *x, struct message_list_request *rq,
                                       struct message_cursor *after, char *cursor,
                                       struct hex_err *err)
{
	enum hex_status st = http_query_limit(x, &rq->limit, err);
	if (st == HEX_OK)
		st = http_query_time(x, "since", &rq->has_since, &rq->since_us, err);
	if (st == HEX_OK)
		st = http_query_time(x, "until", &rq->has_until, &rq->until_us, err);
	if (st == HEX_OK && cursor != NULL) {
		st = http_cursor_decode('m', cursor, &after->created_at_us, after->id,
		                        &after->filter_tag, err);
		rq->after = after;
	}
	return st;
}

void http_messages_list(struct http_exchange *x, struct hex_services *svc)
{
	struct hex_err err = {0};
	struct message_list_request rq = {0};
	struct message_cursor after;
	struct message_page *page = NULL;
	json_t *body = NULL;
	char *user_id = http_query_get(x, "user_id");
	char *query = http_query_get(x, "q");
	char *cursor = http_query_get(x, "cursor");

	enum hex_status st = read_list_query(x, &rq, &after, cursor, &err);
	if (st != HEX_OK)
		goto out;
	rq.user_id = user_id;
	rq.query = query;
	page = xmalloc(sizeof *page);
	st = message_service_list(&svc->messages, &x->caller.user, &rq, page, &err);
	if (st != HEX_OK) {
		free(page);
		page = NULL;
		goto out;
	}
	char next[160];
	if (page->has_more && page->count > 0)
		http_cursor_encode('m', page->items[page->count - 1].created_at_us,
		                   page->items[page->count - 1].id, page->filter_tag, next,
		                   sizeof next);
	body = json_message_page(page, page->has_more && page->count > 0 ? next : NULL);
	if (body == NULL)
		st = HEX_INTERNAL;
out:
	if (st == HEX_OK)
		http_reply_json(x, 200, body);
	else
		http_reply_error(x, st, &err);
	message_page_clear(page);
	free(page);
	free(user_id);
	free(query);
	free(cursor);
}

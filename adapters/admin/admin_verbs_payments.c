/* admin_verbs_payments.c: PAYMENTS LIST, STUCK and SHOW, over every user's payments. */
#include "adapters/admin/admin_verbs.h"

#include "adapters/admin/admin_cursor.h"
#include "adapters/admin/admin_opts.h"
#include "adapters/json/json_admin.h"
#include "adapters/json/json_payment.h"
#include "core/xmalloc.h"

#include <stdlib.h>

void admin_verbs_payments_list(struct admin_call *c, struct admin_env *env)
{
	struct admin_opts o;
	struct admin_cursor cur;
	if (!admin_opts_parse_or_fail(c, 0, ADMIN_OPT_PAGING | ADMIN_OPT_STATUS | ADMIN_OPT_USER,
	                              &o))
		return;
	const char *filters[] = {o.status, o.user};
	uint64_t tag = admin_cursor_tag(2, filters);
	if (o.cursor != NULL && !admin_cursor_decode_or_fail(c, 'p', o.cursor, &tag, &cur))
		return;
	struct payment_cursor after = {0};
	if (o.cursor != NULL) {
		after.created_at_us = cur.position;
		hex_strlcpy(after.id, cur.id, sizeof after.id);
	}
	struct payment_list_request rq = {
	    .user_id = o.user,
	    .status = o.status,
	    .limit = o.limit,
	    .after = o.cursor != NULL ? &after : NULL,
	};
	struct payment_page *page = xcalloc(1, sizeof *page);
	struct hex_err err = {0};
	enum hex_status st = payment_service_list(&env->svc->payments, NULL, true, &rq, page, &err);
	if (st != HEX_OK) {
		admin_verbs_fail(c, st, &err, NULL);
		goto out;
	}
	json_t *items = json_array();
	for (int i = 0; i < page->count; i++)
		items = admin_verbs_push(items, json_payment(&page->items[i], false));
	char next[ADMIN_CURSOR_MAX];
	if (page->has_more && page->count > 0) {
		const struct payment *last = &page->items[page->count - 1];
		admin_cursor_encode('p', last->created_at_us, last->id, tag, next);
	}
	admin_verbs_reply(c, json_admin_list(items, page->has_more ? next : NULL));
out:
	free(page);
}

void admin_verbs_payments_stuck(struct admin_call *c, struct admin_env *env)
{
	struct admin_opts o;
	if (!admin_opts_parse_or_fail(c, 0, ADMIN_OPT_LIMIT, &o))
		return;
	struct payment_page *page = xcalloc(1, sizeof *page);
	struct hex_err err = {0};
	enum hex_status st = payment_service_stuck(&env->svc->payments, o.limit, page, &err);
	if (st != HEX_OK) {
		admin_verbs_fail(c, st, &err, NULL);
		goto out;
	}
	const struct clock *clk = &env->svc->payments.clock;
	int64_t now = clk->ops->now_us(clk->self);
	json_t *items = json_array();
	for (int i = 0; i < page->count; i++)
		items = admin_verbs_push(items, json_admin_stuck_payment(&page->items[i], now));
	/* Oldest first and no cursor: the oldest are the ones to look at; LIMIT shows more. */
	admin_verbs_reply(c, json_admin_list(items, NULL));
out:
	free(page);
}

void admin_verbs_payments_show(struct admin_call *c, struct admin_env *env)
{
	const char *id = admin_verbs_arg(c, 0);
	if (!admin_opts_uuid_or_fail(c, id, "id"))
		return;
	struct payment p;
	struct hex_err err = {0};
	struct payment_event_list *events = xcalloc(1, sizeof *events);
	enum hex_status st = payment_service_get(&env->svc->payments, NULL, true, id, &p, &err);
	if (st == HEX_OK)
		st = payment_service_events(&env->svc->payments, id, events, &err);
	if (st != HEX_OK) {
		admin_verbs_fail(c, st, &err, NULL);
		goto out;
	}
	json_t *arr = json_array();
	for (int i = 0; i < events->count; i++)
		arr = admin_verbs_push(arr, json_admin_payment_event(&events->items[i]));
	json_t *payment = json_payment(&p, false);
	if (arr == NULL || payment == NULL) {
		json_decref(arr);
		json_decref(payment);
		admin_verbs_reply(c, NULL);
		goto out;
	}
	admin_verbs_reply(c, json_pack("{s:o, s:o}", "payment", payment, "events", arr));
out:
	free(events);
}

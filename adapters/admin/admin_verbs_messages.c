/* admin_verbs_messages.c: MESSAGES LIST and SHOW, over every user's messages. */
#include "adapters/admin/admin_verbs.h"

#include "adapters/admin/admin_cursor.h"
#include "adapters/admin/admin_opts.h"
#include "adapters/json/json_message.h"
#include "adapters/json/json_admin.h"
#include "core/xmalloc.h"

#include <stdlib.h>

void admin_verbs_messages_list(struct admin_call *c, struct admin_env *env)
{
	struct admin_opts o;
	struct admin_cursor cur;
	if (!admin_opts_parse_or_fail(c, 0, ADMIN_OPT_PAGING | ADMIN_OPT_USER | ADMIN_OPT_Q, &o) ||
	    (o.cursor != NULL && !admin_cursor_decode_or_fail(c, 'm', o.cursor, NULL, &cur)))
		return;
	/* The service binds the cursor to the filters itself (message_filter_tag). */
	struct message_cursor after = {0};
	if (o.cursor != NULL) {
		after.created_at_us = cur.position;
		hex_strlcpy(after.id, cur.id, sizeof after.id);
		after.filter_tag = cur.tag;
	}
	struct message_list_request rq = {
	    .user_id = o.user,
	    .query = o.q,
	    .limit = o.limit,
	    .after = o.cursor != NULL ? &after : NULL,
	};
	struct message_page *page = xcalloc(1, sizeof *page);
	struct hex_err err = {0};
	enum hex_status st =
	    message_service_list(&env->svc->messages, &admin_verbs_operator, &rq, page, &err);
	if (st != HEX_OK) {
		admin_verbs_fail(c, st, &err, NULL);
		goto out;
	}
	json_t *items = json_array();
	for (int i = 0; i < page->count; i++)
		items = admin_verbs_push(items, json_message(&page->items[i]));
	char next[ADMIN_CURSOR_MAX];
	if (page->has_more && page->count > 0) {
		const struct message *last = &page->items[page->count - 1];
		admin_cursor_encode('m', last->created_at_us, last->id, page->filter_tag, next);
	}
	admin_verbs_reply(c, json_admin_list(items, page->has_more ? next : NULL));
	message_page_clear(page);
out:
	free(page);
}

void admin_verbs_messages_show(struct admin_call *c, struct admin_env *env)
{
	const char *id = admin_verbs_arg(c, 0);
	if (!admin_opts_uuid_or_fail(c, id, "id"))
		return;
	struct message m = {0};
	struct hex_err err = {0};
	enum hex_status st =
	    message_service_read(&env->svc->messages, &admin_verbs_operator, id, &m, &err);
	if (st != HEX_OK) {
		admin_verbs_fail(c, st, &err, NULL);
		return;
	}
	admin_verbs_reply(c, json_message(&m));
	message_clear(&m);
}

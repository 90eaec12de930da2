/*
 * admin_verbs_dlq.c: DLQ LIST, SHOW, REPLAY and DISCARD through the dead-letter use cases.
 * A replay or a discard names the operator given at AUTH as who resolved the letter.
 */
#include "adapters/admin/admin_verbs.h"

#include "adapters/admin/admin_cursor.h"
#include "adapters/admin/admin_opts.h"
#include "adapters/json/json_admin.h"
#include "core/xmalloc.h"

#include <stdlib.h>
#include <string.h>

void admin_verbs_dlq_list(struct admin_call *c, struct admin_env *env)
{
	struct admin_opts o;
	struct admin_cursor cur = {0};
	if (!admin_opts_parse_or_fail(c, 0, ADMIN_OPT_PAGING | ADMIN_OPT_ALL, &o))
		return;
	const char *filters[] = {o.all ? "all" : "open"};
	uint64_t tag = admin_cursor_tag(1, filters);
	if (o.cursor != NULL && !admin_cursor_decode_or_fail(c, 'd', o.cursor, &tag, &cur))
		return;
	struct dead_letter_page *page = xcalloc(1, sizeof *page);
	struct hex_err err = {0};
	enum hex_status st = dead_letter_service_list(&env->svc->dead_letters, o.all, o.limit,
	                                              cur.position, page, &err);
	if (st != HEX_OK) {
		admin_verbs_fail(c, st, &err, NULL);
		goto out;
	}
	json_t *items = json_array();
	for (int i = 0; i < page->count; i++)
		items = admin_verbs_push(items, json_admin_dead_letter(&page->items[i], false));
	char next[ADMIN_CURSOR_MAX];
	if (page->has_more && page->count > 0)
		admin_cursor_encode('d', page->items[page->count - 1].id, NULL, tag, next);
	admin_verbs_reply(c, json_admin_list(items, page->has_more ? next : NULL));
out:
	free(page);
}

void admin_verbs_dlq_show(struct admin_call *c, struct admin_env *env)
{
	int64_t id;
	if (!admin_opts_id_or_fail(c, admin_verbs_arg(c, 0), "id", &id))
		return;
	struct dead_letter *d = xcalloc(1, sizeof *d);
	struct hex_err err = {0};
	enum hex_status st = dead_letter_service_show(&env->svc->dead_letters, id, d, &err);
	if (st != HEX_OK)
		admin_verbs_fail(c, st, &err, NULL);
	else
		admin_verbs_reply(c, json_admin_dead_letter(d, true));
	free(d->payload);
	free(d);
}

/* The operator as the dead letter's resolver: who AUTH named, "unknown" if nobody. */
static const char *actor(const struct admin_call *c)
{
	return c->operator_name[0] != '\0' ? c->operator_name : "unknown";
}

void admin_verbs_dlq_replay(struct admin_call *c, struct admin_env *env)
{
	int64_t id;
	if (!admin_opts_id_or_fail(c, admin_verbs_arg(c, 0), "id", &id))
		return;
	struct dead_letter *d = xcalloc(1, sizeof *d);
	struct hex_err err = {0};
	enum hex_status st =
	    dead_letter_service_replay(&env->svc->dead_letters, id, actor(c), d, &err);
	if (st != HEX_OK)
		admin_verbs_fail(c, st, &err, NULL);
	else
		admin_verbs_reply(c, json_admin_dead_letter(d, false));
	free(d->payload);
	free(d);
}

/* The reason: one quoted word, or every word after the id as typed, one space apart. */
static char *reason_of(const struct admin_call *c)
{
	size_t len = 1;
	for (int i = c->first + 1; i < c->argc; i++)
		len += strlen(c->argv[i]) + 1;
	char *reason = xmalloc(len), *p = reason;
	for (int i = c->first + 1; i < c->argc; i++) {
		size_t n = strlen(c->argv[i]);
		if (p > reason)
			*p++ = ' ';
		memcpy(p, c->argv[i], n);
		p += n;
	}
	*p = '\0';
	return reason;
}

void admin_verbs_dlq_discard(struct admin_call *c, struct admin_env *env)
{
	int64_t id;
	if (!admin_opts_id_or_fail(c, admin_verbs_arg(c, 0), "id", &id))
		return;
	char *reason = reason_of(c);
	struct dead_letter *d = xcalloc(1, sizeof *d);
	struct hex_err err = {0};
	enum hex_status st =
	    dead_letter_service_discard(&env->svc->dead_letters, id, actor(c), reason, d, &err);
	if (st != HEX_OK)
		admin_verbs_fail(c, st, &err, NULL);
	else
		admin_verbs_reply(c, json_admin_dead_letter(d, false));
	free(d->payload);
	free(d);
	free(reason);
}

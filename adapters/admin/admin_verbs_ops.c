/*
 * admin_verbs_ops.c: the verbs about hexd itself: PING, HELP, STATS, EVENTS LAG,
 * CACHE STATS, CACHE FLUSH and AUDIT LIST.
 */
#include "adapters/admin/admin_verbs.h"

#include "adapters/admin/admin_cursor.h"
#include "adapters/admin/admin_opts.h"
#include "adapters/json/json_admin.h"
#include "core/xmalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

void admin_verbs_ops_ping(struct admin_call *c, struct admin_env *env)
{
	admin_verbs_reply(c, json_string("pong"));
}

static json_t *help_item(const struct admin_verb *v)
{
	return json_pack("{s:s, s:s, s:s, s:b}", "verb", v->name, "usage", v->usage, "summary",
	                 v->summary, "mutating", v->mutating);
}

/* True if v's name starts with the word noun ("DLQ" for "DLQ REPLAY"). */
static bool of_noun(const struct admin_verb *v, const char *noun)
{
	size_t n = strlen(noun);
	return strncasecmp(v->name, noun, n) == 0 && (v->name[n] == ' ' || v->name[n] == '\0');
}

void admin_verbs_ops_help(struct admin_call *c, struct admin_env *env)
{
	int nargs = c->argc - c->first;
	const struct admin_verb *one = NULL;
	int nwords = 0;
	if (nargs > 0) {
		one = admin_verb_find(nargs, c->argv + c->first, &nwords);
		if (nwords != nargs)
			one = NULL;
	}
	json_t *items = json_array();
	for (int i = 0; i < admin_verb_count; i++) {
		const struct admin_verb *v = &admin_verbs[i];
		bool wanted = nargs == 0 || v == one ||
		              (one == NULL && nargs == 1 && of_noun(v, admin_verbs_arg(c, 0)));
		if (wanted)
			items = admin_verbs_push(items, help_item(v));
	}
	if (items != NULL && json_array_size(items) == 0) {
		json_decref(items);
		char echo[48];
		admin_opts_echo(admin_verbs_arg(c, 0), echo);
		admin_fail_code(c, "not_found", "verb", "no verb %s%s%s: try HELP", echo,
		                nargs > 1 ? " " : "", nargs > 1 ? "..." : "");
		return;
	}
	admin_verbs_reply(c, items);
}

void admin_verbs_ops_stats(struct admin_call *c, struct admin_env *env)
{
	json_t *o = env->process.ops != NULL ? env->process.ops->stats(env->process.self) : NULL;
	if (o == NULL || !json_is_object(o)) {
		json_decref(o);
		o = json_object();
	}
	/* The process's figures stand on their own: a database that is down only blanks the
	 * events part, which is when an operator most needs the rest. */
	struct event_lag lag;
	struct hex_err err = {0};
	json_t *events = NULL;
	if (event_lag_service_read(&env->svc->events, false, &lag, &err) == HEX_OK)
		events = json_admin_event_lag(&lag, false);
	json_object_set_new(o, "events", events != NULL ? events : json_null());
	admin_verbs_reply(c, o);
}

void admin_verbs_ops_events_lag(struct admin_call *c, struct admin_env *env)
{
	struct event_lag lag;
	struct hex_err err = {0};
	enum hex_status st = event_lag_service_read(&env->svc->events, true, &lag, &err);
	if (st != HEX_OK) {
		admin_verbs_fail(c, st, &err, NULL);
		return;
	}
	admin_verbs_reply(c, json_admin_event_lag(&lag, true));
}

void admin_verbs_ops_cache_stats(struct admin_call *c, struct admin_env *env)
{
	struct cache_stats stats;
	struct hex_err err = {0};
	enum hex_status st = cache_service_stats(&env->svc->cache, &stats, &err);
	if (st != HEX_OK) {
		admin_verbs_fail(c, st, &err, NULL);
		return;
	}
	admin_verbs_reply(c, json_admin_cache_stats(&stats));
}

void admin_verbs_ops_cache_flush(struct admin_call *c, struct admin_env *env)
{
	const char *user_id = admin_verbs_arg(c, 0);
	if (user_id != NULL && !admin_opts_uuid_or_fail(c, user_id, "user_id"))
		return;
	long deleted = 0;
	struct hex_err err = {0};
	enum hex_status st = cache_service_flush(&env->svc->cache, user_id, &deleted, &err);
	if (st != HEX_OK) {
		admin_verbs_fail(c, st, &err, NULL);
		return;
	}
	admin_verbs_reply(c, json_pack("{s:I}", "deleted", (json_int_t)deleted));
}

void admin_verbs_ops_audit_list(struct admin_call *c, struct admin_env *env)
{
	struct admin_opts o;
	struct admin_cursor cur = {0};
	if (!admin_opts_parse_or_fail(c, 0, ADMIN_OPT_PAGING, &o) ||
	    (o.cursor != NULL && !admin_cursor_decode_or_fail(c, 'A', o.cursor, NULL, &cur)))
		return;
	struct audit_page *page = xcalloc(1, sizeof *page);
	struct hex_err err = {0};
	enum hex_status st =
	    audit_service_list(&env->svc->audit, o.limit, cur.position, page, &err);
	if (st != HEX_OK) {
		admin_verbs_fail(c, st, &err, NULL);
		goto out;
	}
	json_t *items = json_array();
	for (int i = 0; i < page->count; i++)
		items = admin_verbs_push(items, json_admin_audit(&page->items[i]));
	char next[ADMIN_CURSOR_MAX];
	if (page->has_more && page->count > 0)
		admin_cursor_encode('A', page->items[page->count - 1].id, NULL, 0, next);
	admin_verbs_reply(c, json_admin_list(items, page->has_more ? next : NULL));
out:
	free(page);
}

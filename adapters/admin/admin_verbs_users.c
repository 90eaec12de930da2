/*
 * admin_verbs_users.c: USERS LIST, SEARCH, SHOW, GRANT-ADMIN and REVOKE-ADMIN. The
 * operator acts with an admin's rights: every user's payments and messages are visible.
 */
#include "adapters/admin/admin_verbs.h"

#include "adapters/admin/admin_cursor.h"
#include "adapters/admin/admin_opts.h"
#include "adapters/json/json_admin.h"
#include "adapters/json/json_ledger.h"
#include "adapters/json/json_message.h"
#include "adapters/json/json_payment.h"
#include "core/xmalloc.h"

#include <stdlib.h>
#include <string.h>

/* How many of a user's latest payments and messages USERS SHOW includes. */
#define SHOW_LATEST 10

/* A page of users as a list; the cursor walks kind's list with tag. */
static void reply_users(struct admin_call *c, const struct user_page *page, char kind, uint64_t tag)
{
	json_t *items = json_array();
	for (int i = 0; i < page->count; i++)
		items = admin_verbs_push(items, json_admin_user(&page->items[i]));
	char next[ADMIN_CURSOR_MAX];
	if (page->has_more && page->count > 0) {
		const struct user *last = &page->items[page->count - 1];
		admin_cursor_encode(kind, last->created_at_us, last->id, tag, next);
	}
	admin_verbs_reply(c, json_admin_list(items, page->has_more ? next : NULL));
}

/* Lists users newest first, matching text when it is not NULL. */
static void list_users(struct admin_call *c, struct admin_env *env, const char *text)
{
	struct admin_opts o;
	struct admin_cursor cur;
	char kind = text != NULL ? 's' : 'u';
	uint64_t tag = admin_cursor_tag(1, &text);
	if (!admin_opts_parse_or_fail(c, text != NULL ? 1 : 0, ADMIN_OPT_PAGING, &o) ||
	    (o.cursor != NULL && !admin_cursor_decode_or_fail(c, kind, o.cursor, &tag, &cur)))
		return;
	struct user_cursor after = {0};
	if (o.cursor != NULL) {
		after.created_at_us = cur.position;
		hex_strlcpy(after.id, cur.id, sizeof after.id);
	}
	struct user_filter f = {
	    .membership = -1,
	    .limit = o.limit,
	    .after = o.cursor != NULL ? &after : NULL,
	    .email_contains = text,
	    .newest_first = true,
	};
	struct user_page *page = xcalloc(1, sizeof *page);
	struct hex_err err = {0};
	enum hex_status st = user_service_list(&env->svc->users, &f, page, &err);
	if (st == HEX_OK)
		reply_users(c, page, kind, tag);
	else
		admin_verbs_fail(c, st, &err, text != NULL ? "text" : NULL);
	free(page);
}

void admin_verbs_users_list(struct admin_call *c, struct admin_env *env)
{
	list_users(c, env, NULL);
}

void admin_verbs_users_search(struct admin_call *c, struct admin_env *env)
{
	list_users(c, env, admin_verbs_arg(c, 0));
}

/* The user an email names; false (and the call failed) when none does. */
static bool user_by_email_or_fail(struct admin_call *c, struct admin_env *env, const char *email,
                                  struct user *out)
{
	struct user_filter f = {.email = email, .membership = -1, .limit = 1};
	struct user_page *page = xcalloc(1, sizeof *page);
	struct hex_err err = {0};
	enum hex_status st = user_service_list(&env->svc->users, &f, page, &err);
	bool found = st == HEX_OK && page->count == 1;
	if (found)
		*out = page->items[0];
	else if (st == HEX_OK)
		admin_fail_code(c, "not_found", "email", "no user has this email");
	else
		admin_verbs_fail(c, st, &err, NULL);
	free(page);
	return found;
}

/* The user that id_or_email names (an email has an '@'); false when the call failed. */
static bool find_user_or_fail(struct admin_call *c, struct admin_env *env, const char *id_or_email,
                              struct user *out)
{
	if (strchr(id_or_email, '@') != NULL)
		return user_by_email_or_fail(c, env, id_or_email, out);
	if (!admin_opts_uuid_or_fail(c, id_or_email, "id"))
		return false;
	struct hex_err err = {0};
	/* From the repository, not the cache: an operator looks for the truth. */
	enum hex_status st = user_service_load(&env->svc->users, id_or_email, out, &err);
	if (st != HEX_OK)
		admin_verbs_fail(c, st, &err, NULL);
	return st == HEX_OK;
}

static json_t *wallet_of(struct admin_env *env, const char *user_id, struct hex_err *err,
                         enum hex_status *st)
{
	struct ledger_balances b;
	if ((*st = ledger_service_balances(&env->svc->ledger, user_id, &b, err)) != HEX_OK)
		return NULL;
	json_t *arr = json_array();
	for (int i = 0; i < b.n; i++)
		arr = admin_verbs_push(arr, json_ledger_wallet(&b.wallets[i]));
	return arr;
}

static json_t *payments_of(struct admin_env *env, const char *user_id, struct hex_err *err,
                           enum hex_status *st)
{
	struct payment_list_request rq = {.user_id = user_id, .limit = SHOW_LATEST};
	struct payment_page *page = xcalloc(1, sizeof *page);
	json_t *arr = NULL;
	*st = payment_service_list(&env->svc->payments, NULL, true, &rq, page, err);
	if (*st == HEX_OK) {
		arr = json_array();
		for (int i = 0; i < page->count; i++)
			arr = admin_verbs_push(arr, json_payment(&page->items[i], false));
	}
	free(page);
	return arr;
}

static json_t *messages_of(struct admin_env *env, const char *user_id, struct hex_err *err,
                           enum hex_status *st)
{
	struct message_list_request rq = {.user_id = user_id, .limit = SHOW_LATEST};
	struct message_page *page = xcalloc(1, sizeof *page);
	json_t *arr = NULL;
	*st = message_service_list(&env->svc->messages, &admin_verbs_operator, &rq, page, err);
	if (*st == HEX_OK) {
		arr = json_array();
		for (int i = 0; i < page->count; i++)
			arr = admin_verbs_push(arr, json_message(&page->items[i]));
		message_page_clear(page);
	}
	free(page);
	return arr;
}

void admin_verbs_users_show(struct admin_call *c, struct admin_env *env)
{
	struct user u;
	if (!find_user_or_fail(c, env, admin_verbs_arg(c, 0), &u))
		return;
	struct hex_err err = {0};
	enum hex_status st = HEX_OK;
	json_t *wallet = wallet_of(env, u.id, &err, &st);
	json_t *payments = st == HEX_OK ? payments_of(env, u.id, &err, &st) : NULL;
	json_t *messages = st == HEX_OK ? messages_of(env, u.id, &err, &st) : NULL;
	if (st != HEX_OK) {
		json_decref(wallet);
		json_decref(payments);
		admin_verbs_fail(c, st, &err, NULL);
		return;
	}
	json_t *user = json_admin_user(&u);
	if (user == NULL || wallet == NULL || payments == NULL || messages == NULL) {
		json_decref(user);
		json_decref(wallet);
		json_decref(payments);
		json_decref(messages);
		admin_verbs_reply(c, NULL);
		return;
	}
	admin_verbs_reply(c, json_pack("{s:o, s:o, s:o, s:o}", "user", user, "wallet", wallet,
	                               "payments", payments, "messages", messages));
}

static void set_role(struct admin_call *c, struct admin_env *env, enum user_role role)
{
	struct user u;
	if (!user_by_email_or_fail(c, env, admin_verbs_arg(c, 0), &u))
		return;
	struct hex_err err = {0};
	enum hex_status st = user_service_set_role(&env->svc->users, u.id, role, &u, &err);
	if (st != HEX_OK) {
		admin_verbs_fail(c, st, &err, NULL);
		return;
	}
	admin_verbs_reply(c, json_admin_user(&u));
}

void admin_verbs_users_grant_admin(struct admin_call *c, struct admin_env *env)
{
	set_role(c, env, ROLE_ADMIN);
}

void admin_verbs_users_revoke_admin(struct admin_call *c, struct admin_env *env)
{
	set_role(c, env, ROLE_USER);
}

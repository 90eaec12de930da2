/* http_users.c: the /v1/users routes. */
#include "adapters/http/http_handlers.h"

#include "adapters/http/http_query.h"
#include "adapters/json/json_body.h"
#include "adapters/json/json_user.h"
#include "core/xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void http_users_create(struct http_exchange *x, struct hex_services *svc)
{
	struct hex_err err = {0};
	const char *email, *password;
	struct user u;
	enum hex_status st = json_body_string(x->json, "email", true, &email, &err);
	if (st == HEX_OK)
		st = json_body_string(x->json, "password", true, &password, &err);
	if (st == HEX_OK)
		st = user_service_create(&svc->users, email, password, &u, &err);
	if (st != HEX_OK) {
		http_reply_error(x, st, &err);
		return;
	}
	char location[64];
	snprintf(location, sizeof location, "/v1/users/%s", u.id);
	http_reply_header(x, "Location", location);
	http_reply_json(x, 201, json_user(&u));
}

void http_users_show(struct http_exchange *x, struct hex_services *svc)
{
	struct hex_err err = {0};
	const char *id = x->params[0];
	const struct user *caller = &x->caller.user;
	if (!user_id_valid(id)) {
		http_reply_error(x, hex_fail(&err, HEX_NOT_FOUND, NULL, "user not found"), &err);
		return;
	}
	if (strcmp(id, caller->id) == 0) { /* already read through the cache by the auth check */
		http_reply_json(x, 200, json_user(caller));
		return;
	}
	if (svc == NULL) { /* on the loop thread: another user's read needs a worker */
		http_defer(x);
		return;
	}
	if (caller->role != ROLE_ADMIN) {
		http_reply_error(
		    x, hex_fail(&err, HEX_FORBIDDEN, NULL, "you may only read your own user"),
		    &err);
		return;
	}
	struct user u;
	enum hex_status st = user_service_read(&svc->users, id, &u, &err);
	if (st != HEX_OK) {
		http_reply_error(x, st, &err);
		return;
	}
	http_reply_json(x, 200, json_user(&u));
}

static json_t *user_page_json(const struct user_page *page)
{
	json_t *data = json_array();
	for (int i = 0; i < page->count; i++)
		json_array_append_new(data, json_user(&page->items[i]));
	json_t *next = json_null();
	if (page->has_more && page->count > 0) {
		char cursor[160];
		const struct user *last = &page->items[page->count - 1];
		http_cursor_encode('u', last->created_at_us, last->id, 0, cursor, sizeof cursor);
		json_decref(next);
		next = json_string(cursor);
	}
	return json_pack("{s:o, s:o}", "data", data, "next_cursor", next);
}

void http_users_list(struct http_exchange *x, struct hex_services *svc)
{
	struct hex_err err = {0};
	struct user_filter f = {.membership = -1};
	struct user_cursor after;
	struct user_page *page = NULL;
	char *email = http_query_get(x, "email");
	char *membership = http_query_get(x, "membership");
	char *cursor = http_query_get(x, "cursor");
	enum hex_status st = HEX_OK;

	if (x->caller.user.role != ROLE_ADMIN) {
		st = hex_fail(&err, HEX_FORBIDDEN, NULL, "listing users is for admins");
		goto out;
	}
	if ((st = http_query_limit(x, &f.limit, &err)) != HEX_OK)
		goto out;
	if (membership != NULL) {
		enum membership m;
		if (!membership_parse(membership, &m)) {
			st = hex_fail(&err, HEX_INVALID, "membership",
			              "membership must be free or member");
			goto out;
		}
		f.membership = (int)m;
	}
	if (cursor != NULL) {
		uint64_t tag;
		st = http_cursor_decode('u', cursor, &after.created_at_us, after.id, &tag, &err);
		if (st != HEX_OK)
			goto out;
		f.after = &after;
	}
	f.email = email;
	page = xmalloc(sizeof *page);
	st = user_service_list(&svc->users, &f, page, &err);
out:
	if (st == HEX_OK)
		http_reply_json(x, 200, user_page_json(page));
	else
		http_reply_error(x, st, &err);
	free(page);
	free(email);
	free(membership);
	free(cursor);
}

void http_users_update(struct http_exchange *x, struct hex_services *svc)
{
	struct hex_err err = {0};
	struct user_changes ch = {0};
	struct user u;
	enum hex_status st = json_body_string(x->json, "email", false, &ch.email, &err);
	if (st == HEX_OK)
		st = json_body_string(x->json, "password", false, &ch.password, &err);
	if (st == HEX_OK)
		st = user_service_update(&svc->users, x->caller.user.id, &ch, &u, &err);
	if (st != HEX_OK) {
		http_reply_error(x, st, &err);
		return;
	}
	http_reply_json(x, 200, json_user(&u));
}

void http_users_delete(struct http_exchange *x, struct hex_services *svc)
{
	struct hex_err err = {0};
	enum hex_status st = user_service_delete(&svc->users, x->caller.user.id, &err);
	if (st != HEX_OK) {
		http_reply_error(x, st, &err);
		return;
	}
	http_reply_empty(x, 204);
}

/* json_user.c: users and token pairs as JSON. */
#include "adapters/json/json_user.h"

#include "adapters/json/json_time.h"

json_t *json_user(const struct user *u)
{
	char created[JSON_TIME_LEN], updated[JSON_TIME_LEN];
	json_time_format(u->created_at_us, created);
	json_time_format(u->updated_at_us, updated);
	return json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", u->id, "email", u->email, "membership",
	                 membership_name(u->membership), "created_at", created, "updated_at",
	                 updated);
}

json_t *json_auth_tokens(const struct auth_tokens *t)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i}", "id", t->user.id, "email",
	                 t->user.email, "membership", membership_name(t->user.membership),
	                 "access_token", t->access_token, "refresh_token", t->refresh_token,
	                 "token_type", "Bearer", "expires_in", t->expires_in);
}

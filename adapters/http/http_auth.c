/* http_auth.c: login, token refresh and logout. */
#include "adapters/http/http_handlers.h"

#include "adapters/json/json_body.h"
#include "adapters/json/json_user.h"
#include "core/xmalloc.h"

#include <stdlib.h>
#include <string.h>

static void reply_tokens(struct http_exchange *x, enum hex_status st, struct auth_tokens *t,
                         const struct hex_err *err)
{
	if (st == HEX_OK)
		http_reply_json(x, 200, json_auth_tokens(t));
	else
		http_reply_error(x, st, err);
	explicit_bzero(t, sizeof *t);
	free(t);
}

void http_auth_login(struct http_exchange *x, struct hex_services *svc)
{
	struct hex_err err = {0};
	const char *email, *password;
	struct auth_tokens *t = xmalloc(sizeof *t);
	enum hex_status st = json_body_string(x->json, "email", true, &email, &err);
	if (st == HEX_OK)
		st = json_body_string(x->json, "password", true, &password, &err);
	if (st == HEX_OK)
		st = auth_service_login(&svc->auth, email, password, x->client_addr, t, &err);
	reply_tokens(x, st, t, &err);
}

void http_auth_refresh(struct http_exchange *x, struct hex_services *svc)
{
	struct hex_err err = {0};
	const char *token;
	struct auth_tokens *t = xmalloc(sizeof *t);
	enum hex_status st = json_body_string(x->json, "refresh_token", true, &token, &err);
	if (st == HEX_OK)
		st = auth_service_refresh(&svc->auth, token, x->client_addr, t, &err);
	reply_tokens(x, st, t, &err);
}

void http_auth_logout(struct http_exchange *x, struct hex_services *svc)
{
	struct hex_err err = {0};
	enum hex_status st = auth_service_logout(&svc->auth, x->caller.user.id, &err);
	if (st != HEX_OK) {
		http_reply_error(x, st, &err);
		return;
	}
	http_reply_empty(x, 204);
}

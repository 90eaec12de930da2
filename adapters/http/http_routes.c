/* http_routes.c: the v1 route table, declared once, and the matcher. */
#include "adapters/http/http_routes.h"

#include "adapters/http/http_handlers.h"
#include "core/xmalloc.h"

#include <assert.h>

#include <string.h>

static const struct http_route routes[] = {
    {HTTP_GET, "/healthz", AUTH_NONE, BODY_NONE, POOL_INLINE, http_health_live, LISTEN_API,
     IDEM_NONE},
    {HTTP_GET, "/readyz", AUTH_NONE, BODY_NONE, POOL_DEFAULT, http_health_ready, LISTEN_API,
     IDEM_NONE},
    {HTTP_GET, "/metrics", AUTH_NONE, BODY_NONE, POOL_INLINE, http_metrics_show, LISTEN_METRICS,
     IDEM_NONE},
    {HTTP_POST, "/v1/users", AUTH_NONE, BODY_JSON, POOL_KDF, http_users_create, LISTEN_API,
     IDEM_NONE},
    {HTTP_GET, "/v1/users", AUTH_BEARER, BODY_NONE, POOL_DEFAULT, http_users_list, LISTEN_API,
     IDEM_NONE},
    {HTTP_PUT, "/v1/users", AUTH_BEARER, BODY_JSON, POOL_KDF, http_users_update, LISTEN_API,
     IDEM_NONE},
    {HTTP_DELETE, "/v1/users", AUTH_BEARER, BODY_NONE, POOL_DEFAULT, http_users_delete, LISTEN_API,
     IDEM_NONE},
    {HTTP_GET, "/v1/users/:id", AUTH_BEARER, BODY_NONE, POOL_LOOP_FIRST, http_users_show,
     LISTEN_API, IDEM_NONE},
    {HTTP_POST, "/v1/login", AUTH_NONE, BODY_JSON, POOL_KDF, http_auth_login, LISTEN_API,
     IDEM_NONE},
    {HTTP_POST, "/v1/token/refresh", AUTH_NONE, BODY_JSON, POOL_DEFAULT, http_auth_refresh,
     LISTEN_API, IDEM_NONE},
    {HTTP_POST, "/v1/logout", AUTH_BEARER, BODY_NONE, POOL_DEFAULT, http_auth_logout, LISTEN_API,
     IDEM_NONE},
    {HTTP_POST, "/v1/messages", AUTH_BEARER, BODY_JSON, POOL_DEFAULT, http_messages_create,
     LISTEN_API, IDEM_NONE},
    {HTTP_GET, "/v1/messages", AUTH_BEARER, BODY_NONE, POOL_DEFAULT, http_messages_list, LISTEN_API,
     IDEM_NONE},
    {HTTP_GET, "/v1/messages/:id", AUTH_BEARER, BODY_NONE, POOL_DEFAULT, http_messages_show,
     LISTEN_API, IDEM_NONE},
    {HTTP_PUT, "/v1/messages/:id", AUTH_BEARER, BODY_JSON, POOL_DEFAULT, http_messages_update,
     LISTEN_API, IDEM_NONE},
    {HTTP_DELETE, "/v1/messages/:id", AUTH_BEARER, BODY_NONE, POOL_DEFAULT, http_messages_delete,
     LISTEN_API, IDEM_NONE},
    {HTTP_POST, "/v1/membership/webhooks", AUTH_NONE, BODY_JSON, POOL_DEFAULT,
     http_webhooks_membership, LISTEN_API, IDEM_NONE},
    {HTTP_POST, "/v2/payments", AUTH_BEARER, BODY_JSON, POOL_GATEWAY, http_payments_create,
     LISTEN_PAYMENTS, IDEM_KEYED},
    {HTTP_GET, "/v2/payments", AUTH_BEARER, BODY_NONE, POOL_DEFAULT, http_payments_list,
     LISTEN_PAYMENTS, IDEM_NONE},
    {HTTP_GET, "/v2/payments/:id", AUTH_BEARER, BODY_NONE, POOL_DEFAULT, http_payments_show,
     LISTEN_PAYMENTS, IDEM_NONE},
    {HTTP_POST, "/v2/create-checkout-session", AUTH_BEARER, BODY_NONE, POOL_GATEWAY,
     http_payments_checkout, LISTEN_PAYMENTS, IDEM_NONE},
    {HTTP_GET, "/v2/wallet", AUTH_BEARER, BODY_NONE, POOL_DEFAULT, http_wallet_show,
     LISTEN_PAYMENTS, IDEM_NONE},
    {HTTP_GET, "/v2/wallet/entries", AUTH_BEARER, BODY_NONE, POOL_DEFAULT, http_wallet_entries,
     LISTEN_PAYMENTS, IDEM_NONE},
    {HTTP_POST, "/v2/wallet/transfers", AUTH_BEARER, BODY_JSON, POOL_DEFAULT, http_wallet_transfer,
     LISTEN_PAYMENTS, IDEM_NONE},
    {HTTP_POST, "/v2/stripe/webhook", AUTH_NONE, BODY_NONE, POOL_DEFAULT, http_webhooks_stripe,
     LISTEN_PAYMENTS, IDEM_NONE},
};

static const char *const method_names[] = {
    [HTTP_GET] = "GET",       [HTTP_POST] = "POST",   [HTTP_PUT] = "PUT",
    [HTTP_DELETE] = "DELETE", [HTTP_PATCH] = "PATCH", [HTTP_OTHER] = "OTHER",
};

const char *http_method_name(enum http_method m)
{
	return method_names[m];
}

/* Matches path against pattern; on success stores up to HTTP_MAX_PARAMS captures. */
static bool pattern_match(const char *pattern, const char *path, const char *caps[HTTP_MAX_PARAMS],
                          size_t caplen[HTTP_MAX_PARAMS])
{
	int ncap = 0;
	while (*pattern != '\0' && *path != '\0') {
		if (*pattern != '/' || *path != '/')
			return false;
		pattern++, path++;
		size_t plen = strcspn(pattern, "/"), slen = strcspn(path, "/");
		if (*pattern == ':') {
			if (slen == 0 || ncap == HTTP_MAX_PARAMS)
				return false;
			caps[ncap] = path;
			caplen[ncap++] = slen;
		} else if (plen != slen || strncmp(pattern, path, plen) != 0) {
			return false;
		}
		pattern += plen, path += slen;
	}
	return *pattern == '\0' && *path == '\0';
}

static_assert(sizeof routes / sizeof routes[0] <= HTTP_ROUTES_MAX, "raise HTTP_ROUTES_MAX");

int http_routes_count(void)
{
	return (int)(sizeof routes / sizeof routes[0]);
}

int http_routes_index(const struct http_route *r)
{
	return (int)(r - routes);
}

const struct http_route *http_routes_at(int i)
{
	return &routes[i];
}

enum http_match http_routes_match(unsigned listeners, enum http_method method, const char *path,
                                  const struct http_route **route, char *params[HTTP_MAX_PARAMS],
                                  char *allow, size_t allow_len)
{
	bool path_known = false;
	allow[0] = '\0';
	for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
		const char *caps[HTTP_MAX_PARAMS];
		size_t caplen[HTTP_MAX_PARAMS];
		if (!(listeners & (1u << routes[i].listener)) ||
		    !pattern_match(routes[i].pattern, path, caps, caplen))
			continue;
		if (routes[i].method == method) {
			*route = &routes[i];
			int n = 0;
			for (const char *p = routes[i].pattern; (p = strchr(p, ':')) != NULL; p++)
				n++;
			for (int k = 0; k < n; k++)
				params[k] = xstrndup(caps[k], caplen[k]);
			return MATCH_OK;
		}
		path_known = true;
		if (allow[0] != '\0')
			strncat(allow, ", ", allow_len - strlen(allow) - 1);
		strncat(allow, method_names[routes[i].method], allow_len - strlen(allow) - 1);
	}
	return path_known ? MATCH_NO_METHOD : MATCH_NO_PATH;
}

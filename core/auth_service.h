/* auth_service: login, refresh with rotation and reuse detection, logout, and bearer checks. */
#ifndef HEX_AUTH_SERVICE_H
#define HEX_AUTH_SERVICE_H

#include "core/ports/rate_limiter.h"
#include "core/ports/refresh_repo.h"
#include "core/ports/token_signer.h"
#include "core/user_service.h"

struct auth_policy {
	int access_ttl_s;          /* default 900 */
	int refresh_ttl_s;         /* default 7 days */
	int login_limit_per_email; /* attempts per window, 0 = off */
	int login_limit_per_addr;
	int login_window_s;         /* the window of every limit here */
	int refresh_limit_per_addr; /* refreshes per window per client address, 0 = off */
};

struct auth_service {
	struct user_service *users;
	struct refresh_repo refresh;
	struct token_signer signer;
	struct rate_limiter limiter;
	struct auth_policy policy;
	/* A hash of no one's password: unknown emails cost the same work as known ones. */
	char dummy_hash[HEX_HASH_MAX];
};

struct auth_tokens {
	struct user user;
	char access_token[HEX_TOKEN_MAX];
	char refresh_token[HEX_TOKEN_MAX];
	int expires_in; /* seconds the access token lives */
};

/* The authenticated caller of a request. */
struct principal {
	struct user user; /* current state of the caller, read through the cache */
	struct token_claims claims;
};

void auth_policy_defaults(struct auth_policy *p);
/* Fills dummy_hash through the hasher; once, before the first login. */
enum hex_status auth_service_prepare(struct auth_service *s) HEX_MUST_CHECK;

/*
 * Same answer (HEX_UNAUTHENTICATED) and same work for an unknown email and a wrong
 * password. client_addr keys the per-address limit (may be NULL).
 */
enum hex_status auth_service_login(struct auth_service *s, const char *email, const char *password,
                                   const char *client_addr, struct auth_tokens *out,
                                   struct hex_err *err) HEX_MUST_CHECK;
/*
 * Rotates: the presented token dies; reuse of a dead token revokes its whole family.
 * Rate limited per client_addr (may be NULL) before the token is looked at:
 * HEX_RATE_LIMITED with err->retry_after_s, and the token is not spent.
 */
enum hex_status auth_service_refresh(struct auth_service *s, const char *refresh_token,
                                     const char *client_addr, struct auth_tokens *out,
                                     struct hex_err *err) HEX_MUST_CHECK;
/* Revokes every refresh token and access token of the user. */
enum hex_status auth_service_logout(struct auth_service *s, const char *user_id,
                                    struct hex_err *err) HEX_MUST_CHECK;
/*
 * The rule that admits a caller: the token's claims (already verified) against the
 * user's current state. Pure: shared by the synchronous check below and by callers that
 * read the user some other way (an event loop reading the cache asynchronously).
 */
enum hex_status auth_service_admit(const struct token_claims *claims, const struct user *u,
                                   struct principal *out, struct hex_err *err) HEX_MUST_CHECK;
/*
 * Verifies an access token and loads the caller (through the cache unless skip_cache:
 * the caller already missed it); a revoked or deleted user is refused.
 */
enum hex_status auth_service_authenticate(struct auth_service *s, const char *access_token,
                                          bool skip_cache, struct principal *out,
                                          struct hex_err *err) HEX_MUST_CHECK;

#endif

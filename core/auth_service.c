/* auth_service.c: login, refresh rotation with reuse detection, logout, bearer checks. */
#include "core/auth_service.h"

#include <stdio.h>
#include <string.h>

#define US_PER_S 1000000LL

void auth_policy_defaults(struct auth_policy *p)
{
	p->access_ttl_s = 900;
	p->refresh_ttl_s = 7 * 24 * 3600;
	p->login_limit_per_email = 10;
	p->login_limit_per_addr = 100;
	p->login_window_s = 60;
	p->refresh_limit_per_addr = 60;
}

enum hex_status auth_service_prepare(struct auth_service *s)
{
	struct password_hasher *h = &s->users->hasher;
	return h->ops->hash(h->self, "not-a-password-of-anyone", s->dummy_hash,
	                    sizeof s->dummy_hash);
}

static enum hex_status bad_credentials(struct hex_err *err)
{
	return hex_fail(err, HEX_UNAUTHENTICATED, NULL, "invalid email or password");
}

/* kind names the counter ("login:addr"); what names the attempts in the message. */
static enum hex_status limit_hit(struct auth_service *s, const char *kind, const char *who,
                                 int limit, const char *what, struct hex_err *err)
{
	if (s->limiter.ops == NULL || limit <= 0 || who == NULL || who[0] == '\0')
		return HEX_OK;
	char key[HEX_EMAIL_MAX + 64];
	snprintf(key, sizeof key, "%s:%s", kind, who);
	int retry = 1;
	if (s->limiter.ops->hit(s->limiter.self, key, limit, s->policy.login_window_s, &retry) ==
	    HEX_OK)
		return HEX_OK;
	hex_fail(err, HEX_RATE_LIMITED, NULL, "too many %s; retry in %d s", what, retry);
	if (err != NULL)
		err->retry_after_s = retry;
	return HEX_RATE_LIMITED;
}

/* Signs a new access + refresh pair for u in the refresh family family_id. */
static enum hex_status issue_pair(struct auth_service *s, const struct user *u,
                                  const char *refresh_jti, struct auth_tokens *out,
                                  struct hex_err *err)
{
	int64_t now_s = s->users->clock.ops->now_us(s->users->clock.self) / US_PER_S;
	struct token_claims c = {.type = TOKEN_ACCESS,
	                         .role = u->role,
	                         .ver = u->token_version,
	                         .iat = now_s,
	                         .exp = now_s + s->policy.access_ttl_s};
	hex_strlcpy(c.sub, u->id, sizeof c.sub);
	s->users->ids.ops->new_id(s->users->ids.self, c.jti);
	struct token_signer *sg = &s->signer;
	if (sg->ops->sign(sg->self, &c, out->access_token, sizeof out->access_token) != HEX_OK)
		return hex_fail(err, HEX_INTERNAL, NULL, "internal error");
	c.type = TOKEN_REFRESH;
	c.exp = now_s + s->policy.refresh_ttl_s;
	hex_strlcpy(c.jti, refresh_jti, sizeof c.jti);
	if (sg->ops->sign(sg->self, &c, out->refresh_token, sizeof out->refresh_token) != HEX_OK)
		return hex_fail(err, HEX_INTERNAL, NULL, "internal error");
	out->user = *u;
	out->expires_in = s->policy.access_ttl_s;
	return HEX_OK;
}

static void new_refresh_record(struct auth_service *s, const char *user_id, const char *family_id,
                               struct refresh_record *r)
{
	memset(r, 0, sizeof *r);
	s->users->ids.ops->new_id(s->users->ids.self, r->jti);
	hex_strlcpy(r->user_id, user_id, sizeof r->user_id);
	if (family_id != NULL)
		hex_strlcpy(r->family_id, family_id, sizeof r->family_id);
	r->expires_at_us = s->users->clock.ops->now_us(s->users->clock.self) +
	                   (int64_t)s->policy.refresh_ttl_s * US_PER_S;
}

enum hex_status auth_service_login(struct auth_service *s, const char *email, const char *password,
                                   const char *client_addr, struct auth_tokens *out,
                                   struct hex_err *err)
{
	struct user_service *us = s->users;
	char norm[HEX_EMAIL_MAX + 1];
	bool email_ok = user_email_normalize(email, norm, NULL) == HEX_OK;
	enum hex_status st = limit_hit(s, "login:addr", client_addr, s->policy.login_limit_per_addr,
	                               "login attempts", err);
	if (st == HEX_OK && email_ok)
		st = limit_hit(s, "login:email", norm, s->policy.login_limit_per_email,
		               "login attempts", err);
	if (st != HEX_OK)
		return st;
	if (password == NULL || strlen(password) > HEX_PASSWORD_MAX)
		return bad_credentials(err);

	struct user u;
	char hash[HEX_HASH_MAX] = "";
	st = email_ok ? us->repo.ops->get_by_email(us->repo.self, norm, &u, hash, sizeof hash)
	              : HEX_NOT_FOUND;
	if (st == HEX_UNAVAILABLE)
		return hex_fail(err, st, NULL, "the database is unavailable");
	if (st != HEX_OK && st != HEX_NOT_FOUND)
		return hex_fail(err, HEX_INTERNAL, NULL, "internal error");
	/* Unknown emails verify against the dummy hash: same answer, same time. */
	const char *against = st == HEX_OK ? hash : s->dummy_hash;
	enum hex_status vst = us->hasher.ops->verify(us->hasher.self, password, against);
	explicit_bzero(hash, sizeof hash);
	if (st != HEX_OK || vst != HEX_OK)
		return bad_credentials(err);

	struct refresh_record r;
	new_refresh_record(s, u.id, NULL, &r);
	hex_strlcpy(r.family_id, r.jti, sizeof r.family_id); /* a login starts a family */
	st = s->refresh.ops->insert(s->refresh.self, &r);
	if (st != HEX_OK)
		return hex_fail(err, st == HEX_UNAVAILABLE ? st : HEX_INTERNAL, NULL,
		                st == HEX_UNAVAILABLE ? "the database is unavailable"
		                                      : "internal error");
	return issue_pair(s, &u, r.jti, out, err);
}

enum hex_status auth_service_refresh(struct auth_service *s, const char *refresh_token,
                                     const char *client_addr, struct auth_tokens *out,
                                     struct hex_err *err)
{
	enum hex_status st = limit_hit(s, "refresh:addr", client_addr,
	                               s->policy.refresh_limit_per_addr, "token refreshes", err);
	if (st != HEX_OK)
		return st;
	struct token_claims c;
	int64_t now_us = s->users->clock.ops->now_us(s->users->clock.self);
	st = s->signer.ops->verify(s->signer.self, refresh_token, TOKEN_REFRESH, now_us / US_PER_S,
	                           &c, err);
	if (st != HEX_OK)
		return HEX_UNAUTHENTICATED;

	struct refresh_record next, old;
	new_refresh_record(s, c.sub, NULL, &next);
	st = s->refresh.ops->rotate(s->refresh.self, c.jti, now_us, &next, &old);
	switch (st) {
	case HEX_OK:
		break;
	case HEX_CONFLICT:
		/* A dead token came back: someone holds a copy. End the whole family. */
		(void)s->refresh.ops->revoke_family(s->refresh.self, old.family_id);
		return hex_fail(err, HEX_UNAUTHENTICATED, NULL,
		                "refresh token reuse detected; please log in again");
	case HEX_NOT_FOUND:
		return hex_fail(err, HEX_UNAUTHENTICATED, NULL, "refresh token is not valid");
	case HEX_UNAVAILABLE:
		return hex_fail(err, st, NULL, "the database is unavailable");
	default:
		return hex_fail(err, HEX_INTERNAL, NULL, "internal error");
	}
	struct user u;
	st = user_service_read(s->users, old.user_id, &u, err);
	if (st == HEX_NOT_FOUND)
		return hex_fail(err, HEX_UNAUTHENTICATED, NULL, "refresh token is not valid");
	if (st != HEX_OK)
		return st;
	return issue_pair(s, &u, next.jti, out, err);
}

enum hex_status auth_service_logout(struct auth_service *s, const char *user_id,
                                    struct hex_err *err)
{
	return user_service_revoke_sessions(s->users, user_id, err);
}

enum hex_status auth_service_authenticate(struct auth_service *s, const char *access_token,
                                          bool skip_cache, struct principal *out,
                                          struct hex_err *err)
{
	int64_t now_s = s->users->clock.ops->now_us(s->users->clock.self) / US_PER_S;
	struct token_claims claims;
	struct user u;
	enum hex_status st =
	    s->signer.ops->verify(s->signer.self, access_token, TOKEN_ACCESS, now_s, &claims, err);
	if (st != HEX_OK)
		return HEX_UNAUTHENTICATED;
	st = skip_cache ? user_service_load(s->users, claims.sub, &u, err)
	                : user_service_read(s->users, claims.sub, &u, err);
	if (st == HEX_NOT_FOUND)
		return hex_fail(err, HEX_UNAUTHENTICATED, NULL, "the user no longer exists");
	if (st != HEX_OK)
		return st;
	return auth_service_admit(&claims, &u, out, err);
}

enum hex_status auth_service_admit(const struct token_claims *claims, const struct user *u,
                                   struct principal *out, struct hex_err *err)
{
	if (strcmp(claims->sub, u->id) != 0)
		return hex_fail(err, HEX_UNAUTHENTICATED, NULL, "the user no longer exists");
	if (u->token_version != claims->ver)
		return hex_fail(err, HEX_UNAUTHENTICATED, NULL, "token has been revoked");
	out->claims = *claims;
	out->user = *u;
	return HEX_OK;
}

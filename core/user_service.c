/* user_service.c: create, read (cache-aside), update, delete and list users. */
#include "core/user_service.h"

#include <string.h>

static void cache_put(struct user_service *s, const struct user *u)
{
	if (s->cache.ops != NULL)
		s->cache.ops->put(s->cache.self, u);
}

/* After every committed write: the next read rebuilds the entry from the truth. */
static void cache_forget(struct user_service *s, const char *id)
{
	if (s->cache.ops != NULL)
		(void)s->cache.ops->del(s->cache.self, id); /* the adapter retries it */
}

static enum hex_status repo_failed(enum hex_status st, struct hex_err *err)
{
	if (st == HEX_CONFLICT)
		return hex_fail(err, st, "email", "a user with this email already exists");
	return hex_store_failed(st, "user", err);
}

enum hex_status user_service_create(struct user_service *s, const char *email, const char *password,
                                    struct user *out, struct hex_err *err)
{
	struct user u = {0};
	enum hex_status st = user_email_normalize(email, u.email, err);
	if (st != HEX_OK)
		return st;
	if ((st = user_password_check(password, err)) != HEX_OK)
		return st;
	char hash[HEX_HASH_MAX];
	st = s->hasher.ops->hash(s->hasher.self, password, hash, sizeof hash);
	if (st != HEX_OK)
		return hex_fail(err, HEX_INTERNAL, NULL, "internal error");
	s->ids.ops->new_id(s->ids.self, u.id);
	u.membership = MEMBERSHIP_FREE;
	u.role = ROLE_USER;
	u.created_at_us = u.updated_at_us = s->clock.ops->now_us(s->clock.self);
	st = s->repo.ops->insert(s->repo.self, &u, hash);
	explicit_bzero(hash, sizeof hash);
	if (st != HEX_OK)
		return repo_failed(st, err);
	*out = u;
	return HEX_OK;
}

enum hex_status user_service_read(struct user_service *s, const char *id, struct user *out,
                                  struct hex_err *err)
{
	if (!user_id_valid(id))
		return hex_fail(err, HEX_NOT_FOUND, NULL, "user not found");
	if (s->cache.ops != NULL && s->cache.ops->get(s->cache.self, id, out) == HEX_OK)
		return HEX_OK;
	return user_service_load(s, id, out, err);
}

enum hex_status user_service_load(struct user_service *s, const char *id, struct user *out,
                                  struct hex_err *err)
{
	if (!user_id_valid(id))
		return hex_fail(err, HEX_NOT_FOUND, NULL, "user not found");
	enum hex_status st = s->repo.ops->get(s->repo.self, id, out);
	if (st != HEX_OK)
		return repo_failed(st, err);
	cache_put(s, out);
	return HEX_OK;
}

enum hex_status user_service_update(struct user_service *s, const char *id,
                                    const struct user_changes *ch, struct user *out,
                                    struct hex_err *err)
{
	struct user u;
	enum hex_status st = s->repo.ops->get(s->repo.self, id, &u);
	if (st != HEX_OK)
		return repo_failed(st, err);
	if (ch->email != NULL && (st = user_email_normalize(ch->email, u.email, err)) != HEX_OK)
		return st;
	char hash[HEX_HASH_MAX];
	const char *new_hash = NULL;
	if (ch->password != NULL) {
		if ((st = user_password_check(ch->password, err)) != HEX_OK)
			return st;
		if (s->hasher.ops->hash(s->hasher.self, ch->password, hash, sizeof hash) != HEX_OK)
			return hex_fail(err, HEX_INTERNAL, NULL, "internal error");
		new_hash = hash;
	}
	u.updated_at_us = s->clock.ops->now_us(s->clock.self);
	/* A new password ends every session the old one opened, in the same transaction. */
	st = s->repo.ops->update(s->repo.self, &u, new_hash, new_hash != NULL, &u);
	explicit_bzero(hash, sizeof hash);
	cache_forget(s, id);
	if (st != HEX_OK)
		return repo_failed(st, err);
	*out = u;
	return HEX_OK;
}

enum hex_status user_service_delete(struct user_service *s, const char *id, struct hex_err *err)
{
	enum hex_status st = s->repo.ops->remove(s->repo.self, id);
	cache_forget(s, id);
	return st == HEX_OK ? HEX_OK : repo_failed(st, err);
}

/*
 * A search text is part of an email: 1..HEX_EMAIL_MAX printable ASCII characters (emails
 * hold nothing else), so that what reaches the repository can match something.
 */
static enum hex_status email_part_check(const struct user_filter *f, struct hex_err *err)
{
	if (f->email_contains == NULL)
		return HEX_OK;
	if (f->email != NULL)
		return hex_fail(err, HEX_INVALID, "email_contains",
		                "search by part of an email or by a whole one, not both");
	size_t n = strlen(f->email_contains);
	bool ok = n >= 1 && n <= HEX_EMAIL_MAX;
	for (size_t i = 0; ok && i < n; i++)
		ok = f->email_contains[i] > 0x20 && f->email_contains[i] < 0x7f;
	if (!ok)
		return hex_fail(
		    err, HEX_INVALID, "email_contains",
		    "the search text must be 1 to %d printable characters without spaces",
		    HEX_EMAIL_MAX);
	return HEX_OK;
}

enum hex_status user_service_list(struct user_service *s, const struct user_filter *f,
                                  struct user_page *out, struct hex_err *err)
{
	if (f->limit < 1 || f->limit > HEX_LIST_MAX)
		return hex_fail(err, HEX_INVALID, "limit", "limit must be between 1 and %d",
		                HEX_LIST_MAX);
	struct user_filter norm = *f;
	char email[HEX_EMAIL_MAX + 1];
	enum hex_status st = email_part_check(f, err);
	if (st != HEX_OK)
		return st;
	if (f->email != NULL) {
		st = user_email_normalize(f->email, email, err);
		if (st != HEX_OK)
			return st;
		norm.email = email;
	}
	st = s->repo.ops->list(s->repo.self, &norm, out);
	return st == HEX_OK ? HEX_OK : repo_failed(st, err);
}

/*
 * Reads, changes one attribute with fn, writes, forgets the cache entry. fn returns true
 * when the change must also end the user's sessions.
 */
static enum hex_status user_service_change(struct user_service *s, const char *id,
                                           bool (*fn)(struct user *, int), int value,
                                           struct user *out, struct hex_err *err)
{
	struct user u;
	enum hex_status st = s->repo.ops->get(s->repo.self, id, &u);
	if (st != HEX_OK)
		return repo_failed(st, err);
	bool end_sessions = fn(&u, value);
	u.updated_at_us = s->clock.ops->now_us(s->clock.self);
	st = s->repo.ops->update(s->repo.self, &u, NULL, end_sessions, &u);
	cache_forget(s, id);
	if (st != HEX_OK)
		return repo_failed(st, err);
	*out = u;
	return HEX_OK;
}

static bool set_membership(struct user *u, int v)
{
	u->membership = (enum membership)v;
	return false;
}

static bool set_role(struct user *u, int v)
{
	u->role = (enum user_role)v;
	/* Tokens carry the role: a role change must not leave stale tokens valid. */
	return true;
}

enum hex_status user_service_set_membership(struct user_service *s, const char *id,
                                            enum membership m, struct user *out,
                                            struct hex_err *err)
{
	return user_service_change(s, id, set_membership, (int)m, out, err);
}

enum hex_status user_service_set_role(struct user_service *s, const char *id, enum user_role r,
                                      struct user *out, struct hex_err *err)
{
	return user_service_change(s, id, set_role, (int)r, out, err);
}

enum hex_status user_service_revoke_sessions(struct user_service *s, const char *id,
                                             struct hex_err *err)
{
	struct user u;
	int64_t now = s->clock.ops->now_us(s->clock.self);
	enum hex_status st = s->repo.ops->revoke_sessions(s->repo.self, id, now, &u);
	cache_forget(s, id);
	return st == HEX_OK ? HEX_OK : repo_failed(st, err);
}

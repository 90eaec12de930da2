/* user_repo: durable storage of users (the source of truth). */
#ifndef HEX_PORT_USER_REPO_H
#define HEX_PORT_USER_REPO_H

#include "core/user.h"

struct user_repo_ops {
	/* HEX_CONFLICT (field "email") if the email exists case-insensitively. */
	enum hex_status (*insert)(void *self, const struct user *u, const char *password_hash);
	/* HEX_NOT_FOUND if no such user. */
	enum hex_status (*get)(void *self, const char *id, struct user *out);
	/* Looks up by normalised email; hash gets the stored password hash (size hash_len). */
	enum hex_status (*get_by_email)(void *self, const char *email, struct user *out, char *hash,
	                                size_t hash_len);
	/* Password hash of user id. */
	enum hex_status (*get_hash)(void *self, const char *id, char *hash, size_t hash_len);
	/*
	 * In one transaction: writes email, membership, role and updated_at of u; when
	 * password_hash is not NULL replaces the hash; when end_sessions is true also does
	 * what revoke_sessions does. token_version is never written from u (it only grows,
	 * atomically). out gets the user as stored. HEX_CONFLICT on a taken email,
	 * HEX_NOT_FOUND if gone; on failure nothing changed.
	 */
	enum hex_status (*update)(void *self, const struct user *u, const char *password_hash,
	                          bool end_sessions, struct user *out);
	/* Deletes the user and everything it owns (refresh tokens, ...) in one transaction. */
	enum hex_status (*remove)(void *self, const char *id);
	enum hex_status (*list)(void *self, const struct user_filter *f, struct user_page *out);
	/*
	 * Revokes every session of the user in one transaction: token_version += 1 and
	 * every refresh token revoked. out gets the updated user.
	 */
	enum hex_status (*revoke_sessions)(void *self, const char *id, int64_t now_us,
	                                   struct user *out);
};

struct user_repo {
	const struct user_repo_ops *ops;
	void *self;
};

#endif

/* refresh_repo: the server-side record of refresh tokens, for rotation and reuse detection. */
#ifndef HEX_PORT_REFRESH_REPO_H
#define HEX_PORT_REFRESH_REPO_H

#include "core/user.h"

struct refresh_record {
	char jti[HEX_ID_LEN + 1];
	char user_id[HEX_ID_LEN + 1];
	char family_id[HEX_ID_LEN + 1]; /* every token rotated from one login */
	int64_t expires_at_us;
};

struct refresh_repo_ops {
	enum hex_status (*insert)(void *self, const struct refresh_record *r);
	/*
	 * In one transaction: marks old_jti used and inserts next (same family and user).
	 * HEX_OK if old_jti was live (unused, unrevoked, unexpired at now_us); out gets the
	 * old record. HEX_CONFLICT if old_jti was already used or revoked: that is reuse;
	 * out gets the old record and nothing is inserted. HEX_NOT_FOUND if unknown or
	 * expired.
	 */
	enum hex_status (*rotate)(void *self, const char *old_jti, int64_t now_us,
	                          struct refresh_record *next, struct refresh_record *out);
	/* Revokes every token of the family (on reuse). */
	enum hex_status (*revoke_family)(void *self, const char *family_id);
};

struct refresh_repo {
	const struct refresh_repo_ops *ops;
	void *self;
};

#endif

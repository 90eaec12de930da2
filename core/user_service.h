/* user_service: the user use cases (create, read, update, delete, list). */
#ifndef HEX_USER_SERVICE_H
#define HEX_USER_SERVICE_H

#include "core/ports/clock.h"
#include "core/ports/id_source.h"
#include "core/ports/password_hasher.h"
#include "core/ports/user_cache.h"
#include "core/ports/user_repo.h"

struct user_service {
	struct user_repo repo;
	struct user_cache cache;
	struct password_hasher hasher;
	struct clock clock;
	struct id_source ids;
};

/* Partial update: NULL members are left as they are. */
struct user_changes {
	const char *email;
	const char *password;
};

enum hex_status user_service_create(struct user_service *s, const char *email, const char *password,
                                    struct user *out, struct hex_err *err) HEX_MUST_CHECK;
/* Cache-aside read: cache, then repository (and fills the cache). */
enum hex_status user_service_read(struct user_service *s, const char *id, struct user *out,
                                  struct hex_err *err) HEX_MUST_CHECK;
/* The second half of a read: the repository, then fills the cache. For a caller that
 * has just missed the cache by other means. */
enum hex_status user_service_load(struct user_service *s, const char *id, struct user *out,
                                  struct hex_err *err) HEX_MUST_CHECK;
/*
 * Updates the user id. A password change revokes every session of the user.
 * The cache entry is deleted after the write commits.
 */
enum hex_status user_service_update(struct user_service *s, const char *id,
                                    const struct user_changes *ch, struct user *out,
                                    struct hex_err *err) HEX_MUST_CHECK;
enum hex_status user_service_delete(struct user_service *s, const char *id,
                                    struct hex_err *err) HEX_MUST_CHECK;
enum hex_status user_service_list(struct user_service *s, const struct user_filter *f,
                                  struct user_page *out, struct hex_err *err) HEX_MUST_CHECK;
enum hex_status user_service_set_membership(struct user_service *s, const char *id,
                                            enum membership m, struct user *out,
                                            struct hex_err *err) HEX_MUST_CHECK;
/* Ends every session of the user: access tokens (token_version) and refresh tokens. */
enum hex_status user_service_revoke_sessions(struct user_service *s, const char *id,
                                             struct hex_err *err) HEX_MUST_CHECK;
enum hex_status user_service_set_role(struct user_service *s, const char *id, enum user_role r,
                                      struct user *out, struct hex_err *err) HEX_MUST_CHECK;

#endif

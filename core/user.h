/* user.h: the user domain type and its rules. */
#ifndef HEX_USER_H
#define HEX_USER_H

#include "core/hex.h"

#define HEX_ID_LEN       36 /* canonical UUID text, without NUL */
#define HEX_EMAIL_MAX    254
#define HEX_PASSWORD_MIN 8
#define HEX_PASSWORD_MAX 1024
#define HEX_HASH_MAX     256 /* stored password hash text incl. NUL */

enum membership { MEMBERSHIP_FREE = 0, MEMBERSHIP_MEMBER };
enum user_role { ROLE_USER = 0, ROLE_ADMIN };

struct user {
	char id[HEX_ID_LEN + 1];
	char email[HEX_EMAIL_MAX + 1]; /* always lower case */
	enum membership membership;
	enum user_role role;
	int64_t token_version; /* bumped to revoke every access token of the user */
	int64_t created_at_us; /* microseconds since the Unix epoch, UTC */
	int64_t updated_at_us;
};

/* Keyset position in the list order (created_at, id), both ascending. */
struct user_cursor {
	int64_t created_at_us;
	char id[HEX_ID_LEN + 1];
};

#define HEX_LIST_MAX 100

struct user_filter {
	const char *email;               /* exact (normalised) email, or NULL */
	int membership;                  /* -1 for any, else enum membership */
	int limit;                       /* 1..HEX_LIST_MAX */
	const struct user_cursor *after; /* NULL for the first page */
	/*
	 * Emails that contain this text, ignoring case (an operator's search), or NULL; not
	 * with email. Taken literally: '%' and '_' are no wildcards.
	 */
	const char *email_contains;
	bool newest_first; /* (created_at, id) descending; the cursor then walks backwards */
};

struct user_page {
	struct user items[HEX_LIST_MAX];
	int count;
	bool has_more; /* the next cursor is the last item's position */
};

/* Lower-cases and validates an email into out (size HEX_EMAIL_MAX + 1). */
enum hex_status user_email_normalize(const char *in, char *out, struct hex_err *err) HEX_MUST_CHECK;
enum hex_status user_password_check(const char *password, struct hex_err *err) HEX_MUST_CHECK;
bool user_id_valid(const char *id);

const char *membership_name(enum membership m);
bool membership_parse(const char *s, enum membership *out);
const char *user_role_name(enum user_role r);
bool user_role_parse(const char *s, enum user_role *out);

#endif

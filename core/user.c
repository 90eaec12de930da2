/* user.c: the rules of the user domain: email, password, membership, role. */
#include "core/user.h"

#include <ctype.h>
#include <string.h>

static const char *const membership_names[] = {
    [MEMBERSHIP_FREE] = "free",
    [MEMBERSHIP_MEMBER] = "member",
};

static const char *const role_names[] = {
    [ROLE_USER] = "user",
    [ROLE_ADMIN] = "admin",
};

static bool name_parse(const char *const *names, size_t n, const char *s, int *out)
{
	for (size_t i = 0; s != NULL && i < n; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (int)i;
			return true;
		}
	}
	return false;
}

const char *membership_name(enum membership m)
{
	return m == MEMBERSHIP_MEMBER ? membership_names[MEMBERSHIP_MEMBER]
	                              : membership_names[MEMBERSHIP_FREE];
}

bool membership_parse(const char *s, enum membership *out)
{
	int v;
	if (!name_parse(membership_names, 2, s, &v))
		return false;
	*out = (enum membership)v;
	return true;
}

const char *user_role_name(enum user_role r)
{
	return r == ROLE_ADMIN ? role_names[ROLE_ADMIN] : role_names[ROLE_USER];
}

bool user_role_parse(const char *s, enum user_role *out)
{
	int v;
	if (!name_parse(role_names, 2, s, &v))
		return false;
	*out = (enum user_role)v;
	return true;
}

/*
 * A pragmatic subset of RFC 5321 addresses: printable ASCII local part without spaces,
 * quotes or angle brackets, one '@', a domain of dot-separated labels with at least one
 * dot. Internationalised addresses are refused rather than half-supported.
 */
static bool email_char_ok(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("\"(),:;<>[\\]", c) == NULL;
}

enum hex_status user_email_normalize(const char *in, char *out, struct hex_err *err)
{
	if (in == NULL || *in == '\0')
		return hex_fail(err, HEX_INVALID, "email", "email is required");
	size_t len = strlen(in);
	if (len > HEX_EMAIL_MAX)
		return hex_fail(err, HEX_INVALID, "email", "email is longer than %d characters",
		                HEX_EMAIL_MAX);
	const char *at = strchr(in, '@');
	if (at == NULL || at == in || strchr(at + 1, '@') != NULL || at - in > 64 || in[0] == '.' ||
	    at[-1] == '.' || memmem(in, (size_t)(at - in), "..", 2) != NULL)
		return hex_fail(err, HEX_INVALID, "email", "email is not a valid address");
	const char *domain = at + 1;
	size_t dlen = strlen(domain);
	if (dlen < 3 || strchr(domain, '.') == NULL || domain[0] == '.' ||
	    domain[dlen - 1] == '.' || strstr(domain, "..") != NULL || domain[0] == '-')
		return hex_fail(err, HEX_INVALID, "email", "email is not a valid address");
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		bool ok = in + i < at ? email_char_ok(c)
		                      : in + i == at || isalnum(c) || c == '-' || c == '.';
		if (!ok)
			return hex_fail(err, HEX_INVALID, "email", "email is not a valid address");
		out[i] = (char)tolower(c);
	}
	out[len] = '\0';
	return HEX_OK;
}

enum hex_status user_password_check(const char *password, struct hex_err *err)
{
	if (password == NULL)
		return hex_fail(err, HEX_INVALID, "password", "password is required");
	size_t len = strlen(password);
	if (len < HEX_PASSWORD_MIN)
		return hex_fail(err, HEX_INVALID, "password",
		                "password must be at least %d characters", HEX_PASSWORD_MIN);
	if (len > HEX_PASSWORD_MAX)
		return hex_fail(err, HEX_INVALID, "password",
		                "password must be at most %d characters", HEX_PASSWORD_MAX);
	return HEX_OK;
}

bool user_id_valid(const char *id)
{
	if (id == NULL || strlen(id) != HEX_ID_LEN)
		return false;
	for (int i = 0; i < HEX_ID_LEN; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		char c = id[i];
		if (dash ? c != '-' : !isxdigit((unsigned char)c))
			return false;
	}
	return true;
}

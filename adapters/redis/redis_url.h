/*
 * redis_url: parses `redis://[[user]:password@]host[:port][/db]` (HEX_REDIS_URL).
 * User and password may be percent-encoded; an IPv6 host goes in brackets.
 */
#ifndef HEX_REDIS_URL_H
#define HEX_REDIS_URL_H

#include "core/hex.h"

#define REDIS_URL_HOST_MAX     255
#define REDIS_URL_USER_MAX     255
#define REDIS_URL_PASSWORD_MAX 1023
#define REDIS_URL_DB_MAX       1000000
#define REDIS_URL_DEFAULT_PORT 6379

struct redis_url {
	char host[REDIS_URL_HOST_MAX + 1];
	int port;
	int db;
	char user[REDIS_URL_USER_MAX + 1]; /* "" for the default user */
	char password[REDIS_URL_PASSWORD_MAX + 1];
	bool has_password; /* AUTH is sent only when true */
};

/*
 * Fills out from s. HEX_INVALID (field "redis_url") on a malformed URL; the message
 * never repeats the URL, which may hold a password.
 */
enum hex_status redis_url_parse(const char *s, struct redis_url *out,
                                struct hex_err *err) HEX_MUST_CHECK;

/* Writes u as a URL fit for logs: the password is replaced by "***". */
void redis_url_format_safe(const struct redis_url *u, char *buf, size_t n);

#endif

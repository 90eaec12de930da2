/* redis_url.c: the HEX_REDIS_URL parser. */
#include "adapters/redis/redis_url.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define FIELD "redis_url"

static int hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Percent-decodes s[0..len) into out (size n); false on a bad escape, a NUL or overflow. */
static bool percent_decode(const char *s, size_t len, char *out, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)s[i];
		if (c == '%') {
			if (i + 2 >= len)
				return false;
			int hi = hex_digit((unsigned char)s[i + 1]);
			int lo = hex_digit((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				return false;
			c = hi * 16 + lo;
			i += 2;
		}
		if (c == '\0' || o + 1 >= n)
			return false;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return true;
}

/* Reads one or more decimal digits at *pp, at most max; advances *pp past them. */
static bool parse_bounded(const char **pp, long max, long *out)
{
	const char *p = *pp;
	long v = 0;
	if (!isdigit((unsigned char)*p))
		return false;
	for (; isdigit((unsigned char)*p); p++) {
		v = v * 10 + (*p - '0');
		if (v > max)
			return false;
	}
	*pp = p;
	*out = v;
	return true;
}

static bool host_char_ok(int c, bool bracketed)
{
	if (bracketed)
		return isxdigit(c) || c == ':' || c == '.';
	return isalnum(c) || c == '.' || c == '-' || c == '_';
}

/* Copies the host at *pp into out and advances *pp past it (and past a closing ']'). */
static bool parse_host(const char **pp, struct redis_url *out)
{
	const char *p = *pp;
	bool bracketed = *p == '[';
	const char *start = bracketed ? p + 1 : p;
	const char *end = bracketed ? strchr(start, ']') : start + strcspn(start, ":/");
	if (end == NULL || end == start || (size_t)(end - start) > REDIS_URL_HOST_MAX)
		return false;
	for (const char *c = start; c < end; c++)
		if (!host_char_ok((unsigned char)*c, bracketed))
			return false;
	memcpy(out->host, start, (size_t)(end - start));
	out->host[end - start] = '\0';
	*pp = bracketed ? end + 1 : end;
	return true;
}

enum hex_status redis_url_parse(const char *s, struct redis_url *out, struct hex_err *err)
{
	static const char scheme[] = "redis://";
	memset(out, 0, sizeof *out);
	out->port = REDIS_URL_DEFAULT_PORT;
	if (s == NULL || strncasecmp(s, scheme, sizeof scheme - 1) != 0)
		return hex_fail(err, HEX_INVALID, FIELD, "redis_url must start with redis://");
	const char *p = s + sizeof scheme - 1;

	/* The last '@': a password may hold an unencoded '@', host and db never do. */
	const char *at = strrchr(p, '@');
	if (at != NULL) {
		const char *colon = memchr(p, ':', (size_t)(at - p));
		if (colon == NULL)
			return hex_fail(err, HEX_INVALID, FIELD,
			                "redis_url: credentials must be [user]:password@");
		if (!percent_decode(p, (size_t)(colon - p), out->user, sizeof out->user))
			return hex_fail(err, HEX_INVALID, FIELD, "redis_url: bad user name");
		if (!percent_decode(colon + 1, (size_t)(at - colon - 1), out->password,
		                    sizeof out->password))
			return hex_fail(err, HEX_INVALID, FIELD, "redis_url: bad password");
		out->has_password = out->password[0] != '\0';
		if (!out->has_password && out->user[0] != '\0')
			return hex_fail(err, HEX_INVALID, FIELD,
			                "redis_url: a user name needs a password");
		p = at + 1;
	}

	if (!parse_host(&p, out))
		return hex_fail(err, HEX_INVALID, FIELD, "redis_url: missing or bad host");
	long v;
	if (*p == ':') {
		p++;
		if (!parse_bounded(&p, 65535, &v) || v == 0)
			return hex_fail(err, HEX_INVALID, FIELD,
			                "redis_url: port must be 1..65535");
		out->port = (int)v;
	}
	if (*p == '/') {
		p++;
		if (*p != '\0') {
			if (!parse_bounded(&p, REDIS_URL_DB_MAX, &v))
				return hex_fail(err, HEX_INVALID, FIELD,
				                "redis_url: database must be a number 0..%d",
				                REDIS_URL_DB_MAX);
			out->db = (int)v;
		}
	}
	if (*p != '\0')
		return hex_fail(err, HEX_INVALID, FIELD,
		                "redis_url: unexpected text after host, port and database");
	return HEX_OK;
}

void redis_url_format_safe(const struct redis_url *u, char *buf, size_t n)
{
	bool ipv6 = strchr(u->host, ':') != NULL;
	snprintf(buf, n, "redis://%s%s%s%s%s%s:%d/%d", u->user, u->has_password ? ":***" : "",
	         u->has_password ? "@" : "", ipv6 ? "[" : "", u->host, ipv6 ? "]" : "", u->port,
	         u->db);
}

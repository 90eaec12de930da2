/* hex.c: the result convention's helpers. */
#include "core/hex.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const status_names[HEX_STATUS_COUNT] = {
    [HEX_OK] = "ok",
    [HEX_INVALID] = "invalid_request",
    [HEX_UNAUTHENTICATED] = "unauthenticated",
    [HEX_FORBIDDEN] = "forbidden",
    [HEX_NOT_FOUND] = "not_found",
    [HEX_CONFLICT] = "conflict",
    [HEX_RATE_LIMITED] = "rate_limited",
    [HEX_UNAVAILABLE] = "unavailable",
    [HEX_INTERNAL] = "internal",
};

const char *hex_status_name(enum hex_status st)
{
	if ((unsigned)st >= HEX_STATUS_COUNT)
		return "internal";
	return status_names[st];
}

enum hex_status hex_fail(struct hex_err *err, enum hex_status st, const char *field,
                         const char *fmt, ...)
{
	if (err == NULL)
		return st;
	err->field = field;
	err->code = NULL;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	va_end(ap);
	return st;
}

enum hex_status hex_store_failed(enum hex_status st, const char *what, struct hex_err *err)
{
	switch (st) {
	case HEX_NOT_FOUND:
		return hex_fail(err, st, NULL, "%s not found", what);
	case HEX_UNAVAILABLE:
		return hex_fail(err, st, NULL, "the database is unavailable");
	default:
		return hex_fail(err, HEX_INTERNAL, NULL, "internal error");
	}
}

bool hex_strlcpy(char *dst, const char *src, size_t n)
{
	size_t len = strlen(src);
	if (len >= n) {
		memcpy(dst, src, n - 1);
		dst[n - 1] = '\0';
		return false;
	}
	memcpy(dst, src, len + 1);
	return true;
}

bool hex_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char diff = alen != blen;
	size_t n = alen < blen ? alen : blen;
	for (size_t i = 0; i < n; i++)
		diff |= x[i] ^ y[i];
	return diff == 0;
}

/* hex.h: the one result convention of the core, shared by every service and port. */
#ifndef HEX_HEX_H
#define HEX_HEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HEX_MUST_CHECK __attribute__((warn_unused_result))

enum hex_status {
	HEX_OK = 0,
	HEX_INVALID,         /* bad input; hex_err.field names it */
	HEX_UNAUTHENTICATED, /* no or bad credentials */
	HEX_FORBIDDEN,       /* authenticated, not allowed */
	HEX_NOT_FOUND,
	HEX_CONFLICT,     /* uniqueness or state conflict */
	HEX_RATE_LIMITED, /* hex_err.retry_after_s says when to retry */
	HEX_UNAVAILABLE,  /* a dependency is down */
	HEX_INTERNAL,     /* a bug or an unexpected failure; never shown in detail */
	HEX_STATUS_COUNT
};

/*
 * Error detail filled by a service on failure. Caller-owned, fixed size, so that no
 * error path allocates. `field` points to a static string or is NULL.
 */
struct hex_err {
	const char *field;
	const char *code; /* optional snake_case override of the status' default code */
	char message[200];
	int retry_after_s;
};

/* Sets status detail and returns the status, for `return hex_fail(err, ...)`. */
enum hex_status hex_fail(struct hex_err *err, enum hex_status st, const char *field,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5)));

const char *hex_status_name(enum hex_status st);

/*
 * The safe answer to a failed storage call: HEX_NOT_FOUND becomes "<what> not found",
 * HEX_UNAVAILABLE "the database is unavailable", anything else HEX_INTERNAL with no
 * detail. For services to map repository results in one way.
 */
enum hex_status hex_store_failed(enum hex_status st, const char *what, struct hex_err *err);

/* Copies src into dst (size n, n > 0), always NUL-terminated; true if it fitted. */
bool hex_strlcpy(char *dst, const char *src, size_t n);

/* Constant-time comparison of two byte strings; false if lengths differ. */
bool hex_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

#endif

/* http_query: query-string parameters and opaque list cursors. */
#ifndef HEX_HTTP_QUERY_H
#define HEX_HTTP_QUERY_H

#include "adapters/http/http_exchange.h"
#include "core/message.h"
#include "core/user.h"

/* Decoded value of the first `name` parameter; owned by the caller; NULL if absent. */
char *http_query_get(const struct http_exchange *x, const char *name);

/* ?limit=: 1..HEX_LIST_MAX, default 20. HEX_INVALID naming "limit". */
enum hex_status http_query_limit(const struct http_exchange *x, int *limit,
                                 struct hex_err *err) HEX_MUST_CHECK;

/* Opaque cursor text of a user list position (out: at least 96 bytes). */
void http_cursor_encode_user(const struct user *last, char *out, size_t out_len);
/* HEX_INVALID naming "cursor" when the text is not a cursor we made. */
enum hex_status http_cursor_decode_user(const char *text, struct user_cursor *out,
                                        struct hex_err *err) HEX_MUST_CHECK;

/*
 * ?<name>= as an RFC 3339 date-time ("2026-11-29T18:00:00.123456Z", any offset; a space
 * where the offset's '+' was, as an unencoded '+' arrives, is read as '+'). Digits past
 * microseconds are truncated. *present is false (and *us untouched) when absent;
 * HEX_INVALID naming the parameter when malformed.
 */
enum hex_status http_query_time(const struct http_exchange *x, const char *name, bool *present,
                                int64_t *us, struct hex_err *err) HEX_MUST_CHECK;

/* Opaque cursor text of a message list position (out: at least 160 bytes). */
void http_cursor_encode_message(const struct message *last, uint64_t filter_tag, char *out,
                                size_t out_len);
/* HEX_INVALID naming "cursor" when the text is not a message cursor we made. */
enum hex_status http_cursor_decode_message(const char *text, struct message_cursor *out,
                                           struct hex_err *err) HEX_MUST_CHECK;

#endif

/* http_query: query-string parameters and opaque list cursors. */
#ifndef HEX_HTTP_QUERY_H
#define HEX_HTTP_QUERY_H

#include "adapters/http/http_exchange.h"
#include "core/user.h"

/* Decoded value of the first `name` parameter; owned by the caller; NULL if absent. */
char *http_query_get(const struct http_exchange *x, const char *name);

/* ?limit=: 1..HEX_LIST_MAX, default 20. HEX_INVALID naming "limit". */
enum hex_status http_query_limit(const struct http_exchange *x, int *limit,
                                 struct hex_err *err) HEX_MUST_CHECK;

/* ?<name>= as an RFC 3339 date-time: *present false when absent; HEX_INVALID names it. */
enum hex_status http_query_time(const struct http_exchange *x, const char *name, bool *present,
                                int64_t *us, struct hex_err *err) HEX_MUST_CHECK;

/*
 * Opaque keyset cursors: kind tells lists apart ('u' users, 'm' messages, 'p' payments,
 * 'e' ledger entries: created_at_us holds the last entry id, id the owner's user id),
 * tag is a fingerprint of the list's filters (0 when it has none) so that a cursor
 * replayed with other filters is refused. out: at least 160 bytes.
 */
void http_cursor_encode(char kind, int64_t created_at_us, const char *id, uint64_t tag, char *out,
                        size_t out_len);
/* HEX_INVALID naming "cursor" when text is not a cursor of this kind that we made. */
enum hex_status http_cursor_decode(char kind, const char *text, int64_t *created_at_us,
                                   char id[HEX_ID_LEN + 1], uint64_t *tag,
                                   struct hex_err *err) HEX_MUST_CHECK;

#endif

/* http_query.c: query parameters and cursors. */
#include "adapters/http/http_query.h"

#include "adapters/crypto/base64url.h"
#include "core/xmalloc.h"

#include <sys/queue.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *http_query_get(const struct http_exchange *x, const char *name)
{
	if (x->query == NULL)
		return NULL;
	struct evkeyvalq q;
	TAILQ_INIT(&q);
	char *v = NULL;
	if (evhttp_parse_query_str(x->query, &q) == 0) {
		const char *found = evhttp_find_header(&q, name);
		if (found != NULL)
			v = xstrdup(found);
	}
	evhttp_clear_headers(&q);
	return v;
}

enum hex_status http_query_limit(const struct http_exchange *x, int *limit, struct hex_err *err)
{
	char *v = http_query_get(x, "limit");
	*limit = 20;
	if (v == NULL)
		return HEX_OK;
	char *end;
	long n = strtol(v, &end, 10);
	bool ok = *v != '\0' && *end == '\0' && n >= 1 && n <= HEX_LIST_MAX;
	free(v);
	if (!ok)
		return hex_fail(err, HEX_INVALID, "limit", "limit must be an integer from 1 to %d",
		                HEX_LIST_MAX);
	*limit = (int)n;
	return HEX_OK;
}

/* The cursor is base64url("u1:<created_at_us>:<id>"): opaque to clients, versioned. */
void http_cursor_encode_user(const struct user *last, char *out, size_t out_len)
{
	char raw[80];
	int n = snprintf(raw, sizeof raw, "u1:%" PRId64 ":%s", last->created_at_us, last->id);
	if (!base64url_encode(raw, (size_t)n, out, out_len))
		abort(); /* out_len too small is a programming error */
}

enum hex_status http_cursor_decode_user(const char *text, struct user_cursor *out,
                                        struct hex_err *err)
{
	char raw[96];
	size_t n = 0;
	size_t len = strlen(text);
	if (len > 128 || !base64url_decode(text, len, raw, sizeof raw - 1, &n))
		goto bad;
	raw[n] = '\0';
	char id[HEX_ID_LEN + 2];
	int64_t ts;
	int used = 0;
	if (sscanf(raw, "u1:%" SCNd64 ":%37s%n", &ts, id, &used) != 2 || (size_t)used != n ||
	    !user_id_valid(id))
		goto bad;
	out->created_at_us = ts;
	memcpy(out->id, id, sizeof out->id);
	return HEX_OK;
bad:
	return hex_fail(err, HEX_INVALID, "cursor", "cursor is not valid");
}

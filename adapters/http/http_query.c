/* http_query.c: query parameters and cursors. */
#include "adapters/http/http_query.h"

#include "adapters/crypto/base64url.h"
#include "core/xmalloc.h"

#include <sys/queue.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <ctype.h>
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

/* n decimal digits at s, nothing else. */
static bool fixed_digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

static bool leap_year(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && leap_year(y) ? 29 : days[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* RFC 3339 section 5.6 date-time, as microseconds since the epoch. */
static bool rfc3339_parse(const char *s, int64_t *us)
{
	int year, mon, day, hour, min, sec, frac = 0, off_h = 0, off_m = 0;
	if (strlen(s) < 20 || !fixed_digits(s, 4, &year) || s[4] != '-' ||
	    !fixed_digits(s + 5, 2, &mon) || s[7] != '-' || !fixed_digits(s + 8, 2, &day) ||
	    (s[10] != 'T' && s[10] != 't') || !fixed_digits(s + 11, 2, &hour) || s[13] != ':' ||
	    !fixed_digits(s + 14, 2, &min) || s[16] != ':' || !fixed_digits(s + 17, 2, &sec))
		return false;
	const char *p = s + 19;
	if (*p == '.') {
		int n = 0;
		for (p++; isdigit((unsigned char)*p); p++, n++)
			if (n < 6)
				frac = frac * 10 + (*p - '0');
		if (n == 0)
			return false;
		for (; n < 6; n++)
			frac *= 10;
	}
	int sign = 0;
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
		sign = 1;
	} else if (*p == '+' || *p == ' ' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		if (!fixed_digits(p + 1, 2, &off_h) || p[3] != ':' ||
		    !fixed_digits(p + 4, 2, &off_m) || p[6] != '\0' || off_h > 23 || off_m > 59)
			return false;
	}
	if (sign == 0 || mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) ||
	    hour > 23 || min > 59 || sec > 59)
		return false;
	int64_t secs = days_from_civil(year, mon, day) * 86400 + hour * 3600 + min * 60 + sec -
	               sign * (off_h * 3600 + off_m * 60);
	*us = secs * 1000000 + frac;
	return true;
}

enum hex_status http_query_time(const struct http_exchange *x, const char *name, bool *present,
                                int64_t *us, struct hex_err *err)
{
	char *v = http_query_get(x, name);
	*present = false;
	if (v == NULL)
		return HEX_OK;
	int64_t t;
	bool ok = rfc3339_parse(v, &t);
	free(v);
	if (!ok)
		return hex_fail(err, HEX_INVALID, name,
		                "%s must be an RFC 3339 date-time such as 2026-01-31T12:00:00Z",
		                name);
	*present = true;
	*us = t;
	return HEX_OK;
}

/*
 * A cursor is base64url("<kind>1:<created_at_us>:<id>:<filter tag>"): opaque to clients,
 * versioned, of one kind of list, and tied to the filters of the listing that made it.
 */
void http_cursor_encode(char kind, int64_t created_at_us, const char *id, uint64_t tag, char *out,
                        size_t out_len)
{
	char raw[96];
	int n = snprintf(raw, sizeof raw, "%c1:%" PRId64 ":%s:%016" PRIx64, kind, created_at_us, id,
	                 tag);
	if (!base64url_encode(raw, (size_t)n, out, out_len))
		abort(); /* out_len too small is a programming error */
}

enum hex_status http_cursor_decode(char kind, const char *text, int64_t *created_at_us,
                                   char id[HEX_ID_LEN + 1], uint64_t *tag, struct hex_err *err)
{
	char raw[112];
	size_t n = 0;
	size_t len = strlen(text);
	if (len > 144 || !base64url_decode(text, len, raw, sizeof raw - 1, &n))
		goto bad;
	raw[n] = '\0';
	char got[HEX_ID_LEN + 2], hex[18];
	char k = 0;
	int64_t ts;
	int used = 0;
	if (sscanf(raw, "%c1:%" SCNd64 ":%36[0-9a-f-]:%17[0-9a-f]%n", &k, &ts, got, hex, &used) !=
	        4 ||
	    k != kind || (size_t)used != n || !user_id_valid(got) || strlen(hex) != 16)
		goto bad;
	uint64_t t = strtoull(hex, NULL, 16);
	/* One text per cursor: sscanf also takes "+1", "007" and numbers past int64 (which it
	 * clamps), so what we would have written must be exactly what came. */
	char again[96];
	int m = snprintf(again, sizeof again, "%c1:%" PRId64 ":%s:%016" PRIx64, kind, ts, got, t);
	if (m < 0 || (size_t)m != n || memcmp(again, raw, n) != 0)
		goto bad;
	*created_at_us = ts;
	memcpy(id, got, HEX_ID_LEN + 1);
	*tag = t;
	return HEX_OK;
bad:
	return hex_fail(err, HEX_INVALID, "cursor", "cursor is not valid");
}

/* admin_cursor.c: opaque, kind- and filter-bound list cursors. */
#include "adapters/admin/admin_cursor.h"

#include "adapters/crypto/base64url.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RAW_MAX 96

void admin_cursor_encode(char kind, int64_t position, const char *id, uint64_t tag,
                         char out[ADMIN_CURSOR_MAX])
{
	char raw[RAW_MAX];
	char lower[HEX_ID_LEN + 1] = "";
	for (size_t i = 0; id != NULL && id[i] != '\0' && i < HEX_ID_LEN; i++)
		lower[i] = (char)tolower((unsigned char)id[i]);
	int n =
	    snprintf(raw, sizeof raw, "%c1:%" PRId64 ":%s:%016" PRIx64, kind, position, lower, tag);
	if (n < 0 || (size_t)n >= sizeof raw ||
	    !base64url_encode(raw, (size_t)n, out, ADMIN_CURSOR_MAX))
		abort(); /* the sizes above hold every value: a programming error */
}

/* Reads "<digits>" (a leading '-' allowed) up to stop; *p moves past stop. */
static bool read_int64(const char **p, char stop, int64_t *out)
{
	const char *s = *p;
	const char *end = strchr(s, stop);
	if (end == NULL || end == s || end - s > 20)
		return false;
	for (const char *q = s[0] == '-' ? s + 1 : s; q < end; q++)
		if (!isdigit((unsigned char)*q))
			return false;
	char buf[24];
	memcpy(buf, s, (size_t)(end - s));
	buf[end - s] = '\0';
	char *e = NULL;
	long long v = strtoll(buf, &e, 10);
	if (*e != '\0')
		return false;
	*out = v;
	*p = end + 1;
	return true;
}

static bool parse(char kind, const char *raw, struct admin_cursor *out)
{
	if (raw[0] != kind || raw[1] != '1' || raw[2] != ':')
		return false;
	const char *p = raw + 3;
	if (!read_int64(&p, ':', &out->position))
		return false;
	const char *colon = strchr(p, ':');
	size_t idlen = colon != NULL ? (size_t)(colon - p) : 0;
	if (colon == NULL || (idlen != 0 && idlen != HEX_ID_LEN))
		return false;
	memcpy(out->id, p, idlen);
	out->id[idlen] = '\0';
	if (idlen != 0 && !user_id_valid(out->id))
		return false;
	const char *hex = colon + 1;
	if (strlen(hex) != 16)
		return false;
	for (int i = 0; i < 16; i++)
		if (!isxdigit((unsigned char)hex[i]) || isupper((unsigned char)hex[i]))
			return false;
	out->tag = strtoull(hex, NULL, 16);
	return true;
}

bool admin_cursor_decode_or_fail(struct admin_call *c, char kind, const char *text,
                                 const uint64_t *want_tag, struct admin_cursor *out)
{
	char raw[RAW_MAX];
	size_t n = 0;
	size_t len = strlen(text);
	memset(out, 0, sizeof *out);
	if (len < ADMIN_CURSOR_MAX && base64url_decode(text, len, raw, sizeof raw - 1, &n)) {
		raw[n] = '\0';
		if (strlen(raw) == n && parse(kind, raw, out)) {
			if (want_tag == NULL || *want_tag == out->tag)
				return true;
			admin_fail_code(c, "invalid_argument", "cursor",
			                "cursor belongs to a listing with other filters");
			return false;
		}
	}
	memset(out, 0, sizeof *out);
	admin_fail_code(c, "invalid_argument", "cursor",
	                "cursor is not valid: give the next_cursor of the previous page");
	return false;
}

/* FNV-1a 64 over the values, each ended by a byte no value holds as text. */
uint64_t admin_cursor_tag(int n, const char *const *values)
{
	uint64_t h = UINT64_C(14695981039346656037);
	for (int i = 0; i < n; i++) {
		const char *v = values[i] != NULL ? values[i] : "";
		for (; *v != '\0'; v++) {
			h ^= (unsigned char)*v;
			h *= UINT64_C(1099511628211);
		}
		h ^= values[i] != NULL ? 0x1f : 0x1e; /* absent and "" differ */
		h *= UINT64_C(1099511628211);
	}
	return h;
}

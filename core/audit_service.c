/* audit_service.c: the operators' audit trail over the audit_repo port. */
#include "core/audit_service.h"

#include <string.h>

bool audit_operator_valid(const char *name)
{
	size_t n = name != NULL ? strlen(name) : 0;
	if (n == 0 || n > AUDIT_OPERATOR_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '@' || c == '-';
		if (!ok)
			return false;
	}
	return true;
}

/* The length of the well-formed UTF-8 character at p (RFC 3629: no overlong forms, no
 * surrogates), or 0 if there is none. A NUL is never a continuation byte, so the checks
 * stop at the end of the string. */
static size_t utf8_char(const unsigned char *p)
{
	static const struct {
		unsigned char lo, hi;   /* lead byte range */
		unsigned char lo2, hi2; /* its first continuation byte's range */
		size_t len;
	} forms[] = {
	    {0xc2, 0xdf, 0x80, 0xbf, 2}, {0xe0, 0xe0, 0xa0, 0xbf, 3}, {0xe1, 0xec, 0x80, 0xbf, 3},
	    {0xed, 0xed, 0x80, 0x9f, 3}, {0xee, 0xef, 0x80, 0xbf, 3}, {0xf0, 0xf0, 0x90, 0xbf, 4},
	    {0xf1, 0xf3, 0x80, 0xbf, 4}, {0xf4, 0xf4, 0x80, 0x8f, 4},
	};
	if (p[0] < 0x80)
		return 1;
	for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
		if (p[0] < forms[f].lo || p[0] > forms[f].hi)
			continue;
		if (p[1] < forms[f].lo2 || p[1] > forms[f].hi2)
			return 0;
		for (size_t i = 2; i < forms[f].len; i++)
			if (p[i] < 0x80 || p[i] > 0xbf)
				return 0;
		return forms[f].len;
	}
	return 0;
}

/* The next piece of readable text at *p: its bytes (or "?" for a control character or a
 * byte that is not UTF-8) and its length; advances *p past it. */
static size_t next_piece(const unsigned char **p, const unsigned char **piece)
{
	size_t len = utf8_char(*p);
	bool control = **p < 0x20 || **p == 0x7f;
	*piece = len == 0 || control ? (const unsigned char *)"?" : *p;
	*p += len == 0 ? 1 : len;
	return len == 0 || control ? 1 : len;
}

/* Copies src as readable text into dst (size n >= 4), cut with "..." if it is too long. */
static void readable_copy(char *dst, size_t n, const char *src)
{
	const unsigned char *p = (const unsigned char *)(src != NULL ? src : ""), *piece;
	size_t total = 0;
	for (const unsigned char *q = p; *q != '\0';)
		total += next_piece(&q, &piece);
	size_t room = total < n ? n - 1 : n - 4, used = 0;
	while (*p != '\0') {
		size_t len = next_piece(&p, &piece);
		if (used + len > room)
			break;
		memcpy(dst + used, piece, len);
		used += len;
	}
	if (total >= n) {
		memcpy(dst + used, "...", 3);
		used += 3;
	}
	dst[used] = '\0';
}

static bool verb_valid(const char *verb)
{
	size_t n = verb != NULL ? strlen(verb) : 0;
	if (n == 0 || n > AUDIT_VERB_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (verb[i] < 0x20 || verb[i] > 0x7e)
			return false;
	return true;
}

enum hex_status audit_service_record(struct audit_service *s, const char *operator_name,
                                     const char *verb, const char *args, bool ok, const char *error,
                                     struct audit_entry *out, struct hex_err *err)
{
	if (!audit_operator_valid(operator_name))
		return hex_fail(err, HEX_INVALID, "operator",
		                "operator must be 1 to %d of A-Z a-z 0-9 . _ @ -",
		                AUDIT_OPERATOR_MAX);
	if (!verb_valid(verb))
		return hex_fail(err, HEX_INVALID, "verb",
		                "verb must be 1 to %d printable characters", AUDIT_VERB_MAX);
	struct audit_entry e;
	memset(&e, 0, sizeof e);
	e.at_us = s->clock.ops->now_us(s->clock.self);
	hex_strlcpy(e.operator_name, operator_name, sizeof e.operator_name);
	hex_strlcpy(e.verb, verb, sizeof e.verb);
	readable_copy(e.args, sizeof e.args, args);
	e.ok = ok;
	/* A failure always says something, so that the row never reads as a silent one. */
	readable_copy(e.error, sizeof e.error,
	              ok ? "" : (error != NULL && error[0] != '\0' ? error : "failed"));
	enum hex_status st = s->repo.ops->append(s->repo.self, &e, &e.id);
	if (st != HEX_OK)
		return hex_store_failed(st, "audit row", err);
	if (out != NULL)
		*out = e;
	return HEX_OK;
}

enum hex_status audit_service_list(struct audit_service *s, int limit, int64_t before_id,
                                   struct audit_page *out, struct hex_err *err)
{
	out->count = 0;
	out->has_more = false;
	if (limit < 1 || limit > HEX_LIST_MAX)
		return hex_fail(err, HEX_INVALID, "limit", "limit must be 1 to %d", HEX_LIST_MAX);
	if (before_id < 0)
		return hex_fail(err, HEX_INVALID, "cursor", "cursor is not valid");
	enum hex_status st = s->repo.ops->list(s->repo.self, limit, before_id, out);
	return st == HEX_OK ? HEX_OK : hex_store_failed(st, "audit row", err);
}

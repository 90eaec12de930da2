/* message.c: the rules of the message domain: body length in characters, ids, cursors. */
#include "core/message.h"

#include <stdlib.h>
#include <string.h>

/*
 * Strict RFC 3629 decoding: the byte ranges of its table 3-7, so that overlong forms,
 * UTF-16 surrogates and code points above U+10FFFF are refused, as PostgreSQL does.
 */
static int utf8_sequence_length(const unsigned char *p)
{
	unsigned char c = p[0];
	if (c < 0x80)
		return 1;
	int n;
	unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return -1;
	}
	if (p[1] < lo || p[1] > hi)
		return -1;
	for (int i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return -1;
	return n;
}

long message_utf8_length(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	long count = 0;
	while (*p != '\0') {
		int n = utf8_sequence_length(p);
		if (n < 0)
			return -1;
		p += n;
		count++;
	}
	return count;
}

static bool only_white_space(const char *s)
{
	return s[strspn(s, " \t\n\r\f\v")] == '\0';
}

enum hex_status message_body_check(const char *body, struct hex_err *err)
{
	if (body == NULL)
		return hex_fail(err, HEX_INVALID, "body", "body is required");
	/* Longer than the longest valid body in bytes: no need to decode it all. */
	if (strlen(body) > HEX_MESSAGE_BODY_BYTES_MAX)
		return hex_fail(err, HEX_INVALID, "body", "body must be at most %d characters",
		                HEX_MESSAGE_BODY_MAX);
	long n = message_utf8_length(body);
	if (n < 0)
		return hex_fail(err, HEX_INVALID, "body", "body must be valid UTF-8");
	if (n == 0 || only_white_space(body))
		return hex_fail(err, HEX_INVALID, "body", "body must not be empty");
	if (n > HEX_MESSAGE_BODY_MAX)
		return hex_fail(err, HEX_INVALID, "body", "body must be at most %d characters",
		                HEX_MESSAGE_BODY_MAX);
	return HEX_OK;
}

bool message_id_valid(const char *id)
{
	return user_id_valid(id);
}

/* FNV-1a: a fingerprint, not a secret; a forged cursor only moves within what f allows. */
static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* Little-endian whatever the host, so that every hexd of a cluster agrees. */
static uint64_t fnv1a_u64(uint64_t h, uint64_t v)
{
	unsigned char b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	return fnv1a(h, b, sizeof b);
}

/* Presence first, so that an absent filter and an empty one never look the same. */
static uint64_t tag_text(uint64_t h, const char *s)
{
	h = fnv1a_u64(h, s != NULL);
	if (s == NULL)
		return h;
	size_t n = strlen(s);
	h = fnv1a_u64(h, n);
	return fnv1a(h, s, n);
}

static uint64_t tag_time(uint64_t h, bool present, int64_t us)
{
	h = fnv1a_u64(h, present);
	return present ? fnv1a_u64(h, (uint64_t)us) : h;
}

uint64_t message_filter_tag(const struct message_filter *f)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	h = fnv1a(h, "m1", 2);
	h = tag_text(h, f->user_id);
	h = tag_text(h, f->query);
	h = tag_time(h, f->has_since, f->since_us);
	h = tag_time(h, f->has_until, f->until_us);
	return h;
}

void message_clear(struct message *m)
{
	if (m == NULL)
		return;
	free(m->body);
	m->body = NULL;
}

void message_page_clear(struct message_page *p)
{
	if (p == NULL)
		return;
	for (int i = 0; i < p->count; i++)
		message_clear(&p->items[i]);
	p->count = 0;
	p->has_more = false;
}

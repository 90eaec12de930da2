/* http_trace.c: traceparent parsing and generation. */
#include "adapters/http/http_trace.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static bool lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static bool all_zero(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != '0')
			return false;
	return true;
}

/* Ids must be unique, not secret: a per-thread xorshift seeded from getrandom. */
static uint64_t next_random(void)
{
	static _Thread_local uint64_t state;
	if (state == 0 && getrandom(&state, sizeof state, 0) != sizeof state)
		state = (uint64_t)time(NULL) | 1;
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return state;
}

void http_trace_random_hex(char *out, int nwords)
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < nwords; i++) {
		uint64_t v = next_random();
		for (int k = 15; k >= 0; k--, v >>= 4)
			out[16 * i + k] = digits[v & 0xf];
	}
	out[16 * nwords] = '\0';
}

bool http_trace_parse(const char *h, struct http_trace *t)
{
	/* version "-" trace-id "-" parent-id "-" flags, 2+1+32+1+16+1+2 = 55 */
	if (h == NULL || strlen(h) < HTTP_TRACEPARENT_LEN)
		return false;
	if (!lower_hex(h, 2) || strncmp(h, "ff", 2) == 0 || h[2] != '-' || h[35] != '-' ||
	    h[52] != '-' || !lower_hex(h + 3, 32) || !lower_hex(h + 36, 16) ||
	    !lower_hex(h + 53, 2) || all_zero(h + 3, 32) || all_zero(h + 36, 16))
		return false;
	/* Version 00 is exactly 55 characters; later versions may append fields. */
	if (strncmp(h, "00", 2) == 0 ? h[55] != '\0' : (h[55] != '\0' && h[55] != '-'))
		return false;
	memcpy(t->trace_id, h + 3, 32);
	t->trace_id[32] = '\0';
	memcpy(t->parent_id, h + 36, 16);
	t->parent_id[16] = '\0';
	unsigned flags = 0;
	sscanf(h + 53, "%2x", &flags);
	t->flags = flags & 0x01; /* only "sampled" is defined */
	return true;
}

void http_trace_begin(struct http_trace *t, const char *header)
{
	if (!http_trace_parse(header, t)) {
		http_trace_random_hex(t->trace_id, 2);
		t->parent_id[0] = '\0';
		t->flags = 0;
	}
	http_trace_random_hex(t->span_id, 1);
}

void http_trace_format(const struct http_trace *t, char out[HTTP_TRACEPARENT_LEN + 1])
{
	snprintf(out, HTTP_TRACEPARENT_LEN + 1, "00-%s-%s-%02x", t->trace_id, t->span_id, t->flags);
}

/* jwt_cache.c: a small direct-mapped, per-thread cache of verified tokens. */
#include "adapters/crypto/jwt_cache.h"

#include <string.h>

#define SLOTS     128
#define TOKEN_MAX 640 /* our tokens are ~400 bytes; longer ones are simply not cached */

struct slot {
	uint64_t generation; /* 0: empty */
	uint64_t hash;
	size_t len;
	char token[TOKEN_MAX];
	struct token_claims claims;
};

static _Thread_local struct slot slots[SLOTS];

/* FNV-1a: picks a slot; equality is decided by a constant-time comparison. */
static uint64_t fnv1a(const char *s, size_t n)
{
	uint64_t h = 14695981039346656037ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

bool jwt_cache_lookup(uint64_t generation, const char *token, size_t len, struct token_claims *out)
{
	if (len > TOKEN_MAX)
		return false;
	uint64_t h = fnv1a(token, len);
	struct slot *s = &slots[h % SLOTS];
	/* Constant time over the whole token: a near miss must not reveal a prefix of a
	 * valid token held by another client. */
	if (s->generation != generation || s->hash != h ||
	    !hex_ct_equal(s->token, s->len, token, len))
		return false;
	*out = s->claims;
	return true;
}

void jwt_cache_store(uint64_t generation, const char *token, size_t len,
                     const struct token_claims *c)
{
	if (len > TOKEN_MAX)
		return;
	uint64_t h = fnv1a(token, len);
	struct slot *s = &slots[h % SLOTS];
	s->generation = generation;
	s->hash = h;
	s->len = len;
	memcpy(s->token, token, len);
	s->claims = *c;
}

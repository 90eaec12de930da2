/*
 * jwt_cache: per-thread memory of tokens whose signature and claims were already
 * verified, so that a client presenting the same access token on every request pays the
 * base64, HMAC and JSON work once. Safe because a token's claims and validity under one
 * key never change; expiry is still checked on every use by the caller.
 */
#ifndef HEX_JWT_CACHE_H
#define HEX_JWT_CACHE_H

#include "core/ports/token_signer.h"

/* True and *out when token (len bytes) was stored for signer `generation`. */
bool jwt_cache_lookup(uint64_t generation, const char *token, size_t len, struct token_claims *out);
void jwt_cache_store(uint64_t generation, const char *token, size_t len,
                     const struct token_claims *c);

#endif

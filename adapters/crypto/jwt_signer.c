/* jwt_signer.c: HS256 JWTs with OpenSSL HMAC and jansson. */
#include "adapters/crypto/jwt_signer.h"

#include "adapters/crypto/jwt_cache.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>

#include "adapters/crypto/base64url.h"
#include "adapters/crypto/hmac.h"
#include "core/logger.h"

#define JWT_HEADER     "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define JWT_ALG        "HS256"
#define JWT_SIG_B64LEN 43 /* base64url of 32 bytes, unpadded */

static const char *const token_type_names[] = {
    [TOKEN_ACCESS] = "access",
    [TOKEN_REFRESH] = "refresh",
};
#define TOKEN_TYPE_COUNT (sizeof token_type_names / sizeof token_type_names[0])

int jwt_signer_init(struct jwt_signer *j, const char *secret, const char *issuer)
{
	static _Atomic uint64_t generations;
	memset(j, 0, sizeof *j);
	if (secret == NULL || issuer == NULL)
		return -1;
	size_t slen = strlen(secret);
	size_t ilen = strlen(issuer);
	if (slen < JWT_SIGNER_SECRET_MIN || ilen == 0 || ilen > JWT_SIGNER_ISSUER_MAX)
		return -1;
	if (slen <= sizeof j->key) {
		memcpy(j->key, secret, slen);
		j->keylen = slen;
	} else {
		unsigned int n = 0;
		if (!EVP_Digest(secret, slen, j->key, &n, EVP_sha256(), NULL))
			return -1;
		j->keylen = n;
	}
	memcpy(j->issuer, issuer, ilen + 1);
	j->generation = atomic_fetch_add(&generations, 1) + 1;
	return 0;
}

/* Appends the base64url of data to buf at *pos (capacity cap); false if it does not fit. */
static bool jwt_signer_append_b64(char *buf, size_t cap, size_t *pos, const void *data, size_t n)
{
	if (!base64url_encode(data, n, buf + *pos, cap - *pos))
		return false;
	*pos += base64url_encoded_len(n);
	return true;
}

static bool jwt_signer_append_char(char *buf, size_t cap, size_t *pos, char c)
{
	if (*pos + 1 >= cap)
		return false;
	buf[(*pos)++] = c;
	buf[*pos] = '\0';
	return true;
}

static enum hex_status jwt_signer_sign(void *self, const struct token_claims *c, char *out,
                                       size_t out_len)
{
	struct jwt_signer *j = self;
	enum hex_status st = HEX_INTERNAL;
	json_t *payload = NULL;
	char *text = NULL;

	if ((size_t)c->type >= TOKEN_TYPE_COUNT ||
	    (c->role != ROLE_USER && c->role != ROLE_ADMIN) || !user_id_valid(c->sub) ||
	    !user_id_valid(c->jti)) {
		log_error("jwt_sign_refused", "claims to sign are not valid");
		goto out;
	}
	payload = json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:I}", "iss", j->issuer, "sub",
	                    c->sub, "iat", (json_int_t)c->iat, "exp", (json_int_t)c->exp, "jti",
	                    c->jti, "role", user_role_name(c->role), "typ",
	                    token_type_names[c->type], "ver", (json_int_t)c->ver);
	text = payload != NULL ? json_dumps(payload, JSON_COMPACT) : NULL;
	if (text == NULL) {
		log_error("jwt_sign_failed", "could not build the token payload");
		goto out;
	}

	/* A token we sign must also pass our own length cap when it comes back. */
	size_t cap = out_len < HEX_TOKEN_MAX ? out_len : HEX_TOKEN_MAX;
	size_t pos = 0;
	if (!jwt_signer_append_b64(out, cap, &pos, JWT_HEADER, strlen(JWT_HEADER)) ||
	    !jwt_signer_append_char(out, cap, &pos, '.') ||
	    !jwt_signer_append_b64(out, cap, &pos, text, strlen(text)))
		goto too_long;
	unsigned char mac[CRYPTO_HMAC_SHA256_LEN];
	crypto_hmac_sha256(j->key, j->keylen, out, pos, mac);
	if (!jwt_signer_append_char(out, cap, &pos, '.') ||
	    !jwt_signer_append_b64(out, cap, &pos, mac, sizeof mac))
		goto too_long;
	st = HEX_OK;
	goto out;
too_long:
	log_error("jwt_sign_failed", "token does not fit in %zu bytes", cap);
	if (out_len > 0)
		out[0] = '\0';
out:
	free(text);
	json_decref(payload);
	return st;
}

/* Decodes one base64url part into a JSON object; NULL if it is not one. */
static json_t *jwt_signer_part_object(const char *part, size_t len)
{
	unsigned char buf[HEX_TOKEN_MAX];
	size_t n = 0;
	if (!base64url_decode(part, len, buf, sizeof buf, &n))
		return NULL;
	json_t *v = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
	if (v != NULL && !json_is_object(v)) {
		json_decref(v);
		v = NULL;
	}
	return v;
}

static bool jwt_signer_string_is(const json_t *v, const char *want)
{
	return json_is_string(v) && json_string_length(v) == strlen(want) &&
	       memcmp(json_string_value(v), want, strlen(want)) == 0;
}

/* Copies a UUID string claim; false if it is missing, not a string or not a UUID. */
static bool jwt_signer_get_id(const json_t *payload, const char *key, char out[HEX_ID_LEN + 1])
{
	const json_t *v = json_object_get(payload, key);
	if (!json_is_string(v) || !user_id_valid(json_string_value(v)))
		return false;
	return hex_strlcpy(out, json_string_value(v), HEX_ID_LEN + 1);
}

static bool jwt_signer_get_int(const json_t *payload, const char *key, int64_t *out)
{
	const json_t *v = json_object_get(payload, key);
	if (!json_is_integer(v))
		return false;
	*out = (int64_t)json_integer_value(v);
	return true;
}

static bool jwt_signer_parse_type(const json_t *v, enum token_type *out)
{
	for (size_t i = 0; i < TOKEN_TYPE_COUNT; i++) {
		if (jwt_signer_string_is(v, token_type_names[i])) {
			*out = (enum token_type)i;
			return true;
		}
	}
	return false;
}

static enum hex_status jwt_signer_verify(void *self, const char *token, enum token_type expect,
                                         int64_t now_s, struct token_claims *out,
                                         struct hex_err *err)
{
	const struct jwt_signer *j = self;
	enum hex_status st = HEX_UNAUTHENTICATED;
	const char *why = "malformed token";
	json_t *header = NULL;
	json_t *payload = NULL;
	struct token_claims c = {0};

	size_t len = token != NULL ? strnlen(token, HEX_TOKEN_MAX) : HEX_TOKEN_MAX;
	if (len >= HEX_TOKEN_MAX)
		goto out;
	bool cached = jwt_cache_lookup(j->generation, token, len, &c);
	if (cached)
		goto claims_checked;
	const char *dot1 = memchr(token, '.', len);
	const char *dot2 =
	    dot1 != NULL ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
	if (dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL)
		goto out;

	/* The header only picks the algorithm, and only one is accepted. */
	header = jwt_signer_part_object(token, (size_t)(dot1 - token));
	if (header == NULL)
		goto out;
	if (!jwt_signer_string_is(json_object_get(header, "alg"), JWT_ALG)) {
		why = "unsupported algorithm";
		goto out;
	}
	/* Extensions we would have to understand (RFC 7515 4.1.11): none are. */
	if (json_object_get(header, "crit") != NULL)
		goto out;

	unsigned char mac[CRYPTO_HMAC_SHA256_LEN];
	char expected[JWT_SIG_B64LEN + 1];
	crypto_hmac_sha256(j->key, j->keylen, token, (size_t)(dot2 - token), mac);
	base64url_encode(mac, sizeof mac, expected, sizeof expected);
	/* Comparing the text, not decoded bytes, also refuses re-encodings of a signature. */
	const char *sig = dot2 + 1;
	if (!hex_ct_equal(expected, JWT_SIG_B64LEN, sig, len - (size_t)(sig - token))) {
		why = "bad signature";
		goto out;
	}

	payload = jwt_signer_part_object(dot1 + 1, (size_t)(dot2 - dot1 - 1));
	if (payload == NULL)
		goto out;
	const json_t *iss = json_object_get(payload, "iss");
	if (!json_is_string(iss))
		goto out;
	if (!jwt_signer_string_is(iss, j->issuer)) {
		why = "wrong issuer";
		goto out;
	}
	if (!jwt_signer_get_id(payload, "sub", c.sub) ||
	    !jwt_signer_get_id(payload, "jti", c.jti) ||
	    !jwt_signer_get_int(payload, "iat", &c.iat) ||
	    !jwt_signer_get_int(payload, "exp", &c.exp) ||
	    !jwt_signer_get_int(payload, "ver", &c.ver) ||
	    !jwt_signer_parse_type(json_object_get(payload, "typ"), &c.type) ||
	    !json_is_string(json_object_get(payload, "role")) ||
	    !user_role_parse(json_string_value(json_object_get(payload, "role")), &c.role))
		goto out;
claims_checked:
	if (c.type != expect) {
		why = "wrong token type";
		goto out;
	}
	if (c.exp <= now_s) {
		why = "token expired";
		goto out;
	}
	if (!cached)
		jwt_cache_store(j->generation, token, len, &c);
	*out = c;
	st = HEX_OK;
out:
	json_decref(header);
	json_decref(payload);
	if (st != HEX_OK)
		hex_fail(err, st, NULL, "%s", why);
	return st;
}

static const struct token_signer_ops jwt_signer_ops = {
    .sign = jwt_signer_sign,
    .verify = jwt_signer_verify,
};

struct token_signer jwt_signer_port(struct jwt_signer *j)
{
	return (struct token_signer){.ops = &jwt_signer_ops, .self = j};
}

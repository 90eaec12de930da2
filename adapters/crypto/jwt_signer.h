/*
 * jwt_signer: the token_signer port as compact JWTs (RFC 7519) signed with HS256 only.
 * Header {"alg":"HS256","typ":"JWT"}; claims iss, sub, iat, exp, jti, role, typ, ver.
 * Thread-safe after init: verify and sign only read the struct.
 */
#ifndef HEX_JWT_SIGNER_H
#define HEX_JWT_SIGNER_H

#include <stddef.h>

#include "core/ports/token_signer.h"

#define JWT_SIGNER_SECRET_MIN 32
#define JWT_SIGNER_ISSUER_MAX 128

struct jwt_signer {
	/* The HMAC key as RFC 2104 uses it: secrets over 64 bytes are first hashed. */
	unsigned char key[64];
	size_t keylen;
	char issuer[JWT_SIGNER_ISSUER_MAX + 1];
	uint64_t generation; /* unique per init: keys the verified-token cache */
};

/*
 * -1 if secret is NULL or shorter than JWT_SIGNER_SECRET_MIN bytes, or issuer is NULL,
 * empty or longer than JWT_SIGNER_ISSUER_MAX; 0 otherwise. Nothing is kept pointing
 * into the arguments.
 */
int jwt_signer_init(struct jwt_signer *j, const char *secret, const char *issuer);

/*
 * sign: HEX_INTERNAL if the claims are not ours to sign (sub/jti not UUIDs, unknown
 * role or type) or the token does not fit out_len or HEX_TOKEN_MAX.
 * verify: HEX_UNAUTHENTICATED with err->message one of "malformed token", "unsupported
 * algorithm", "bad signature", "wrong issuer", "wrong token type", "token expired".
 * Nothing in the payload is read before the signature has been checked.
 */
struct token_signer jwt_signer_port(struct jwt_signer *j);

#endif

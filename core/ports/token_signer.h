/* token_signer: signs and verifies the claims of access and refresh tokens. */
#ifndef HEX_PORT_TOKEN_SIGNER_H
#define HEX_PORT_TOKEN_SIGNER_H

#include "core/user.h"

enum token_type { TOKEN_ACCESS = 0, TOKEN_REFRESH };

#define HEX_TOKEN_MAX 1024

struct token_claims {
	enum token_type type;     /* claim "typ": "access" | "refresh" */
	char sub[HEX_ID_LEN + 1]; /* user id */
	char jti[HEX_ID_LEN + 1]; /* token id */
	enum user_role role;      /* claim "role" */
	int64_t ver;              /* claim "ver": the user's token_version */
	int64_t iat;              /* seconds since the epoch */
	int64_t exp;              /* seconds since the epoch */
};

struct token_signer_ops {
	/* Writes the compact token to out (size out_len). */
	enum hex_status (*sign)(void *self, const struct token_claims *c, char *out,
	                        size_t out_len);
	/*
	 * HEX_OK and the claims if the token is well formed, signed by us with the one
	 * accepted algorithm, issued by us, of the expected type and not expired at now_s.
	 * HEX_UNAUTHENTICATED otherwise (err->message says why, safe to show).
	 */
	enum hex_status (*verify)(void *self, const char *token, enum token_type expect,
	                          int64_t now_s, struct token_claims *out, struct hex_err *err);
};

struct token_signer {
	const struct token_signer_ops *ops;
	void *self;
};

#endif

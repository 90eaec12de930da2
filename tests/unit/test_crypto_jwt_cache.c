/* test_crypto_jwt_cache: a token verified once is remembered, never beyond its rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "adapters/crypto/jwt_signer.h"

#define SECRET   "0123456789abcdef0123456789abcdef"
#define SECRET_B "fedcba9876543210fedcba9876543210"
#define SUB      "0190f3a2-7b1c-7d4e-8f00-123456789abc"
#define JTI      "0190f3a2-7b1c-7d4e-9a11-abcdefabcdef"

static void sign(struct jwt_signer *j, enum token_type type, int64_t exp, char *out)
{
	struct token_claims c = {
	    .type = type, .role = ROLE_USER, .ver = 3, .iat = 1000, .exp = exp};
	memcpy(c.sub, SUB, sizeof c.sub);
	memcpy(c.jti, JTI, sizeof c.jti);
	struct token_signer p = jwt_signer_port(j);
	assert_int_equal(p.ops->sign(p.self, &c, out, HEX_TOKEN_MAX), HEX_OK);
}

/* A signer with SECRET and one token of type signed with it. */
static void signed_token(struct jwt_signer *j, enum token_type type, char *token)
{
	assert_int_equal(jwt_signer_init(j, SECRET, "hex"), 0);
	sign(j, type, 2000, token);
}

static enum hex_status verify(struct jwt_signer *j, const char *token, enum token_type type,
                              int64_t now, struct token_claims *c, struct hex_err *err)
{
	struct token_signer p = jwt_signer_port(j);
	return p.ops->verify(p.self, token, type, now, c, err);
}

static void second_use_gives_the_same_claims(void **state)
{
	struct jwt_signer j;
	char token[HEX_TOKEN_MAX];
	signed_token(&j, TOKEN_ACCESS, token);
	struct token_claims a, b;
	struct hex_err err = {0};
	assert_int_equal(verify(&j, token, TOKEN_ACCESS, 1500, &a, &err), HEX_OK);
	assert_int_equal(verify(&j, token, TOKEN_ACCESS, 1500, &b, &err), HEX_OK);
	assert_memory_equal(&a, &b, sizeof a);
	assert_string_equal(b.sub, SUB);
	assert_int_equal(b.ver, 3);
}

static void a_remembered_token_still_expires(void **state)
{
	struct jwt_signer j;
	char token[HEX_TOKEN_MAX];
	signed_token(&j, TOKEN_ACCESS, token);
	struct token_claims c;
	struct hex_err err = {0};
	assert_int_equal(verify(&j, token, TOKEN_ACCESS, 1999, &c, &err), HEX_OK);
	assert_int_equal(verify(&j, token, TOKEN_ACCESS, 2000, &c, &err), HEX_UNAUTHENTICATED);
	assert_string_equal(err.message, "token expired");
}

static void a_remembered_token_keeps_its_type(void **state)
{
	struct jwt_signer j;
	char token[HEX_TOKEN_MAX];
	signed_token(&j, TOKEN_REFRESH, token);
	struct token_claims c;
	struct hex_err err = {0};
	assert_int_equal(verify(&j, token, TOKEN_REFRESH, 1500, &c, &err), HEX_OK);
	assert_int_equal(verify(&j, token, TOKEN_ACCESS, 1500, &c, &err), HEX_UNAUTHENTICATED);
	assert_string_equal(err.message, "wrong token type");
}

/* A signer made later at the same address with another key must not inherit. */
static void another_key_does_not_inherit_the_memory(void **state)
{
	struct jwt_signer j;
	char token[HEX_TOKEN_MAX];
	signed_token(&j, TOKEN_ACCESS, token);
	struct token_claims c;
	struct hex_err err = {0};
	assert_int_equal(verify(&j, token, TOKEN_ACCESS, 1500, &c, &err), HEX_OK);
	assert_int_equal(jwt_signer_init(&j, SECRET_B, "hex"), 0);
	assert_int_equal(verify(&j, token, TOKEN_ACCESS, 1500, &c, &err), HEX_UNAUTHENTICATED);
	assert_string_equal(err.message, "bad signature");
}

static void a_token_one_byte_off_is_verified_in_full(void **state)
{
	struct jwt_signer j;
	char token[HEX_TOKEN_MAX];
	signed_token(&j, TOKEN_ACCESS, token);
	struct token_claims c;
	struct hex_err err = {0};
	assert_int_equal(verify(&j, token, TOKEN_ACCESS, 1500, &c, &err), HEX_OK);
	size_t n = strlen(token);
	token[n - 1] = token[n - 1] == 'A' ? 'B' : 'A';
	assert_int_equal(verify(&j, token, TOKEN_ACCESS, 1500, &c, &err), HEX_UNAUTHENTICATED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(second_use_gives_the_same_claims),
	    cmocka_unit_test(a_remembered_token_still_expires),
	    cmocka_unit_test(a_remembered_token_keeps_its_type),
	    cmocka_unit_test(another_key_does_not_inherit_the_memory),
	    cmocka_unit_test(a_token_one_byte_off_is_verified_in_full),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

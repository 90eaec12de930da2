/* test_crypto_jwt: HS256 tokens through the token_signer port, and every way to refuse one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/crypto/base64url.h"
#include "adapters/crypto/hmac.h"
#include "adapters/crypto/jwt_signer.h"

#define SECRET "0123456789abcdef0123456789abcdef"
#define LONG_SECRET                                                                                \
	"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"         \
	"abcdefghijabcdefghij"
#define ISSUER     "hex"
#define SUB        "0190f3a2-7b1c-7d4e-8f00-123456789abc"
#define JTI        "0190f3a2-7b1c-7d4e-9a11-abcdefabcdef"
#define NOW        1500
#define HEADER_B64 "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
#define GOOD_CLAIMS                                                                                \
	"\"iss\":\"hex\",\"sub\":\"" SUB "\",\"iat\":1000,\"exp\":2000,\"jti\":\"" JTI             \
	"\",\"role\":\"admin\",\"typ\":\"access\",\"ver\":7"

/* Made outside this code base (Python hmac + base64) for the claims of admin_claims(). */
static const char python_token[] =
    HEADER_B64 ".eyJpc3MiOiJoZXgiLCJzdWIiOiIwMTkwZjNhMi03YjFjLTdkNGUtOGYwMC0xMjM0NTY3ODlhYm"
               "MiLCJpYXQiOjEwMDAsImV4cCI6MjAwMCwianRpIjoiMDE5MGYzYTItN2IxYy03ZDRlLTlhMTEtYWJjZG"
               "VmYWJjZGVmIiwicm9sZSI6ImFkbWluIiwidHlwIjoiYWNjZXNzIiwidmVyIjo3fQ";
static const char python_sig[] = "IyPgIo0B4e9_-Y3pXDk0rI8BD09H4u_hQfm8RgFlp5o";
static const char python_sig_long_secret[] = "3kQyGgVcnd46FGnnN4UWCIqagrUPVGADrgIFxOobxa0";

struct fixture {
	struct jwt_signer j;
	struct token_signer port;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	assert_int_equal(jwt_signer_init(&f->j, SECRET, ISSUER), 0);
	f->port = jwt_signer_port(&f->j);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	free(*state);
	return 0;
}

static struct token_claims admin_claims(void)
{
	struct token_claims c = {
	    .type = TOKEN_ACCESS, .role = ROLE_ADMIN, .ver = 7, .iat = 1000, .exp = 2000};
	strcpy(c.sub, SUB);
	strcpy(c.jti, JTI);
	return c;
}

static void sign(struct token_signer *p, const struct token_claims *c, char out[HEX_TOKEN_MAX])
{
	assert_int_equal(p->ops->sign(p->self, c, out, HEX_TOKEN_MAX), HEX_OK);
}

/* Verifies a token that must be refused, and checks the reason given. */
static void refused(struct token_signer *p, const char *token, enum token_type expect,
                    const char *why)
{
	struct hex_err err = {0};
	struct token_claims out = {0};
	enum hex_status st = p->ops->verify(p->self, token, expect, NOW, &out, &err);
	if (st != HEX_UNAUTHENTICATED)
		fail_msg("token %s gave %s", token, hex_status_name(st));
	assert_string_equal(err.message, why);
	assert_null(err.field);
	assert_string_equal(out.sub, ""); /* nothing leaks out of a refused token */
}

static void accepted(struct token_signer *p, const char *token, enum token_type expect,
                     struct token_claims *out)
{
	struct hex_err err = {0};
	enum hex_status st = p->ops->verify(p->self, token, expect, NOW, out, &err);
	if (st != HEX_OK)
		fail_msg("token %s gave %s (%s)", token, hex_status_name(st), err.message);
}

/* Joins the parts as given and appends the HS256 signature of "h.p" under key. */
static void forge_parts(const char *key, const char *h, const char *p, char *out, size_t n)
{
	char signing[4096];
	snprintf(signing, sizeof signing, "%s.%s", h, p);
	unsigned char mac[CRYPTO_HMAC_SHA256_LEN];
	crypto_hmac_sha256(key, strlen(key), signing, strlen(signing), mac);
	char sig[64];
	assert_true(base64url_encode(mac, sizeof mac, sig, sizeof sig));
	snprintf(out, n, "%s.%s", signing, sig);
}

/* A token with our secret and any header and payload JSON: only what they say is wrong. */
static void forge(const char *header_json, const char *payload_json, char *out, size_t n)
{
	char h[2048], p[2048];
	assert_true(base64url_encode(header_json, strlen(header_json), h, sizeof h));
	assert_true(base64url_encode(payload_json, strlen(payload_json), p, sizeof p));
	forge_parts(SECRET, h, p, out, n);
}

static void init_refuses_short_secrets_and_bad_issuers(void **state)
{
	struct jwt_signer j;
	assert_int_equal(jwt_signer_init(&j, "0123456789abcdef0123456789abcde", ISSUER), -1);
	assert_int_equal(jwt_signer_init(&j, "", ISSUER), -1);
	assert_int_equal(jwt_signer_init(&j, NULL, ISSUER), -1);
	assert_int_equal(jwt_signer_init(&j, SECRET, ""), -1);
	assert_int_equal(jwt_signer_init(&j, SECRET, NULL), -1);
	char issuer[JWT_SIGNER_ISSUER_MAX + 2];
	memset(issuer, 'i', sizeof issuer - 1);
	issuer[sizeof issuer - 1] = '\0';
	assert_int_equal(jwt_signer_init(&j, SECRET, issuer), -1);
	issuer[JWT_SIGNER_ISSUER_MAX] = '\0';
	assert_int_equal(jwt_signer_init(&j, SECRET, issuer), 0);
	assert_int_equal(jwt_signer_init(&j, SECRET, ISSUER), 0);
	assert_int_equal(jwt_signer_init(&j, LONG_SECRET, ISSUER), 0);
}

static void sign_matches_an_independent_implementation(void **state)
{
	struct fixture *f = *state;
	struct token_claims c = admin_claims();
	char token[HEX_TOKEN_MAX];
	sign(&f->port, &c, token);
	char want[HEX_TOKEN_MAX];
	snprintf(want, sizeof want, "%s.%s", python_token, python_sig);
	assert_string_equal(token, want);

	struct jwt_signer lj;
	assert_int_equal(jwt_signer_init(&lj, LONG_SECRET, ISSUER), 0);
	struct token_signer lp = jwt_signer_port(&lj);
	sign(&lp, &c, token);
	snprintf(want, sizeof want, "%s.%s", python_token, python_sig_long_secret);
	assert_string_equal(token, want);
}

static void verify_accepts_an_independent_token(void **state)
{
	struct fixture *f = *state;
	char token[HEX_TOKEN_MAX];
	snprintf(token, sizeof token, "%s.%s", python_token, python_sig);
	struct token_claims out;
	accepted(&f->port, token, TOKEN_ACCESS, &out);
	assert_string_equal(out.sub, SUB);
	assert_string_equal(out.jti, JTI);
	assert_int_equal(out.role, ROLE_ADMIN);
}

static void every_claim_round_trips(void **state)
{
	struct fixture *f = *state;
	static const enum token_type types[] = {TOKEN_ACCESS, TOKEN_REFRESH};
	static const enum user_role roles[] = {ROLE_USER, ROLE_ADMIN};
	for (size_t t = 0; t < 2; t++) {
		for (size_t r = 0; r < 2; r++) {
			struct token_claims c = admin_claims();
			c.type = types[t];
			c.role = roles[r];
			c.ver = (int64_t)(t * 2 + r) + 4000000000LL;
			c.iat = 1400 + (int64_t)t;
			c.exp = 1600 + (int64_t)r;
			char token[HEX_TOKEN_MAX];
			sign(&f->port, &c, token);
			assert_true(strncmp(token, HEADER_B64 ".", strlen(HEADER_B64) + 1) == 0);
			struct token_claims out;
			memset(&out, 0xab, sizeof out);
			accepted(&f->port, token, types[t], &out);
			assert_int_equal(out.type, c.type);
			assert_string_equal(out.sub, c.sub);
			assert_string_equal(out.jti, c.jti);
			assert_int_equal(out.role, c.role);
			assert_int_equal(out.ver, c.ver);
			assert_int_equal(out.iat, c.iat);
			assert_int_equal(out.exp, c.exp);
		}
	}
}

static void expiry_is_exclusive(void **state)
{
	struct fixture *f = *state;
	struct token_claims c = admin_claims();
	char token[HEX_TOKEN_MAX];
	struct token_claims out;

	c.exp = NOW + 1;
	sign(&f->port, &c, token);
	accepted(&f->port, token, TOKEN_ACCESS, &out);
	c.exp = NOW;
	sign(&f->port, &c, token);
	refused(&f->port, token, TOKEN_ACCESS, "token expired");
	c.exp = NOW - 3600;
	sign(&f->port, &c, token);
	refused(&f->port, token, TOKEN_ACCESS, "token expired");
}

static void wrong_issuer_is_refused(void **state)
{
	struct fixture *f = *state;
	struct jwt_signer other;
	assert_int_equal(jwt_signer_init(&other, SECRET, "hex-staging"), 0);
	struct token_signer op = jwt_signer_port(&other);
	struct token_claims c = admin_claims();
	char token[HEX_TOKEN_MAX];
	sign(&op, &c, token);
	refused(&f->port, token, TOKEN_ACCESS, "wrong issuer");

	/* A prefix of our issuer is not our issuer either. */
	assert_int_equal(jwt_signer_init(&other, SECRET, "he"), 0);
	sign(&op, &c, token);
	refused(&f->port, token, TOKEN_ACCESS, "wrong issuer");
}

static void wrong_type_is_refused(void **state)
{
	struct fixture *f = *state;
	struct token_claims c = admin_claims();
	char token[HEX_TOKEN_MAX];
	c.type = TOKEN_REFRESH;
	sign(&f->port, &c, token);
	refused(&f->port, token, TOKEN_ACCESS, "wrong token type");
	c.type = TOKEN_ACCESS;
	sign(&f->port, &c, token);
	refused(&f->port, token, TOKEN_REFRESH, "wrong token type");
}

static void alg_none_is_refused(void **state)
{
	struct fixture *f = *state;
	char h[128], p[512], token[HEX_TOKEN_MAX];
	const char *hj = "{\"alg\":\"none\",\"typ\":\"JWT\"}";
	const char *pj = "{" GOOD_CLAIMS "}";
	assert_true(base64url_encode(hj, strlen(hj), h, sizeof h));
	assert_true(base64url_encode(pj, strlen(pj), p, sizeof p));

	snprintf(token, sizeof token, "%s.%s.", h, p); /* the classic unsigned form */
	refused(&f->port, token, TOKEN_ACCESS, "unsupported algorithm");
	snprintf(token, sizeof token, "%s.%s", h, p); /* without the signature part */
	refused(&f->port, token, TOKEN_ACCESS, "malformed token");
	forge(hj, pj, token, sizeof token); /* with a valid HS256 signature anyway */
	refused(&f->port, token, TOKEN_ACCESS, "unsupported algorithm");
}

static void other_algorithms_are_refused(void **state)
{
	struct fixture *f = *state;
	static const char *const headers[] = {
	    "{\"alg\":\"HS512\",\"typ\":\"JWT\"}",
	    "{\"alg\":\"RS256\",\"typ\":\"JWT\"}",
	    "{\"alg\":\"hs256\",\"typ\":\"JWT\"}",
	    "{\"alg\":\"HS256 \",\"typ\":\"JWT\"}",
	    "{\"alg\":\"\"}",
	    "{\"typ\":\"JWT\"}",
	    "{\"alg\":256}",
	    "{\"alg\":null}",
	    "{\"alg\":[\"HS256\"]}",
	};
	char token[HEX_TOKEN_MAX];
	for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
		forge(headers[i], "{" GOOD_CLAIMS "}", token, sizeof token);
		refused(&f->port, token, TOKEN_ACCESS, "unsupported algorithm");
	}
	/* The control: the same forging with the right header passes. */
	struct token_claims out;
	forge("{\"alg\":\"HS256\"}", "{" GOOD_CLAIMS "}", token, sizeof token);
	accepted(&f->port, token, TOKEN_ACCESS, &out);
}

static void header_must_be_a_plain_object(void **state)
{
	struct fixture *f = *state;
	static const char *const headers[] = {
	    "[\"HS256\"]",
	    "\"HS256\"",
	    "null",
	    "42",
	    "",
	    "{\"alg\":\"HS256\"",
	    "{\"alg\":\"HS256\"} x",
	    "{\"alg\":\"HS256\",\"alg\":\"none\"}",
	    "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
	};
	char token[HEX_TOKEN_MAX];
	for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
		forge(headers[i], "{" GOOD_CLAIMS "}", token, sizeof token);
		refused(&f->port, token, TOKEN_ACCESS, "malformed token");
	}
}

static void payload_claims_must_have_their_types(void **state)
{
	struct fixture *f = *state;
	static const char *const payloads[] = {
	    "[" GOOD_CLAIMS "]",
	    "\"x\"",
	    "{" GOOD_CLAIMS "",
	    "{" GOOD_CLAIMS ",\"exp\":3000}", /* duplicate key */
	    "{\"iss\":\"hex\",\"sub\":\"" SUB "\",\"iat\":1000,\"exp\":2000.0,\"jti\":\"" JTI
	    "\",\"role\":\"user\",\"typ\":\"access\",\"ver\":1}",
	    "{\"iss\":\"hex\",\"sub\":\"" SUB "\",\"iat\":1000,\"exp\":\"2000\",\"jti\":\"" JTI
	    "\",\"role\":\"user\",\"typ\":\"access\",\"ver\":1}",
	    "{\"iss\":\"hex\",\"sub\":\"" SUB "\",\"iat\":1000,\"jti\":\"" JTI
	    "\",\"role\":\"user\",\"typ\":\"access\",\"ver\":1}",
	    "{\"iss\":\"hex\",\"sub\":\"" SUB "\",\"iat\":1000,\"exp\":99999999999999999999999,"
	    "\"jti\":\"" JTI "\",\"role\":\"user\",\"typ\":\"access\",\"ver\":1}",
	    "{\"iss\":\"hex\",\"sub\":\"" SUB "\",\"iat\":null,\"exp\":2000,\"jti\":\"" JTI
	    "\",\"role\":\"user\",\"typ\":\"access\",\"ver\":1}",
	    "{\"iss\":\"hex\",\"sub\":\"" SUB "\",\"iat\":1000,\"exp\":2000,\"jti\":\"" JTI
	    "\",\"role\":\"user\",\"typ\":\"access\",\"ver\":\"1\"}",
	    "{\"iss\":\"hex\",\"sub\":\"" SUB "\",\"iat\":1000,\"exp\":2000,\"jti\":\"" JTI
	    "\",\"role\":\"user\",\"typ\":\"access\"}",
	    "{\"iss\":\"hex\",\"sub\":\"not-a-uuid\",\"iat\":1000,\"exp\":2000,\"jti\":\"" JTI
	    "\",\"role\":\"user\",\"typ\":\"access\",\"ver\":1}",
	    "{\"iss\":\"hex\",\"sub\":\"" SUB "\",\"iat\":1000,\"exp\":2000,\"jti\":\"" JTI
	    "x\",\"role\":\"user\",\"typ\":\"access\",\"ver\":1}",
	    "{\"iss\":\"hex\",\"sub\":\"" SUB "\",\"iat\":1000,\"exp\":2000,"
	    "\"role\":\"user\",\"typ\":\"access\",\"ver\":1}",
	    "{\"iss\":\"hex\",\"sub\":7,\"iat\":1000,\"exp\":2000,\"jti\":\"" JTI
	    "\",\"role\":\"user\",\"typ\":\"access\",\"ver\":1}",
	    "{\"iss\":\"hex\",\"sub\":\"" SUB "\",\"iat\":1000,\"exp\":2000,\"jti\":\"" JTI
	    "\",\"role\":\"root\",\"typ\":\"access\",\"ver\":1}",
	    "{\"iss\":\"hex\",\"sub\":\"" SUB "\",\"iat\":1000,\"exp\":2000,\"jti\":\"" JTI
	    "\",\"typ\":\"access\",\"ver\":1}",
	    "{\"iss\":\"hex\",\"sub\":\"" SUB "\",\"iat\":1000,\"exp\":2000,\"jti\":\"" JTI
	    "\",\"role\":\"user\",\"typ\":\"id\",\"ver\":1}",
	    "{\"iss\":\"hex\",\"sub\":\"" SUB "\",\"iat\":1000,\"exp\":2000,\"jti\":\"" JTI
	    "\",\"role\":\"user\",\"ver\":1}",
	    "{\"sub\":\"" SUB "\",\"iat\":1000,\"exp\":2000,\"jti\":\"" JTI
	    "\",\"role\":\"user\",\"typ\":\"access\",\"ver\":1}",
	    "{\"iss\":[\"hex\"],\"sub\":\"" SUB "\",\"iat\":1000,\"exp\":2000,\"jti\":\"" JTI
	    "\",\"role\":\"user\",\"typ\":\"access\",\"ver\":1}",
	    "{\"iss\":\"hex\\u0000\",\"sub\":\"" SUB "\",\"iat\":1000,\"exp\":2000,\"jti\":\"" JTI
	    "\",\"role\":\"user\",\"typ\":\"access\",\"ver\":1}",
	};
	char token[HEX_TOKEN_MAX];
	for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
		forge("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payloads[i], token, sizeof token);
		refused(&f->port, token, TOKEN_ACCESS, "malformed token");
	}
}

static void tampered_payload_is_refused(void **state)
{
	struct fixture *f = *state;
	struct token_claims c = admin_claims();
	c.role = ROLE_USER;
	char token[HEX_TOKEN_MAX];
	sign(&f->port, &c, token);
	/* Turn "user" into "admin" and re-encode: the signature no longer matches. */
	char *dot1 = strchr(token, '.'), *dot2 = strrchr(token, '.');
	char payload[512], forged[HEX_TOKEN_MAX];
	size_t n = 0;
	assert_true(
	    base64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), payload, sizeof payload - 1, &n));
	payload[n] = '\0';
	char *role = strstr(payload, "\"role\":\"user\"");
	assert_non_null(role);
	char edited[512];
	snprintf(edited, sizeof edited, "%.*s\"role\":\"admin\"%s", (int)(role - payload), payload,
	         role + strlen("\"role\":\"user\""));
	char p[700];
	assert_true(base64url_encode(edited, strlen(edited), p, sizeof p));
	snprintf(forged, sizeof forged, HEADER_B64 ".%s%s", p, dot2);
	refused(&f->port, forged, TOKEN_ACCESS, "bad signature");

	/* One character changed anywhere in the payload text. */
	for (char *q = dot1 + 1; q < dot2; q++) {
		char keep = *q;
		*q = keep == 'A' ? 'B' : 'A';
		refused(&f->port, token, TOKEN_ACCESS, "bad signature");
		*q = keep;
	}
	struct token_claims out;
	accepted(&f->port, token, TOKEN_ACCESS, &out);
}

static char next_b64_char(char c)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const char *at = strchr(alphabet, c);
	assert_non_null(at);
	return alphabet[(at - alphabet + 1) % 64];
}

static void tampered_signature_is_refused(void **state)
{
	struct fixture *f = *state;
	struct token_claims c = admin_claims();
	char token[HEX_TOKEN_MAX];
	sign(&f->port, &c, token);
	char *sig = strrchr(token, '.') + 1;
	assert_int_equal(strlen(sig), 43);
	for (char *q = sig; *q != '\0'; q++) {
		char keep = *q;
		/* The last character's low bits are unused: flip to its next value too. */
		*q = keep == 'A' ? 'B' : 'A';
		refused(&f->port, token, TOKEN_ACCESS, "bad signature");
		*q = next_b64_char(keep);
		refused(&f->port, token, TOKEN_ACCESS, "bad signature");
		*q = keep;
	}
	size_t len = strlen(token);
	token[len - 1] = '\0'; /* a character short */
	refused(&f->port, token, TOKEN_ACCESS, "bad signature");
	strcat(token, "AA"); /* a character long */
	refused(&f->port, token, TOKEN_ACCESS, "bad signature");
	strcpy(sig, "");
	refused(&f->port, token, TOKEN_ACCESS, "bad signature");
}

static void any_one_character_change_is_refused(void **state)
{
	struct fixture *f = *state;
	struct token_claims c = admin_claims();
	char token[HEX_TOKEN_MAX];
	sign(&f->port, &c, token);
	size_t len = strlen(token);
	for (size_t i = 0; i < len; i++) {
		char keep = token[i];
		static const char repl[] = {'A', 'g', '.', '=', '+', '_'};
		for (size_t r = 0; r < sizeof repl; r++) {
			if (repl[r] == keep)
				continue;
			token[i] = repl[r];
			struct hex_err err = {0};
			struct token_claims out;
			if (f->port.ops->verify(f->port.self, token, TOKEN_ACCESS, NOW, &out,
			                        &err) != HEX_UNAUTHENTICATED)
				fail_msg("accepted with '%c' at %zu: %s", repl[r], i, token);
		}
		token[i] = keep;
	}
}

static void another_secret_is_refused(void **state)
{
	struct fixture *f = *state;
	struct jwt_signer other;
	assert_int_equal(jwt_signer_init(&other, "0123456789abcdef0123456789abcdeF", ISSUER), 0);
	struct token_signer op = jwt_signer_port(&other);
	struct token_claims c = admin_claims();
	char token[HEX_TOKEN_MAX];
	sign(&op, &c, token);
	refused(&f->port, token, TOKEN_ACCESS, "bad signature");

	/* Long secrets are hashed first: secrets that differ after byte 64 still differ. */
	struct jwt_signer a, b;
	assert_int_equal(jwt_signer_init(&a, LONG_SECRET, ISSUER), 0);
	assert_int_equal(jwt_signer_init(&b, LONG_SECRET "k", ISSUER), 0);
	struct token_signer ap = jwt_signer_port(&a), bp = jwt_signer_port(&b);
	sign(&ap, &c, token);
	refused(&bp, token, TOKEN_ACCESS, "bad signature");
	struct token_claims out;
	accepted(&ap, token, TOKEN_ACCESS, &out);
}

static void wrong_number_of_parts_is_refused(void **state)
{
	struct fixture *f = *state;
	struct token_claims c = admin_claims();
	char token[HEX_TOKEN_MAX], edited[HEX_TOKEN_MAX + 8];
	sign(&f->port, &c, token);

	*strrchr(token, '.') = '\0';
	refused(&f->port, token, TOKEN_ACCESS, "malformed token"); /* two parts */
	sign(&f->port, &c, token);
	snprintf(edited, sizeof edited, "%s.AAAA", token);
	refused(&f->port, edited, TOKEN_ACCESS, "malformed token"); /* four parts */
	snprintf(edited, sizeof edited, "%s.", token);
	refused(&f->port, edited, TOKEN_ACCESS, "malformed token");
	static const char *const junk[] = {"", ".", "..", "...", "abc", "Bearer x.y.z"};
	for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
		refused(&f->port, junk[i], TOKEN_ACCESS, "malformed token");
	refused(&f->port, NULL, TOKEN_ACCESS, "malformed token");
}

static void bad_base64_is_refused(void **state)
{
	struct fixture *f = *state;
	char token[HEX_TOKEN_MAX];
	const char *pj = "{" GOOD_CLAIMS "}";
	char p[512];
	assert_true(base64url_encode(pj, strlen(pj), p, sizeof p));

	/* Correctly signed over the text, but the text is not strict base64url. */
	forge_parts(SECRET, HEADER_B64 "=", p, token, sizeof token);
	refused(&f->port, token, TOKEN_ACCESS, "malformed token");
	forge_parts(SECRET, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9+", p, token, sizeof token);
	refused(&f->port, token, TOKEN_ACCESS, "malformed token");
	char padded[520];
	snprintf(padded, sizeof padded, "%s==", p);
	forge_parts(SECRET, HEADER_B64, padded, token, sizeof token);
	refused(&f->port, token, TOKEN_ACCESS, "malformed token");
	char bad_char[520];
	snprintf(bad_char, sizeof bad_char, "%s", p);
	bad_char[10] = '/';
	forge_parts(SECRET, HEADER_B64, bad_char, token, sizeof token);
	refused(&f->port, token, TOKEN_ACCESS, "malformed token");
	/* The control: the same forging with clean parts passes. */
	struct token_claims out;
	forge_parts(SECRET, HEADER_B64, p, token, sizeof token);
	accepted(&f->port, token, TOKEN_ACCESS, &out);
}

static void huge_tokens_are_refused(void **state)
{
	struct fixture *f = *state;
	/* Validly signed, but over the cap: the cap is checked before any work. */
	char payload[1200];
	char pad[800];
	memset(pad, 'x', sizeof pad - 1);
	pad[sizeof pad - 1] = '\0';
	snprintf(payload, sizeof payload, "{" GOOD_CLAIMS ",\"pad\":\"%s\"}", pad);
	char *token = malloc(4096);
	forge("{\"alg\":\"HS256\"}", payload, token, 4096);
	assert_true(strlen(token) >= HEX_TOKEN_MAX);
	refused(&f->port, token, TOKEN_ACCESS, "malformed token");

	char *big = malloc(1 << 20);
	memset(big, 'A', (1 << 20) - 1);
	big[(1 << 20) - 1] = '\0';
	big[100] = '.';
	big[200] = '.';
	refused(&f->port, big, TOKEN_ACCESS, "malformed token");
	free(big);
	free(token);

	/* Just under the cap, the same kind of token is fine. */
	char small_pad[8];
	char fits[HEX_TOKEN_MAX];
	strcpy(small_pad, "xx");
	snprintf(payload, sizeof payload, "{" GOOD_CLAIMS ",\"pad\":\"%s\"}", small_pad);
	forge("{\"alg\":\"HS256\"}", payload, fits, sizeof fits);
	struct token_claims out;
	accepted(&f->port, fits, TOKEN_ACCESS, &out);
}

static void verify_without_err_is_allowed(void **state)
{
	struct fixture *f = *state;
	struct token_claims out;
	assert_int_equal(f->port.ops->verify(f->port.self, "x.y.z", TOKEN_ACCESS, NOW, &out, NULL),
	                 HEX_UNAUTHENTICATED);
}

static void sign_refuses_claims_that_are_not_ours(void **state)
{
	struct fixture *f = *state;
	char token[HEX_TOKEN_MAX];
	struct token_claims c = admin_claims();
	strcpy(c.sub, "not-a-uuid");
	assert_int_equal(f->port.ops->sign(f->port.self, &c, token, sizeof token), HEX_INTERNAL);
	c = admin_claims();
	strcpy(c.jti, "");
	assert_int_equal(f->port.ops->sign(f->port.self, &c, token, sizeof token), HEX_INTERNAL);
	c = admin_claims();
	c.role = (enum user_role)7;
	assert_int_equal(f->port.ops->sign(f->port.self, &c, token, sizeof token), HEX_INTERNAL);
	c = admin_claims();
	c.type = (enum token_type)7;
	assert_int_equal(f->port.ops->sign(f->port.self, &c, token, sizeof token), HEX_INTERNAL);
}

static void sign_refuses_a_short_buffer(void **state)
{
	struct fixture *f = *state;
	struct token_claims c = admin_claims();
	char full[HEX_TOKEN_MAX];
	sign(&f->port, &c, full);
	size_t need = strlen(full) + 1;

	char *out = malloc(need);
	assert_int_equal(f->port.ops->sign(f->port.self, &c, out, need - 1), HEX_INTERNAL);
	assert_string_equal(out, "");
	assert_int_equal(f->port.ops->sign(f->port.self, &c, out, need), HEX_OK);
	assert_string_equal(out, full);
	free(out);
}

/* The longest issuer still gives a token under the cap, which verifies. */
static void longest_issuer_fits_the_cap(void **state)
{
	char issuer[JWT_SIGNER_ISSUER_MAX + 1];
	memset(issuer, 'i', JWT_SIGNER_ISSUER_MAX);
	issuer[JWT_SIGNER_ISSUER_MAX] = '\0';
	struct jwt_signer j;
	assert_int_equal(jwt_signer_init(&j, SECRET, issuer), 0);
	struct token_signer p = jwt_signer_port(&j);
	struct token_claims c = admin_claims();
	c.ver = INT64_MAX;
	c.iat = INT64_MIN;
	c.exp = INT64_MAX;
	char token[HEX_TOKEN_MAX];
	sign(&p, &c, token);
	struct token_claims out;
	accepted(&p, token, TOKEN_ACCESS, &out);
	assert_int_equal(out.ver, INT64_MAX);
	assert_int_equal(out.iat, INT64_MIN);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(init_refuses_short_secrets_and_bad_issuers),
	    T(sign_matches_an_independent_implementation),
	    T(verify_accepts_an_independent_token),
	    T(every_claim_round_trips),
	    T(expiry_is_exclusive),
	    T(wrong_issuer_is_refused),
	    T(wrong_type_is_refused),
	    T(alg_none_is_refused),
	    T(other_algorithms_are_refused),
	    T(header_must_be_a_plain_object),
	    T(payload_claims_must_have_their_types),
	    T(tampered_payload_is_refused),
	    T(tampered_signature_is_refused),
	    T(any_one_character_change_is_refused),
	    T(another_secret_is_refused),
	    T(wrong_number_of_parts_is_refused),
	    T(bad_base64_is_refused),
	    T(huge_tokens_are_refused),
	    T(verify_without_err_is_allowed),
	    T(sign_refuses_claims_that_are_not_ours),
	    T(sign_refuses_a_short_buffer),
	    cmocka_unit_test(longest_issuer_fits_the_cap),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}

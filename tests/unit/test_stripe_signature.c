/*
 * test_stripe_signature: Stripe-Signature verification against signatures made by an
 * independent implementation (Python's hmac), never by the code under test. Each
 * vector was printed by:
 *
 *   python3 -c 'import hmac,hashlib,sys; s,t,b=sys.argv[1:]; print(hmac.new(s.encode(),
 *     (t+"."+b).encode(), hashlib.sha256).hexdigest())' SECRET T BODY
 *
 * with SECRET, T and BODY as below (the NUL body with bytes, b'{"note":"a\x00b"}').
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/stripe/stripe_signature.h"

#define SECRET "whsec_test_5f6b1c0e9d8a7b6c5d4e3f2a1b0c9d8e"
#define BODY                                                                                       \
	"{\"id\":\"evt_3PgafyB7WZ01zgkW0v1vA9xY\",\"object\":\"event\",\"type\":\"payment_"        \
	"intent.succeeded\",\"created\":1700000000}"
#define NOW       1700000000
#define TOLERANCE 300

/* hmac(SECRET, "1700000000." BODY) */
#define SIG_VALID "1fc228ed05b0205791a5cf53568a410207636af34e72086765f8198e6cada1d7"
/* hmac("whsec_other_secret_000000000000000000", "1700000000." BODY) */
#define SIG_OTHER_SECRET "8d40b30bf4156b62428aee86608d9f667766f186628b59045b4d694d761a0135"
/* hmac(SECRET, "1699999699." BODY): 301 s old */
#define SIG_OLD "d4875eb57c57369b4a9e08534795e4b024c798053ce55abb8ae7cefc19fb858f"
/* hmac(SECRET, "1699999700." BODY): exactly 300 s old */
#define SIG_EDGE "9aa72255eaddfd511e11597664ffc5282493eaca7a4ad066ff6592b400cfecf4"
/* hmac(SECRET, "1700000301." BODY): 301 s in the future */
#define SIG_FUTURE "8b696edac0c34a3dfccab1f519508e3dada8d57a2929e618542879e744d87a26"
/* hmac(SECRET, b'1700000000.{"note":"a\x00b"}') */
#define SIG_NUL "79fb7df0433e972dbc3d44a9fc691fc740bac24bda0049c150ffab430566f03e"

#define MSG_MALFORMED "malformed Stripe-Signature header"
#define MSG_SIGNATURE "invalid signature"
#define MSG_TOLERANCE "timestamp outside the tolerance"

static enum hex_status verify_body(const char *header, const char *body, size_t len,
                                   struct hex_err *err)
{
	memset(err, 0, sizeof *err);
	return stripe_signature_verify(header, body, len, SECRET, NOW, TOLERANCE, err);
}

static enum hex_status verify(const char *header, struct hex_err *err)
{
	return verify_body(header, BODY, strlen(BODY), err);
}

static void expect_refused(const char *header, const char *message)
{
	struct hex_err err;
	print_message("header: %.80s\n", header != NULL ? header : "(null)");
	assert_int_equal(verify(header, &err), HEX_INVALID);
	assert_string_equal(err.message, message);
	assert_non_null(err.field);
	assert_string_equal(err.field, "Stripe-Signature");
}

static void valid_signature_passes(void **state)
{
	struct hex_err err;
	assert_int_equal(verify("t=1700000000,v1=" SIG_VALID, &err), HEX_OK);
}

static void tampered_body_fails(void **state)
{
	struct hex_err err;
	char body[] = BODY;
	body[strlen(body) - 2] = '1'; /* created ...0 -> ...1 */
	assert_int_equal(verify_body("t=1700000000,v1=" SIG_VALID, body, strlen(body), &err),
	                 HEX_INVALID);
	assert_string_equal(err.message, MSG_SIGNATURE);
	/* One byte more or less of the same body is a different message too. */
	assert_int_equal(verify_body("t=1700000000,v1=" SIG_VALID, BODY, strlen(BODY) - 1, &err),
	                 HEX_INVALID);
	assert_string_equal(err.message, MSG_SIGNATURE);
}

static void wrong_secret_fails(void **state)
{
	expect_refused("t=1700000000,v1=" SIG_OTHER_SECRET, MSG_SIGNATURE);
	struct hex_err err = {0};
	assert_int_equal(stripe_signature_verify("t=1700000000,v1=" SIG_VALID, BODY, strlen(BODY),
	                                         "whsec_other_secret_000000000000000000", NOW,
	                                         TOLERANCE, &err),
	                 HEX_INVALID);
	assert_string_equal(err.message, MSG_SIGNATURE);
}

static void signed_timestamp_is_what_counts(void **state)
{
	/* A valid MAC for another t cannot be moved to a fresh t. */
	expect_refused("t=1700000001,v1=" SIG_VALID, MSG_SIGNATURE);
}

static void old_and_future_timestamps_fail(void **state)
{
	expect_refused("t=1699999699,v1=" SIG_OLD, MSG_TOLERANCE);
	expect_refused("t=1700000301,v1=" SIG_FUTURE, MSG_TOLERANCE);
	struct hex_err err;
	assert_int_equal(verify("t=1699999700,v1=" SIG_EDGE, &err), HEX_OK);
	/* A wider tolerance accepts the old one. */
	assert_int_equal(stripe_signature_verify("t=1699999699,v1=" SIG_OLD, BODY, strlen(BODY),
	                                         SECRET, NOW, 301, &err),
	                 HEX_OK);
	/* A clock far away from any sane t does not overflow into acceptance. */
	assert_int_equal(stripe_signature_verify("t=1700000000,v1=" SIG_VALID, BODY, strlen(BODY),
	                                         SECRET, INT64_MIN, TOLERANCE, &err),
	                 HEX_INVALID);
	assert_string_equal(err.message, MSG_TOLERANCE);
	assert_int_equal(stripe_signature_verify("t=1700000000,v1=" SIG_VALID, BODY, strlen(BODY),
	                                         SECRET, INT64_MAX, TOLERANCE, &err),
	                 HEX_INVALID);
	assert_string_equal(err.message, MSG_TOLERANCE);
}

static void any_v1_may_match(void **state)
{
	struct hex_err err;
	assert_int_equal(
	    verify("t=1700000000,v1=" SIG_OTHER_SECRET ",v1=" SIG_VALID ",v1=00", &err), HEX_OK);
	assert_int_equal(verify("v1=" SIG_VALID ",t=1700000000", &err), HEX_OK);
	assert_int_equal(verify("t=1700000000, v1=" SIG_OTHER_SECRET ", v1=" SIG_VALID, &err),
	                 HEX_OK);
	expect_refused("t=1700000000,v1=" SIG_OTHER_SECRET ",v1=" SIG_OLD, MSG_SIGNATURE);
}

static void other_schemes_are_ignored(void **state)
{
	/* v0 holds a valid MAC, but only v1 is a scheme we trust. */
	expect_refused("t=1700000000,v0=" SIG_VALID, MSG_MALFORMED);
	expect_refused("t=1700000000,v0=" SIG_VALID ",v1=" SIG_OTHER_SECRET, MSG_SIGNATURE);
	struct hex_err err;
	assert_int_equal(verify("t=1700000000,v0=ff,v1=" SIG_VALID ",v2=zz", &err), HEX_OK);
}

static void signature_text_must_match_exactly(void **state)
{
	char upper[] = SIG_VALID;
	for (char *p = upper; *p != '\0'; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	char header[128];
	snprintf(header, sizeof header, "t=1700000000,v1=%s", upper);
	expect_refused(header, MSG_SIGNATURE);
	expect_refused("t=1700000000,v1=" SIG_VALID "0", MSG_SIGNATURE);
	expect_refused("t=1700000000,v1=", MSG_SIGNATURE);
}

static void malformed_headers_fail(void **state)
{
	static const char *const bad[] = {
	    "",
	    "garbage",
	    ",",
	    "=",
	    "v1=" SIG_VALID,                           /* no t */
	    "t=1700000000",                            /* no v1 */
	    "t=1700000000,v0=" SIG_VALID,              /* no v1 */
	    "t=abc,v1=" SIG_VALID,                     /* t not a number */
	    "t=,v1=" SIG_VALID,                        /* t empty */
	    "t=-1700000000,v1=" SIG_VALID,             /* t signed */
	    "t=1700000000.5,v1=" SIG_VALID,            /* t not an integer */
	    "t=99999999999999999999,v1=" SIG_VALID,    /* t overflows */
	    "t=1700000000,t=1700000000,v1=" SIG_VALID, /* t twice */
	    "t=1700000000,v1=" SIG_VALID ",",          /* empty element */
	    "t=1700000000,,v1=" SIG_VALID,             /* empty element */
	    "t=1700000000,v1" SIG_VALID,               /* no '=' */
	    "t=1700000000;v1=" SIG_VALID,              /* wrong separator */
	    "=1700000000,v1=" SIG_VALID,               /* no key */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		expect_refused(bad[i], MSG_MALFORMED);
	expect_refused(NULL, MSG_MALFORMED);
}

static void huge_header_fails_unread(void **state)
{
	/* A valid signature followed by padding past the limit is still refused. */
	size_t n = STRIPE_SIGNATURE_HEADER_MAX + 100;
	char *h = malloc(n + 1);
	assert_non_null(h);
	int k = snprintf(h, n + 1, "t=1700000000,v1=%s", SIG_VALID);
	for (size_t i = (size_t)k; i + 5 < n; i += 5)
		memcpy(h + i, ",v0=0", 5);
	h[n - 4] = '\0';
	expect_refused(h, MSG_MALFORMED);
	/* Just under the limit, the same header passes: the limit is what refused it. */
	h[STRIPE_SIGNATURE_HEADER_MAX - 10] = '\0';
	char *cut = strrchr(h, ',');
	*cut = '\0';
	struct hex_err err;
	assert_int_equal(verify(h, &err), HEX_OK);
	free(h);
}

static void body_with_nul_bytes_is_signed_whole(void **state)
{
	static const char body[] = "{\"note\":\"a\0b\"}";
	size_t len = sizeof body - 1;
	struct hex_err err;
	assert_int_equal(verify_body("t=1700000000,v1=" SIG_NUL, body, len, &err), HEX_OK);
	/* Stopping at the NUL, as a C-string API would, must not verify. */
	assert_int_equal(verify_body("t=1700000000,v1=" SIG_NUL, body, strlen(body), &err),
	                 HEX_INVALID);
	assert_string_equal(err.message, MSG_SIGNATURE);
}

static void missing_secret_is_our_fault(void **state)
{
	struct hex_err err = {0};
	assert_int_equal(stripe_signature_verify("t=1700000000,v1=" SIG_VALID, BODY, strlen(BODY),
	                                         "", NOW, TOLERANCE, &err),
	                 HEX_INTERNAL);
	assert_int_equal(stripe_signature_verify("t=1700000000,v1=" SIG_VALID, BODY, strlen(BODY),
	                                         NULL, NOW, TOLERANCE, &err),
	                 HEX_INTERNAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(valid_signature_passes),
	    cmocka_unit_test(tampered_body_fails),
	    cmocka_unit_test(wrong_secret_fails),
	    cmocka_unit_test(signed_timestamp_is_what_counts),
	    cmocka_unit_test(old_and_future_timestamps_fail),
	    cmocka_unit_test(any_v1_may_match),
	    cmocka_unit_test(other_schemes_are_ignored),
	    cmocka_unit_test(signature_text_must_match_exactly),
	    cmocka_unit_test(malformed_headers_fail),
	    cmocka_unit_test(huge_header_fails_unread),
	    cmocka_unit_test(body_with_nul_bytes_is_signed_whole),
	    cmocka_unit_test(missing_secret_is_our_fault),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

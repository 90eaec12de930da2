/*
 * fuzz_stripe_signature: the Stripe-Signature header parser and verifier
 * (stripe_signature_verify). The input is `<header>\n<body>`: the header as the HTTP
 * adapter hands it over (a C string), the body as raw bytes of an exact-size buffer.
 *
 * Properties: the fuzzed header gets one of the documented answers, and is never
 * accepted under two secrets at once (nothing but the MAC can make it pass); a header
 * made by our own signer over the body verifies while its timestamp is within the
 * tolerance and is refused outside it, or over any other body.
 */
#include "support/fuzz_input.h"

#include "adapters/crypto/hmac.h"
#include "adapters/stripe/stripe_signature.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET       "whsec_fuzz0123456789abcdefghijklmnop"
#define OTHER_SECRET "whsec_another_endpoint_secret_000000"
#define NOW          INT64_C(1700000000)
#define TOLERANCE    STRIPE_SIGNATURE_TOLERANCE_S

#define MSG_MALFORMED "malformed Stripe-Signature header"
#define MSG_SIGNATURE "invalid signature"
#define MSG_TOLERANCE "timestamp outside the tolerance"

static bool documented_refusal(enum hex_status st, const struct hex_err *err)
{
	return st == HEX_INVALID && err->field != NULL &&
	       strcmp(err->field, "Stripe-Signature") == 0 &&
	       (strcmp(err->message, MSG_MALFORMED) == 0 ||
	        strcmp(err->message, MSG_SIGNATURE) == 0 ||
	        strcmp(err->message, MSG_TOLERANCE) == 0);
}

static enum hex_status verify(const char *header, const char *body, size_t len, const char *secret,
                              struct hex_err *err)
{
	memset(err, 0, sizeof *err);
	return stripe_signature_verify(header, body, len, secret, NOW, TOLERANCE, err);
}

/* What Stripe (and our simulator) sends: v1 = HMAC-SHA256(secret, "<t>.<body>"). */
static void sign(int64_t t, const char *body, size_t len, char v1[2 * CRYPTO_HMAC_SHA256_LEN + 1])
{
	char prefix[32];
	int n = snprintf(prefix, sizeof prefix, "%" PRId64 ".", t);
	char *text = malloc((size_t)n + len + 1);
	if (text == NULL)
		abort();
	memcpy(text, prefix, (size_t)n);
	if (len > 0)
		memcpy(text + n, body, len);
	crypto_hmac_sha256_hex(SECRET, strlen(SECRET), text, (size_t)n + len, v1);
	free(text);
}

static void check_fuzzed_header(const char *header, const char *body, size_t len)
{
	struct hex_err err;
	enum hex_status st = verify(header, body, len, SECRET, &err);
	if (st != HEX_OK) {
		FUZZ_CHECK(documented_refusal(st, &err));
		return;
	}
	FUZZ_CHECK(verify(header, body, len, OTHER_SECRET, &err) != HEX_OK);
}

/* Our own header over body, its age taken from the input so that both sides of the
 * tolerance get tried; with a rolled secret's v1 and a v0 beside it, as Stripe sends. */
static void check_signed(const char *body, size_t len, const uint8_t *data, size_t size)
{
	int64_t age = size > 0 ? (int64_t)(data[0] % 64) * 10 - 320 : 0;
	int64_t t = NOW - age;
	char v1[2 * CRYPTO_HMAC_SHA256_LEN + 1];
	sign(t, body, len, v1);
	char header[256];
	snprintf(header, sizeof header,
	         "t=%" PRId64
	         ",v1=%064d,v1=%s,v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba8"
	         "16edb039989a39",
	         t, 0, v1);
	struct hex_err err;
	enum hex_status st = verify(header, body, len, SECRET, &err);
	if (age <= TOLERANCE && age >= -TOLERANCE) {
		FUZZ_CHECK(st == HEX_OK);
	} else {
		FUZZ_CHECK(st == HEX_INVALID && strcmp(err.message, MSG_TOLERANCE) == 0);
		return;
	}
	FUZZ_CHECK(verify(header, body, len, OTHER_SECRET, &err) == HEX_INVALID &&
	           strcmp(err.message, MSG_SIGNATURE) == 0);
	if (len == 0)
		return;
	/* The same header over a body one byte shorter, or one bit different. */
	char *other = fuzz_input_copy((const uint8_t *)body, len);
	FUZZ_CHECK(verify(header, other, len - 1, SECRET, &err) == HEX_INVALID &&
	           strcmp(err.message, MSG_SIGNATURE) == 0);
	other[len / 2] ^= 0x01;
	FUZZ_CHECK(verify(header, other, len, SECRET, &err) == HEX_INVALID &&
	           strcmp(err.message, MSG_SIGNATURE) == 0);
	free(other);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *head, *tail;
	size_t head_len, tail_len;
	fuzz_input_split(data, size, '\n', &head, &head_len, &tail, &tail_len);
	char *header = fuzz_input_cstr(head, head_len);
	char *body = fuzz_input_copy(tail, tail_len);
	check_fuzzed_header(header, body, tail_len);
	check_signed(body, tail_len, data, size);
	free(body);
	free(header);
	return 0;
}

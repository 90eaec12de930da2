/* test_crypto_base64url: RFC 4648 vectors in the URL alphabet, and strict decoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "adapters/crypto/base64url.h"

struct vector {
	const char *plain;
	const char *text;
};

/* RFC 4648 section 10, without the padding. */
static const struct vector rfc4648[] = {
    {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
    {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
};

static void encodes_rfc4648_vectors(void **state)
{
	for (size_t i = 0; i < sizeof rfc4648 / sizeof rfc4648[0]; i++) {
		char out[16];
		size_t n = strlen(rfc4648[i].plain);
		assert_true(base64url_encode(rfc4648[i].plain, n, out, sizeof out));
		assert_string_equal(out, rfc4648[i].text);
		assert_int_equal(base64url_encoded_len(n), strlen(rfc4648[i].text));
	}
}

static void decodes_rfc4648_vectors(void **state)
{
	for (size_t i = 0; i < sizeof rfc4648 / sizeof rfc4648[0]; i++) {
		unsigned char out[16];
		size_t n = 99;
		const char *t = rfc4648[i].text;
		assert_true(base64url_decode(t, strlen(t), out, sizeof out, &n));
		assert_int_equal(n, strlen(rfc4648[i].plain));
		assert_memory_equal(out, rfc4648[i].plain, n);
		assert_int_equal(base64url_decoded_len(strlen(t)), n);
	}
}

/* The two characters where base64url differs from base64: '-' for '+', '_' for '/'. */
static void uses_the_url_alphabet(void **state)
{
	static const unsigned char bytes[] = {0xfb, 0xef, 0xbe, 0xff, 0xff, 0xff, 0xfb, 0xff};
	char out[16];
	assert_true(base64url_encode(bytes, sizeof bytes, out, sizeof out));
	assert_string_equal(out, "----____-_8");

	unsigned char back[16];
	size_t n = 0;
	assert_true(base64url_decode(out, strlen(out), back, sizeof back, &n));
	assert_int_equal(n, sizeof bytes);
	assert_memory_equal(back, bytes, sizeof bytes);
}

static void round_trips_every_byte_and_length(void **state)
{
	unsigned char in[256];
	for (int i = 0; i < 256; i++)
		in[i] = (unsigned char)(255 - i);
	for (size_t len = 0; len <= sizeof in; len++) {
		char text[400];
		unsigned char back[256];
		size_t n = 0;
		assert_true(base64url_encode(in, len, text, sizeof text));
		assert_int_equal(strlen(text), base64url_encoded_len(len));
		assert_null(strchr(text, '='));
		assert_true(base64url_decode(text, strlen(text), back, sizeof back, &n));
		assert_int_equal(n, len);
		assert_memory_equal(back, in, len);
	}
}

static void encode_refuses_a_short_buffer(void **state)
{
	char out[4] = "xyz";
	/* "foo" needs 4 characters and the NUL. */
	assert_false(base64url_encode("foo", 3, out, sizeof out));
	assert_string_equal(out, "");
	char fits[5];
	assert_true(base64url_encode("foo", 3, fits, sizeof fits));
	assert_string_equal(fits, "Zm9v");
	assert_false(base64url_encode("", 0, NULL, 0));
}

static void decode_rejects(const char *text, size_t len)
{
	unsigned char out[64];
	size_t n = 0;
	if (base64url_decode(text, len, out, sizeof out, &n))
		fail_msg("accepted \"%.*s\"", (int)len, text);
}

static void decode_rejects_padding_and_foreign_characters(void **state)
{
	static const char *const bad[] = {
	    "Zg==", "Zm8=",       "Zm9v+w", "Zm9v/w", "Zm 9v", "Zm\n9",   "Zm.v",
	    "Zm=v", "\xc3\xa9Zg", "Zm9v*A", "====",   "Z=g",   "Zm9\x7f",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		decode_rejects(bad[i], strlen(bad[i]));
	/* A NUL inside the given length is a character, and not one of ours. */
	decode_rejects("Zm\0v", 4);
}

static void decode_rejects_impossible_lengths(void **state)
{
	decode_rejects("Z", 1);
	decode_rejects("Zm9vY", 5);
	decode_rejects("Zm9vYmFyZ", 9);
	/* All-zero bits would slip past the unused-bits check: the length alone refuses. */
	decode_rejects("A", 1);
	decode_rejects("Zm9vA", 5);
}

/* Each byte string has one text: set unused low bits would let a token vary unnoticed. */
static void decode_rejects_nonzero_unused_bits(void **state)
{
	decode_rejects("Zh", 2);      /* 'h' sets a bit below the 8 used ones */
	decode_rejects("Zm9", 3);     /* '9' = 61: an unused bit set */
	decode_rejects("Zm9vYmF", 7); /* 'F' = 5: low bit set */
	unsigned char out[4];
	size_t n = 0;
	assert_true(base64url_decode("Zg", 2, out, sizeof out, &n));
	assert_true(base64url_decode("Zm8", 3, out, sizeof out, &n));
}

static void decode_refuses_a_short_buffer(void **state)
{
	unsigned char out[6];
	size_t n = 0;
	assert_false(base64url_decode("Zm9vYmFy", 8, out, sizeof out - 1, &n));
	assert_true(base64url_decode("Zm9vYmFy", 8, out, sizeof out, &n));
	assert_int_equal(n, 6);
	assert_memory_equal(out, "foobar", 6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(encodes_rfc4648_vectors),
	    cmocka_unit_test(decodes_rfc4648_vectors),
	    cmocka_unit_test(uses_the_url_alphabet),
	    cmocka_unit_test(round_trips_every_byte_and_length),
	    cmocka_unit_test(encode_refuses_a_short_buffer),
	    cmocka_unit_test(decode_rejects_padding_and_foreign_characters),
	    cmocka_unit_test(decode_rejects_impossible_lengths),
	    cmocka_unit_test(decode_rejects_nonzero_unused_bits),
	    cmocka_unit_test(decode_refuses_a_short_buffer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

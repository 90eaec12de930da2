/* test_crypto_hmac: HMAC-SHA256 against RFC 4231, and the hex encoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "adapters/crypto/hmac.h"

static void hex_of_mac(const void *key, size_t keylen, const char *msg, char out[65])
{
	unsigned char mac[CRYPTO_HMAC_SHA256_LEN];
	crypto_hmac_sha256(key, keylen, msg, strlen(msg), mac);
	crypto_hmac_hex_encode(mac, sizeof mac, out);
}

/* RFC 4231 test case 1: a 20-byte key of 0x0b. */
static void rfc4231_case1(void **state)
{
	unsigned char key[20];
	memset(key, 0x0b, sizeof key);
	char hex[65];
	hex_of_mac(key, sizeof key, "Hi There", hex);
	assert_string_equal(hex,
	                    "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

/* RFC 4231 test case 2: a key shorter than the output ("Jefe"). */
static void rfc4231_case2(void **state)
{
	char hex[65];
	hex_of_mac("Jefe", 4, "what do ya want for nothing?", hex);
	assert_string_equal(hex,
	                    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

	char direct[65];
	crypto_hmac_sha256_hex("Jefe", 4, "what do ya want for nothing?", 28, direct);
	assert_string_equal(direct, hex);
}

/* RFC 4231 test case 6: a 131-byte key, longer than the block, is hashed first. */
static void rfc4231_case6(void **state)
{
	unsigned char key[131];
	memset(key, 0xaa, sizeof key);
	char hex[65];
	hex_of_mac(key, sizeof key, "Test Using Larger Than Block-Size Key - Hash Key First", hex);
	assert_string_equal(hex,
	                    "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void a_different_key_gives_a_different_mac(void **state)
{
	char a[65], b[65];
	hex_of_mac("Jefe", 4, "what do ya want for nothing?", a);
	hex_of_mac("Jeff", 4, "what do ya want for nothing?", b);
	assert_string_not_equal(a, b);
}

static void empty_key_and_message_are_allowed(void **state)
{
	/* HMAC-SHA256("", ""), a well-known value. */
	char hex[65];
	crypto_hmac_sha256_hex("", 0, "", 0, hex);
	assert_string_equal(hex,
	                    "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

static void hex_encode_is_lower_case_and_terminated(void **state)
{
	static const unsigned char in[] = {0x00, 0x0f, 0xa5, 0xff};
	char out[10];
	memset(out, 'x', sizeof out);
	crypto_hmac_hex_encode(in, sizeof in, out);
	assert_string_equal(out, "000fa5ff");
	crypto_hmac_hex_encode(in, 0, out);
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rfc4231_case1),
	    cmocka_unit_test(rfc4231_case2),
	    cmocka_unit_test(rfc4231_case6),
	    cmocka_unit_test(a_different_key_gives_a_different_mac),
	    cmocka_unit_test(empty_key_and_message_are_allowed),
	    cmocka_unit_test(hex_encode_is_lower_case_and_terminated),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* hmac.c: HMAC-SHA256 through OpenSSL's one-shot HMAC(), which is thread-safe. */
#include "adapters/crypto/hmac.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <limits.h>
#include <stdlib.h>

#include "core/logger.h"

void crypto_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len,
                        unsigned char out[CRYPTO_HMAC_SHA256_LEN])
{
	unsigned int outlen = 0;
	/* OpenSSL wants a non-NULL key pointer even for an empty key. */
	static const unsigned char empty[1];
	if (keylen > (size_t)INT_MAX ||
	    HMAC(EVP_sha256(), keylen ? key : empty, (int)keylen, msg ? msg : empty, len, out,
	         &outlen) == NULL ||
	    outlen != CRYPTO_HMAC_SHA256_LEN) {
		/* Only a broken libcrypto gets here; a wrong MAC would be worse than a stop. */
		log_error("hmac_failed", "HMAC-SHA256 failed inside OpenSSL");
		abort();
	}
}

void crypto_hmac_sha256_hex(const void *key, size_t keylen, const void *msg, size_t len,
                            char out[2 * CRYPTO_HMAC_SHA256_LEN + 1])
{
	unsigned char mac[CRYPTO_HMAC_SHA256_LEN];
	crypto_hmac_sha256(key, keylen, msg, len, mac);
	crypto_hmac_hex_encode(mac, sizeof mac, out);
}

void crypto_hmac_hex_encode(const void *in, size_t n, char *out)
{
	static const char digits[16] = "0123456789abcdef";
	const unsigned char *p = in;
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* sha256.c: SHA-256 through OpenSSL's EVP interface. */
#include "adapters/crypto/sha256.h"

#include "adapters/crypto/hmac.h"

#include <openssl/evp.h>
#include <stdlib.h>

void crypto_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0;
	if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != sizeof md)
		abort(); /* the library failing on memory: fatal by policy */
	crypto_hmac_hex_encode(md, sizeof md, out);
}

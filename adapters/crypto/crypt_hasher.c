/* crypt_hasher.c: yescrypt through crypt_gensalt_rn + crypt_rn. */
#include "adapters/crypto/crypt_hasher.h"

#include <crypt.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/crypto/hmac.h"
#include "adapters/crypto/random_ids.h"
#include "core/logger.h"
#include "core/xmalloc.h"

#define YESCRYPT_PREFIX "$y$"

void crypt_hasher_init(struct crypt_hasher *h, unsigned long cost)
{
	memset(h, 0, sizeof *h);
	h->cost = cost;
	pthread_mutex_init(&h->dummy_lock, NULL);
}

#define SHA512_HEX_LEN 128

/*
 * libxcrypt refuses phrases of CRYPT_MAX_PASSPHRASE_SIZE (512) bytes or more, and we
 * accept passwords up to HEX_PASSWORD_MAX (1024): those are first reduced to the hex of
 * their SHA-512, which keeps every byte significant. Shorter ones go in as they are, so
 * ordinary hashes stay plain yescrypt that any crypt(3) can check. NULL if the digest
 * fails.
 */
static const char *crypt_hasher_phrase(const char *password, char buf[SHA512_HEX_LEN + 1])
{
	size_t len = strlen(password);
	if (len < CRYPT_MAX_PASSPHRASE_SIZE)
		return password;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (!EVP_Digest(password, len, md, &n, EVP_sha512(), NULL) || n * 2 != SHA512_HEX_LEN)
		return NULL;
	crypto_hmac_hex_encode(md, n, buf);
	explicit_bzero(md, sizeof md);
	return buf;
}

/*
 * Runs crypt_rn with a heap crypt_data (32 KiB: too big for worker stacks) and copies
 * the result to out. HEX_UNAUTHENTICATED if libxcrypt rejects setting as malformed.
 */
static enum hex_status crypt_hasher_compute(const char *password, const char *setting, char *out,
                                            size_t out_len)
{
	enum hex_status st = HEX_INTERNAL;
	struct crypt_data *data = xcalloc(1, sizeof *data);
	char digest[SHA512_HEX_LEN + 1];
	const char *phrase = crypt_hasher_phrase(password, digest);
	if (phrase == NULL) {
		log_error("crypt_failed", "SHA-512 of a long password failed");
		goto out;
	}
	errno = 0;
	const char *res = crypt_rn(phrase, setting, data, (int)sizeof *data);
	if (res == NULL || res[0] == '*') {
		/* EINVAL is libxcrypt's word for a setting it cannot parse. */
		if (errno == EINVAL)
			st = HEX_UNAUTHENTICATED;
		else
			log_error("crypt_failed", "crypt_rn failed (errno %d)", errno);
		goto out;
	}
	if (!hex_strlcpy(out, res, out_len)) {
		log_error("crypt_failed", "password hash longer than %zu bytes", out_len - 1);
		goto out;
	}
	st = HEX_OK;
out:
	/* The scratch area holds key material derived from the password. */
	explicit_bzero(data, sizeof *data);
	explicit_bzero(digest, sizeof digest);
	free(data);
	return st;
}

static enum hex_status crypt_hasher_hash(void *self, const char *password, char *out,
                                         size_t out_len)
{
	struct crypt_hasher *h = self;
	if (password == NULL || strnlen(password, HEX_PASSWORD_MAX + 1) > HEX_PASSWORD_MAX)
		return HEX_INVALID;
	if (out_len == 0)
		return HEX_INTERNAL;
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	/* NULL random bytes: libxcrypt takes the salt from the kernel CSPRNG itself. */
	if (crypt_gensalt_rn(YESCRYPT_PREFIX, h->cost, NULL, 0, setting, sizeof setting) == NULL) {
		log_error("crypt_failed", "crypt_gensalt_rn failed for cost %lu (errno %d)",
		          h->cost, errno);
		return HEX_INTERNAL;
	}
	enum hex_status st = crypt_hasher_compute(password, setting, out, out_len);
	/* Our own fresh setting cannot be malformed: any refusal is the library's fault. */
	return st == HEX_OK ? HEX_OK : HEX_INTERNAL;
}

static enum hex_status crypt_hasher_verify(void *self, const char *password, const char *hash)
{
	if (password == NULL || hash == NULL ||
	    strnlen(password, HEX_PASSWORD_MAX + 1) > HEX_PASSWORD_MAX)
		return HEX_UNAUTHENTICATED;
	/*
	 * Only our own method: libxcrypt would also accept DES, MD5 and other weak
	 * settings, and a stored value like "plain" parses as a DES salt.
	 */
	size_t len = strnlen(hash, HEX_HASH_MAX);
	if (len >= HEX_HASH_MAX || strncmp(hash, YESCRYPT_PREFIX, strlen(YESCRYPT_PREFIX)) != 0)
		return HEX_UNAUTHENTICATED;
	char again[HEX_HASH_MAX];
	enum hex_status st = crypt_hasher_compute(password, hash, again, sizeof again);
	if (st == HEX_UNAUTHENTICATED)
		/* A corrupted row, or yescrypt out of memory: it reports both as EINVAL. */
		log_warn("password_hash_unusable",
		         "a stored yescrypt hash was refused by libxcrypt");
	if (st != HEX_OK)
		return st;
	bool same = hex_ct_equal(again, strlen(again), hash, len);
	explicit_bzero(again, sizeof again);
	return same ? HEX_OK : HEX_UNAUTHENTICATED;
}

static const struct password_hasher_ops crypt_hasher_ops = {
    .hash = crypt_hasher_hash,
    .verify = crypt_hasher_verify,
};

struct password_hasher crypt_hasher_port(struct crypt_hasher *h)
{
	return (struct password_hasher){.ops = &crypt_hasher_ops, .self = h};
}

const char *crypt_hasher_dummy_hash(struct crypt_hasher *h)
{
	const char *res = NULL;
	pthread_mutex_lock(&h->dummy_lock);
	if (h->dummy[0] == '\0') {
		char password[33];
		crypto_random_hex(password, 16);
		enum hex_status st = crypt_hasher_hash(h, password, h->dummy, sizeof h->dummy);
		explicit_bzero(password, sizeof password);
		if (st != HEX_OK) {
			h->dummy[0] = '\0';
			goto out;
		}
	}
	res = h->dummy;
out:
	pthread_mutex_unlock(&h->dummy_lock);
	return res;
}

/* test_crypto_hasher: yescrypt hashing and verification through the port. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <crypt.h>

#include "adapters/crypto/crypt_hasher.h"
#include "core/user.h"

/* Cost 1 keeps the suite fast; the prefixes are libxcrypt's encoding of each cost. */
#define FAST_COST   1
#define FAST_PREFIX "$y$j75$"

struct fixture {
	struct crypt_hasher h;
	struct password_hasher port;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	crypt_hasher_init(&f->h, FAST_COST);
	f->port = crypt_hasher_port(&f->h);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	free(*state);
	return 0;
}

static enum hex_status hash(struct password_hasher *p, const char *pw, char *out, size_t n)
{
	return p->ops->hash(p->self, pw, out, n);
}

static enum hex_status verify(struct password_hasher *p, const char *pw, const char *h)
{
	return p->ops->verify(p->self, pw, h);
}

static void hash_then_verify_round_trips(void **state)
{
	struct fixture *f = *state;
	char h[HEX_HASH_MAX];
	assert_int_equal(hash(&f->port, "correct horse battery", h, sizeof h), HEX_OK);
	assert_true(strncmp(h, FAST_PREFIX, strlen(FAST_PREFIX)) == 0);
	assert_null(strstr(h, "correct horse"));
	assert_int_equal(verify(&f->port, "correct horse battery", h), HEX_OK);
}

static void wrong_password_is_unauthenticated(void **state)
{
	struct fixture *f = *state;
	char h[HEX_HASH_MAX];
	assert_int_equal(hash(&f->port, "correct horse battery", h, sizeof h), HEX_OK);
	assert_int_equal(verify(&f->port, "correct horse batterY", h), HEX_UNAUTHENTICATED);
	assert_int_equal(verify(&f->port, "correct horse batter", h), HEX_UNAUTHENTICATED);
	assert_int_equal(verify(&f->port, "", h), HEX_UNAUTHENTICATED);
	assert_int_equal(verify(&f->port, NULL, h), HEX_UNAUTHENTICATED);
}

static void same_password_hashes_differently(void **state)
{
	struct fixture *f = *state;
	char a[HEX_HASH_MAX], b[HEX_HASH_MAX];
	assert_int_equal(hash(&f->port, "same password", a, sizeof a), HEX_OK);
	assert_int_equal(hash(&f->port, "same password", b, sizeof b), HEX_OK);
	assert_string_not_equal(a, b);
	assert_int_equal(verify(&f->port, "same password", a), HEX_OK);
	assert_int_equal(verify(&f->port, "same password", b), HEX_OK);
}

static void hash_with_cost(unsigned long cost, const char *prefix, char out[HEX_HASH_MAX])
{
	struct crypt_hasher h;
	crypt_hasher_init(&h, cost);
	struct password_hasher p = crypt_hasher_port(&h);
	assert_int_equal(hash(&p, "a password", out, HEX_HASH_MAX), HEX_OK);
	if (strncmp(out, prefix, strlen(prefix)) != 0)
		fail_msg("cost %lu gave %s, wanted prefix %s", cost, out, prefix);
}

static void cost_is_carried_by_the_hash(void **state)
{
	char h[HEX_HASH_MAX];
	hash_with_cost(1, "$y$j75$", h);
	hash_with_cost(2, "$y$j85$", h);
	hash_with_cost(3, "$y$j7T$", h);
	hash_with_cost(0, "$y$j9T$", h); /* library default, cost 5 */
}

/* A hasher set to a new cost still accepts passwords hashed at the old one. */
static void verify_uses_the_stored_cost(void **state)
{
	struct fixture *f = *state;
	char h[HEX_HASH_MAX];
	hash_with_cost(3, "$y$j7T$", h);
	assert_int_equal(verify(&f->port, "a password", h), HEX_OK);
	assert_int_equal(verify(&f->port, "another one", h), HEX_UNAUTHENTICATED);
}

static void invalid_or_foreign_stored_hashes_are_unauthenticated(void **state)
{
	struct fixture *f = *state;
	char good[HEX_HASH_MAX];
	assert_int_equal(hash(&f->port, "pw-pw-pw-pw", good, sizeof good), HEX_OK);
	char truncated[HEX_HASH_MAX];
	snprintf(truncated, sizeof truncated, "%.*s", (int)strlen(good) - 1, good);
	char extended[HEX_HASH_MAX + 1];
	snprintf(extended, sizeof extended, "%sA", good);
	char huge[600];
	memset(huge, 'A', sizeof huge - 1);
	huge[sizeof huge - 1] = '\0';
	memcpy(huge, good, strlen(good));

	const char *const bad[] = {
	    "*0",
	    "*1",
	    "",
	    "plain",
	    "$y$",
	    "$y$zzz$abc$def",
	    "$y$j9T",
	    "$Y$j75$abc$def",
	    /* Real hashes of "pw-pw-pw-pw" by other methods (DES, MD5, SHA-512). */
	    "pwKIyfA01XwQw",
	    "$1$abcdefgh$mj08RfUIRrVQC24UkiaZ.1",
	    "$6$abcdefgh$pYrjlkkFjzn5/RxcCmYqlHv/MQFrhbH2hIBD6/"
	    "azzOmyjpBrks.hha2iSMxHgPgEu0ZYL2PtxmlQZmDeU8o4o1",
	    truncated,
	    extended,
	    huge,
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		enum hex_status st = verify(&f->port, "pw-pw-pw-pw", bad[i]);
		if (st != HEX_UNAUTHENTICATED)
			fail_msg("stored hash \"%s\" gave %s", bad[i], hex_status_name(st));
	}
	assert_int_equal(verify(&f->port, "pw-pw-pw-pw", NULL), HEX_UNAUTHENTICATED);
	assert_int_equal(verify(&f->port, "pw-pw-pw-pw", good), HEX_OK);
}

static void password_length_limit(void **state)
{
	struct fixture *f = *state;
	char *pw = malloc(HEX_PASSWORD_MAX + 2);
	memset(pw, 'p', HEX_PASSWORD_MAX + 1);
	pw[HEX_PASSWORD_MAX + 1] = '\0';
	char h[HEX_HASH_MAX];
	assert_int_equal(hash(&f->port, pw, h, sizeof h), HEX_INVALID);

	pw[HEX_PASSWORD_MAX] = '\0'; /* exactly the maximum is fine */
	assert_int_equal(hash(&f->port, pw, h, sizeof h), HEX_OK);
	assert_int_equal(verify(&f->port, pw, h), HEX_OK);

	/* One byte more can never match a stored hash, even one sharing the prefix. */
	pw[HEX_PASSWORD_MAX] = 'p';
	assert_int_equal(verify(&f->port, pw, h), HEX_UNAUTHENTICATED);
	assert_int_equal(hash(&f->port, NULL, h, sizeof h), HEX_INVALID);
	free(pw);
}

/* libxcrypt alone stops at 511 bytes; every byte of a longer password still counts. */
static void long_passwords_keep_every_byte(void **state)
{
	struct fixture *f = *state;
	static const size_t lengths[] = {511, 512, 600, HEX_PASSWORD_MAX};
	for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
		size_t n = lengths[i];
		char *pw = malloc(n + 1);
		memset(pw, 'q', n);
		pw[n] = '\0';
		char h[HEX_HASH_MAX];
		assert_int_equal(hash(&f->port, pw, h, sizeof h), HEX_OK);
		assert_int_equal(verify(&f->port, pw, h), HEX_OK);
		pw[n - 1] = 'r';
		assert_int_equal(verify(&f->port, pw, h), HEX_UNAUTHENTICATED);
		pw[0] = 'r';
		pw[n - 1] = 'q';
		assert_int_equal(verify(&f->port, pw, h), HEX_UNAUTHENTICATED);
		pw[n - 1] = '\0';
		assert_int_equal(verify(&f->port, pw, h), HEX_UNAUTHENTICATED);
		free(pw);
	}
}

/* Ordinary passwords give plain yescrypt hashes: crypt(3) itself accepts them. */
static void hashes_are_standard_crypt_strings(void **state)
{
	struct fixture *f = *state;
	char h[HEX_HASH_MAX];
	assert_int_equal(hash(&f->port, "correct horse battery", h, sizeof h), HEX_OK);
	struct crypt_data *cd = calloc(1, sizeof *cd);
	const char *again = crypt_r("correct horse battery", h, cd);
	assert_non_null(again);
	assert_string_equal(again, h);
	free(cd);
}

static void library_failures_are_internal(void **state)
{
	struct fixture *f = *state;
	char small[16];
	assert_int_equal(hash(&f->port, "a password", small, sizeof small), HEX_INTERNAL);
	assert_int_equal(hash(&f->port, "a password", small, 0), HEX_INTERNAL);

	struct crypt_hasher h;
	crypt_hasher_init(&h, CRYPT_HASHER_COST_MAX + 1);
	struct password_hasher p = crypt_hasher_port(&h);
	char out[HEX_HASH_MAX];
	assert_int_equal(hash(&p, "a password", out, sizeof out), HEX_INTERNAL);
	assert_null(crypt_hasher_dummy_hash(&h));
}

static void dummy_hash_is_valid_stable_and_matches_nothing(void **state)
{
	struct fixture *f = *state;
	const char *d = crypt_hasher_dummy_hash(&f->h);
	assert_non_null(d);
	assert_true(strncmp(d, FAST_PREFIX, strlen(FAST_PREFIX)) == 0);
	char first[HEX_HASH_MAX];
	strcpy(first, d);
	assert_string_equal(crypt_hasher_dummy_hash(&f->h), first); /* computed once */
	/* Unauthenticated, not internal: the hash is well formed and costs a full KDF. */
	assert_int_equal(verify(&f->port, "any password", d), HEX_UNAUTHENTICATED);

	struct crypt_hasher other;
	crypt_hasher_init(&other, FAST_COST);
	const char *e = crypt_hasher_dummy_hash(&other);
	assert_non_null(e);
	assert_string_not_equal(d, e);
}

struct worker {
	struct password_hasher *port;
	int id;
	int failures;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < 10; i++) {
		char pw[32], h[HEX_HASH_MAX];
		snprintf(pw, sizeof pw, "password-%d-%d", w->id, i);
		if (hash(w->port, pw, h, sizeof h) != HEX_OK || verify(w->port, pw, h) != HEX_OK)
			w->failures++;
		pw[0] = 'P';
		if (verify(w->port, pw, h) != HEX_UNAUTHENTICATED)
			w->failures++;
	}
	return NULL;
}

/* The daemon shares one hasher between its KDF threads. */
static void one_hasher_serves_many_threads(void **state)
{
	struct fixture *f = *state;
	pthread_t t[4];
	struct worker w[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){.port = &f->port, .id = i};
		assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].failures, 0);
	}
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(hash_then_verify_round_trips),
	    T(wrong_password_is_unauthenticated),
	    T(same_password_hashes_differently),
	    cmocka_unit_test(cost_is_carried_by_the_hash),
	    T(verify_uses_the_stored_cost),
	    T(invalid_or_foreign_stored_hashes_are_unauthenticated),
	    T(password_length_limit),
	    T(long_passwords_keep_every_byte),
	    T(hashes_are_standard_crypt_strings),
	    T(library_failures_are_internal),
	    T(dummy_hash_is_valid_stable_and_matches_nothing),
	    T(one_hasher_serves_many_threads),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_crypto_ids: UUIDv7 ids, random bytes and hex. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapters/crypto/random_ids.h"
#include "core/user.h"

#define MANY 10000

static uint64_t id_ms(const char *id)
{
	char hex[13];
	memcpy(hex, id, 8);
	memcpy(hex + 8, id + 9, 4);
	hex[12] = '\0';
	return strtoull(hex, NULL, 16);
}

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void id_is_canonical_v7(void **state)
{
	struct id_source ids = random_ids_port();
	for (int n = 0; n < 1000; n++) {
		char id[HEX_ID_LEN + 1];
		memset(id, 'x', sizeof id);
		ids.ops->new_id(ids.self, id);
		assert_int_equal(strlen(id), HEX_ID_LEN);
		assert_true(user_id_valid(id));
		for (int i = 0; i < HEX_ID_LEN; i++) {
			if (i == 8 || i == 13 || i == 18 || i == 23)
				assert_int_equal(id[i], '-');
			else
				assert_true(isdigit((unsigned char)id[i]) ||
				            (id[i] >= 'a' && id[i] <= 'f'));
		}
		assert_int_equal(id[14], '7');           /* version */
		assert_non_null(strchr("89ab", id[19])); /* variant 10xx */
	}
}

static void time_prefix_is_now_in_milliseconds(void **state)
{
	uint64_t before = wall_ms();
	char id[HEX_ID_LEN + 1];
	random_ids_new(id);
	uint64_t after = wall_ms();
	uint64_t ms = id_ms(id);
	assert_true(ms >= before);
	assert_true(ms <= after);
}

static int compare_ids(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void ids_are_unique_and_ordered_by_time(void **state)
{
	char(*ids)[HEX_ID_LEN + 1] = calloc(MANY, sizeof *ids);
	assert_non_null(ids);
	for (int i = 0; i < MANY; i++) {
		random_ids_new(ids[i]);
		if (i > 0)
			assert_true(id_ms(ids[i]) >= id_ms(ids[i - 1]));
	}
	qsort(ids, MANY, sizeof *ids, compare_ids);
	for (int i = 1; i < MANY; i++)
		assert_string_not_equal(ids[i], ids[i - 1]);
	free(ids);
}

/* Two ids in the same millisecond still differ in their 74 random bits. */
static void random_part_differs_within_a_millisecond(void **state)
{
	char a[HEX_ID_LEN + 1], b[HEX_ID_LEN + 1];
	random_ids_new(a);
	random_ids_new(b);
	assert_string_not_equal(a + 14, b + 14);
}

static void random_bytes_are_filled_and_differ(void **state)
{
	unsigned char a[64], b[64], zero[64];
	memset(a, 0, sizeof a);
	memset(b, 0, sizeof b);
	memset(zero, 0, sizeof zero);
	crypto_random_bytes(a, sizeof a);
	crypto_random_bytes(b, sizeof b);
	assert_memory_not_equal(a, zero, sizeof a);
	assert_memory_not_equal(a, b, sizeof a);
	crypto_random_bytes(a, 0);
}

static void random_hex_has_two_digits_per_byte(void **state)
{
	char a[34], b[34];
	memset(a, 'x', sizeof a);
	crypto_random_hex(a, 16);
	crypto_random_hex(b, 16);
	assert_int_equal(strlen(a), 32);
	for (int i = 0; i < 32; i++)
		assert_non_null(strchr("0123456789abcdef", a[i]));
	assert_string_not_equal(a, b);
	crypto_random_hex(a, 0);
	assert_string_equal(a, "");

	/* Longer than one internal chunk: every byte is still random hex. */
	char big[2 * 100 + 2];
	memset(big, 'x', sizeof big);
	crypto_random_hex(big, 100);
	assert_int_equal(strlen(big), 200);
	assert_int_equal(strspn(big, "0123456789abcdef"), 200);
	assert_int_equal(big[201], 'x');
	assert_memory_not_equal(big, big + 100, 64);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(id_is_canonical_v7),
	    cmocka_unit_test(time_prefix_is_now_in_milliseconds),
	    cmocka_unit_test(ids_are_unique_and_ordered_by_time),
	    cmocka_unit_test(random_part_differs_within_a_millisecond),
	    cmocka_unit_test(random_bytes_are_filled_and_differ),
	    cmocka_unit_test(random_hex_has_two_digits_per_byte),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_crypto_clock: the system clock port tells wall time in microseconds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <time.h>

#include "adapters/crypto/system_clock.h"

static void now_is_wall_time_in_microseconds(void **state)
{
	struct clock c = system_clock_port();
	int64_t before = (int64_t)time(NULL);
	int64_t us = c.ops->now_us(c.self);
	int64_t after = (int64_t)time(NULL);
	assert_true(us / 1000000 >= before);
	assert_true(us / 1000000 <= after);
}

static void time_moves_forward(void **state)
{
	struct clock c = system_clock_port();
	int64_t a = c.ops->now_us(c.self);
	struct timespec pause = {.tv_sec = 0, .tv_nsec = 2000000};
	nanosleep(&pause, NULL);
	int64_t b = c.ops->now_us(c.self);
	assert_true(b - a >= 2000);
	assert_true(b - a < 1000000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(now_is_wall_time_in_microseconds),
	    cmocka_unit_test(time_moves_forward),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_stripe_form: form encoding with Stripe's bracket nesting, and the sticky failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "adapters/stripe/stripe_form.h"

static void expect_body(struct stripe_form *f, const char *want)
{
	size_t len = 0;
	const char *body = stripe_form_body(f, &len);
	assert_false(stripe_form_failed(f));
	assert_non_null(body);
	assert_string_equal(body, want);
	assert_int_equal(len, strlen(want));
}

static void empty_form_is_empty_body(void **state)
{
	struct stripe_form *f = stripe_form_new();
	expect_body(f, "");
	stripe_form_free(f);
	stripe_form_free(NULL);
}

static void nested_keys_keep_their_brackets(void **state)
{
	struct stripe_form *f = stripe_form_new();
	stripe_form_add_int(f, "amount", 1099);
	stripe_form_add(f, "currency", "usd");
	stripe_form_add_bool(f, "automatic_payment_methods[enabled]", true);
	stripe_form_add(f, "metadata[payment_id]", "0b7c1e6a-3f1d-4c2e-9a8b-5d6e7f8a9b0c");
	stripe_form_add(f, "line_items[0][price_data][currency]", "usd");
	stripe_form_add(f, "line_items[0][price_data][product_data][name]", "Membership");
	stripe_form_add_int(f, "line_items[0][quantity]", 1);
	stripe_form_add(f, "expand[]", "latest_charge");
	stripe_form_add_bool(f, "livemode", false);
	expect_body(f, "amount=1099&currency=usd&automatic_payment_methods[enabled]=true"
	               "&metadata[payment_id]=0b7c1e6a-3f1d-4c2e-9a8b-5d6e7f8a9b0c"
	               "&line_items[0][price_data][currency]=usd"
	               "&line_items[0][price_data][product_data][name]=Membership"
	               "&line_items[0][quantity]=1&expand[]=latest_charge&livemode=false");
	stripe_form_free(f);
}

static void special_characters_are_percent_encoded(void **state)
{
	struct stripe_form *f = stripe_form_new();
	stripe_form_add(f, "success_url",
	                "https://shop.example/ok?session={CHECKOUT_SESSION_ID}&a=1");
	stripe_form_add(f, "description", "Tea & biscuits = 100% fun + more/less #1");
	stripe_form_add(f, "metadata[note with space]", "caf\xc3\xa9 ~-._*'\"\n\r\t");
	stripe_form_add(f, "metadata[a&b=c]", "[x]");
	stripe_form_add(f, "empty", "");
	stripe_form_add_int(f, "negative", INT64_MIN);
	expect_body(f,
	            "success_url=https%3A%2F%2Fshop.example%2Fok%3Fsession%3D%7BCHECKOUT_SESSION_"
	            "ID%7D%26a%3D1"
	            "&description=Tea+%26+biscuits+%3D+100%25+fun+%2B+more%2Fless+%231"
	            "&metadata[note+with+space]=caf%C3%A9+~-._%2A%27%22%0A%0D%09"
	            "&metadata[a%26b%3Dc]=%5Bx%5D"
	            "&empty="
	            "&negative=-9223372036854775808");
	stripe_form_free(f);
}

static void bad_keys_fail_the_form_for_good(void **state)
{
	static const char *const bad[] = {
	    "", "[x]", "a[", "a]", "a[b", "a[b]c", "a[b]]", "a[[b]]", "a b\n", "a\x01", "a[b\x7f]",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		print_message("key %zu\n", i);
		struct stripe_form *f = stripe_form_new();
		stripe_form_add(f, "amount", "1");
		assert_false(stripe_form_failed(f));
		stripe_form_add(f, bad[i], "v");
		assert_true(stripe_form_failed(f));
		/* Later good adds do not clear it: the one check at the end sees it. */
		stripe_form_add(f, "currency", "usd");
		assert_true(stripe_form_failed(f));
		size_t len = 123;
		assert_null(stripe_form_body(f, &len));
		stripe_form_free(f);
	}
}

static void null_key_or_value_fails(void **state)
{
	struct stripe_form *f = stripe_form_new();
	stripe_form_add(f, "a", NULL);
	assert_true(stripe_form_failed(f));
	stripe_form_free(f);
	f = stripe_form_new();
	stripe_form_add(f, NULL, "v");
	assert_true(stripe_form_failed(f));
	stripe_form_free(f);
}

static void body_over_the_cap_fails(void **state)
{
	static char big[STRIPE_FORM_MAX / 2];
	memset(big, 'x', sizeof big - 1);
	struct stripe_form *f = stripe_form_new();
	stripe_form_add(f, "a", big);
	assert_false(stripe_form_failed(f));
	stripe_form_add(f, "b", big);
	assert_true(stripe_form_failed(f));
	assert_null(stripe_form_body(f, NULL));
	stripe_form_free(f);

	/* Encoding triples a byte: the cap counts encoded bytes. */
	static char spaces[STRIPE_FORM_MAX / 3 + 10];
	memset(spaces, '/', sizeof spaces - 1);
	f = stripe_form_new();
	stripe_form_add(f, "a", spaces);
	assert_true(stripe_form_failed(f));
	stripe_form_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(empty_form_is_empty_body),
	    cmocka_unit_test(nested_keys_keep_their_brackets),
	    cmocka_unit_test(special_characters_are_percent_encoded),
	    cmocka_unit_test(bad_keys_fail_the_form_for_good),
	    cmocka_unit_test(null_key_or_value_fails),
	    cmocka_unit_test(body_over_the_cap_fails),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_admin_reply: the outcome of an admin command and its one reply line: ok with
 * data, every status's code, the generic text of internal failures, code and field
 * overrides, a second outcome ignored, a call without outcome, and a reply that cannot
 * be encoded still being one valid line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "adapters/admin/admin_call.h"

static const struct admin_verb verb = {"DLQ REPLAY", "DLQ REPLAY <id>", "replay", true, 1, 1, NULL};

static void call_init(struct admin_call *c)
{
	memset(c, 0, sizeof *c);
	c->verb = &verb;
}

/* The reply line: exactly one JSON object on one line; returned parsed. */
static json_t *reply_of(struct admin_call *c)
{
	char *line = admin_reply_line(c);
	assert_non_null(line);
	assert_null(strchr(line, '\n'));
	json_error_t e;
	json_t *o = json_loads(line, 0, &e);
	if (o == NULL)
		fail_msg("not JSON: %s (%s)", line, e.text);
	assert_true(json_is_object(o));
	char *compact = json_dumps(o, JSON_COMPACT); /* no blank between tokens */
	assert_string_equal(line, compact);
	free(compact);
	free(line);
	return o;
}

static void assert_failure(json_t *o, const char *code, const char *error, const char *field)
{
	assert_true(json_is_false(json_object_get(o, "ok")));
	assert_string_equal(json_string_value(json_object_get(o, "code")), code);
	if (error != NULL)
		assert_string_equal(json_string_value(json_object_get(o, "error")), error);
	if (field != NULL)
		assert_string_equal(json_string_value(json_object_get(o, "field")), field);
	else
		assert_null(json_object_get(o, "field"));
	assert_null(json_object_get(o, "data"));
	assert_int_equal(json_object_size(o), field != NULL ? 4 : 3);
}

static void ok_carries_data(void **state)
{
	struct admin_call c;
	call_init(&c);
	admin_ok(&c, json_pack("{s:i}", "deleted", 3));
	assert_true(c.done);
	assert_int_equal(c.status, HEX_OK);
	char *line = admin_reply_line(&c);
	assert_string_equal(line, "{\"ok\":true,\"data\":{\"deleted\":3}}");
	free(line);
	json_decref(c.data);
}

static void ok_without_data_is_null(void **state)
{
	struct admin_call c;
	call_init(&c);
	admin_ok(&c, NULL);
	char *line = admin_reply_line(&c);
	assert_string_equal(line, "{\"ok\":true,\"data\":null}");
	free(line);
	json_decref(c.data);
}

static void statuses_map_to_codes(void **state)
{
	static const struct {
		enum hex_status st;
		const char *code;
	} cases[] = {
	    {HEX_INVALID, "invalid_argument"},
	    {HEX_NOT_FOUND, "not_found"},
	    {HEX_CONFLICT, "conflict"},
	    {HEX_UNAVAILABLE, "unavailable"},
	    {HEX_UNAUTHENTICATED, "unauthorized"},
	    {HEX_FORBIDDEN, "unauthorized"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct admin_call c;
		call_init(&c);
		struct hex_err err = {0};
		hex_fail(&err, cases[i].st, NULL, "detail %zu", i);
		admin_fail(&c, cases[i].st, &err);
		assert_true(c.done);
		assert_int_equal(c.status, cases[i].st);
		json_t *o = reply_of(&c);
		char want[32];
		snprintf(want, sizeof want, "detail %zu", i);
		assert_failure(o, cases[i].code, want, NULL);
		json_decref(o);
	}
}

static void failure_without_message_gets_one(void **state)
{
	struct admin_call c;
	call_init(&c);
	admin_fail(&c, HEX_NOT_FOUND, NULL);
	json_t *o = reply_of(&c);
	assert_failure(o, "not_found", "not found", NULL);
	json_decref(o);
}

static void field_is_named(void **state)
{
	struct admin_call c;
	call_init(&c);
	struct hex_err err = {0};
	hex_fail(&err, HEX_INVALID, "limit", "LIMIT must be 1 to 100");
	admin_fail(&c, HEX_INVALID, &err);
	json_t *o = reply_of(&c);
	assert_failure(o, "invalid_argument", "LIMIT must be 1 to 100", "limit");
	json_decref(o);
}

static void internal_detail_is_hidden(void **state)
{
	static const enum hex_status hidden[] = {HEX_INTERNAL, HEX_RATE_LIMITED, HEX_OK};
	for (size_t i = 0; i < sizeof hidden / sizeof hidden[0]; i++) {
		struct admin_call c;
		call_init(&c);
		struct hex_err err = {0};
		hex_fail(&err, HEX_INTERNAL, "secret_field", "SELECT failed: relation x");
		admin_fail(&c, hidden[i], &err);
		assert_int_not_equal(c.status, HEX_OK); /* a failure with HEX_OK stays a failure */
		char *line = admin_reply_line(&c);
		assert_null(strstr(line, "relation"));
		assert_null(strstr(line, "secret_field"));
		free(line);
		json_t *o = reply_of(&c);
		assert_failure(o, "internal", "internal error", NULL);
		json_decref(o);
	}
}

static void err_code_overrides_status(void **state)
{
	struct admin_call c;
	call_init(&c);
	struct hex_err err = {0};
	hex_fail(&err, HEX_CONFLICT, NULL, "already replayed");
	err.code = "already_resolved";
	admin_fail(&c, HEX_CONFLICT, &err);
	json_t *o = reply_of(&c);
	assert_failure(o, "already_resolved", "already replayed", NULL);
	json_decref(o);
}

static void fail_code_sets_code_field_and_text(void **state)
{
	struct admin_call c;
	call_init(&c);
	admin_fail_code(&c, "invalid_argument", "id", "usage: %s", verb.usage);
	assert_true(c.done);
	assert_int_equal(c.status, HEX_INVALID);
	json_t *o = reply_of(&c);
	assert_failure(o, "invalid_argument", "usage: DLQ REPLAY <id>", "id");
	json_decref(o);

	call_init(&c);
	admin_fail_code(&c, "not_found", NULL, "no dead letter %d", 7);
	assert_int_equal(c.status, HEX_NOT_FOUND);
	o = reply_of(&c);
	assert_failure(o, "not_found", "no dead letter 7", NULL);
	json_decref(o);

	call_init(&c);
	admin_fail_code(&c, "busy", NULL, "retry");
	assert_int_not_equal(c.status, HEX_OK);
	o = reply_of(&c);
	assert_failure(o, "busy", "retry", NULL);
	json_decref(o);
}

static void first_outcome_stands(void **state)
{
	struct admin_call c;
	call_init(&c);
	admin_ok(&c, json_string("first"));
	admin_fail_code(&c, "conflict", NULL, "second");
	admin_fail(&c, HEX_NOT_FOUND, NULL);
	admin_ok(&c, json_string("third")); /* freed, not leaked (ASan) */
	char *line = admin_reply_line(&c);
	assert_string_equal(line, "{\"ok\":true,\"data\":\"first\"}");
	free(line);
	json_decref(c.data);

	call_init(&c);
	admin_fail_code(&c, "conflict", NULL, "first");
	admin_ok(&c, json_string("late"));
	assert_null(c.data);
	json_t *o = reply_of(&c);
	assert_failure(o, "conflict", "first", NULL);
	json_decref(o);
}

static void no_outcome_is_internal(void **state)
{
	struct admin_call c;
	call_init(&c);
	json_t *o = reply_of(&c);
	assert_failure(o, "internal", "internal error", NULL);
	json_decref(o);
}

static void unencodable_reply_is_still_a_line(void **state)
{
	struct admin_call c;
	call_init(&c);
	admin_fail_code(&c, "not_found", NULL, "no user \xff\xfe");
	json_t *o = reply_of(&c);
	assert_failure(o, "internal", "internal error", NULL);
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(ok_carries_data),
	    cmocka_unit_test(ok_without_data_is_null),
	    cmocka_unit_test(statuses_map_to_codes),
	    cmocka_unit_test(failure_without_message_gets_one),
	    cmocka_unit_test(field_is_named),
	    cmocka_unit_test(internal_detail_is_hidden),
	    cmocka_unit_test(err_code_overrides_status),
	    cmocka_unit_test(fail_code_sets_code_field_and_text),
	    cmocka_unit_test(first_outcome_stands),
	    cmocka_unit_test(no_outcome_is_internal),
	    cmocka_unit_test(unencodable_reply_is_still_a_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

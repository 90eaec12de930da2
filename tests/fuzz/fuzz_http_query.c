/*
 * fuzz_http_query: query strings as list routes read them: http_query_get() for the
 * parameters they know, ?limit= (http_query_limit) and ?since= / ?until=
 * (http_query_time). The input is the raw query string, a C string as libevent gives it.
 *
 * Properties: a limit is accepted only from 1 to HEX_LIST_MAX, 20 when absent; a time is
 * present exactly when its parameter is, a refusal names the parameter, and an accepted
 * time that we print as RFC 3339 reads back as the same instant.
 */
#include "support/fuzz_input.h"

#include "adapters/http/http_query.h"
#include "adapters/json/json_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* json_time_format() writes four-digit years only within these (microseconds). */
#define YEAR_1000_US INT64_C(-30610224000000000)
#define YEAR_9999_US INT64_C(253402300799999999)

static const char *const params[] = {"email",  "membership", "user_id", "q",    "status",
                                     "cursor", "limit",      "since",   "until"};

static void check_limit(const struct http_exchange *x)
{
	int limit = -1;
	struct hex_err err = {0};
	char *raw = http_query_get(x, "limit");
	enum hex_status st = http_query_limit(x, &limit, &err);
	if (st == HEX_OK) {
		FUZZ_CHECK(limit >= 1 && limit <= HEX_LIST_MAX);
		FUZZ_CHECK(raw != NULL || limit == 20);
	} else {
		FUZZ_CHECK(st == HEX_INVALID && raw != NULL);
		FUZZ_CHECK(err.field != NULL && strcmp(err.field, "limit") == 0);
	}
	free(raw);
}

/* The instant us, printed as we print timestamps, parses back to itself. */
static void check_time_round_trip(const char *name, int64_t us)
{
	if (us < YEAR_1000_US || us > YEAR_9999_US)
		return;
	char text[JSON_TIME_LEN], query[64];
	json_time_format(us, text);
	snprintf(query, sizeof query, "%s=%s", name, text);
	struct http_exchange x = {.query = query};
	struct hex_err err = {0};
	bool present = false;
	int64_t again = 0;
	FUZZ_CHECK(http_query_time(&x, name, &present, &again, &err) == HEX_OK);
	FUZZ_CHECK(present && again == us);
}

static void check_time(const struct http_exchange *x, const char *name)
{
	bool present = true;
	int64_t us = 0;
	struct hex_err err = {0};
	char *raw = http_query_get(x, name);
	enum hex_status st = http_query_time(x, name, &present, &us, &err);
	if (st == HEX_OK) {
		FUZZ_CHECK(present == (raw != NULL));
		if (present)
			check_time_round_trip(name, us);
	} else {
		FUZZ_CHECK(st == HEX_INVALID && raw != NULL && !present);
		FUZZ_CHECK(err.field != NULL && strcmp(err.field, name) == 0);
	}
	free(raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *query = fuzz_input_cstr(data, size);
	struct http_exchange x = {.query = query};
	for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
		free(http_query_get(&x, params[i]));
	check_limit(&x);
	check_time(&x, "since");
	check_time(&x, "until");
	free(query);
	return 0;
}

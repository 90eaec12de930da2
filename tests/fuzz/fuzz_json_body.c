/*
 * fuzz_json_body: JSON request bodies as the HTTP adapter decodes them: json_body_parse()
 * on the raw bytes, then the members each route reads (json_body_string / json_body_int),
 * in the handlers' order.
 *
 * Properties: a body is accepted only as an object whose strings hold no NUL and which
 * survives a dump and reload unchanged; a member read is accepted only when it has the
 * type asked for (or is absent and optional), and a refusal names the member.
 */
#include "support/fuzz_input.h"

#include "adapters/json/json_body.h"

#include <stdlib.h>
#include <string.h>

enum member_type { MEMBER_STRING, MEMBER_INT };

struct member {
	const char *name;
	enum member_type type;
	bool required;
};

#define MEMBERS_MAX 4

/* What each JSON route reads (adapters/http/http_*.c), in order. */
static const struct {
	const char *route;
	struct member members[MEMBERS_MAX];
} routes[] = {
    {"POST /v1/users", {{"email", MEMBER_STRING, true}, {"password", MEMBER_STRING, true}}},
    {"PUT /v1/users", {{"email", MEMBER_STRING, false}, {"password", MEMBER_STRING, false}}},
    {"POST /v1/login", {{"email", MEMBER_STRING, true}, {"password", MEMBER_STRING, true}}},
    {"POST /v1/token/refresh", {{"refresh_token", MEMBER_STRING, true}}},
    {"POST /v1/messages", {{"body", MEMBER_STRING, true}}},
    {"POST /v1/membership/webhooks",
     {{"event", MEMBER_STRING, true},
      {"user_id", MEMBER_STRING, true},
      {"event_id", MEMBER_STRING, false},
      {"membership", MEMBER_STRING, false}}},
    {"POST /v2/payments",
     {{"amount", MEMBER_INT, true},
      {"currency", MEMBER_STRING, true},
      {"purpose", MEMBER_STRING, true}}},
    {"POST /v2/wallet/transfers",
     {{"to_user_id", MEMBER_STRING, true},
      {"amount", MEMBER_INT, true},
      {"currency", MEMBER_STRING, true}}},
};

/* Every string in v (keys included) is a C string: no NUL inside its length. */
static bool no_nul_strings(json_t *v)
{
	const char *key;
	size_t key_len, i;
	json_t *item;
	if (json_is_string(v))
		return strlen(json_string_value(v)) == json_string_length(v);
	if (json_is_object(v)) {
		json_object_keylen_foreach(v, key, key_len,
		                           item) if (strlen(key) != key_len ||
		                                     !no_nul_strings(item)) return false;
		return true;
	}
	if (json_is_array(v)) {
		json_array_foreach(v, i, item) if (!no_nul_strings(item)) return false;
	}
	return true;
}

static void check_member(json_t *obj, const struct member *m, enum hex_status st,
                         const struct hex_err *err, bool got_value)
{
	json_t *v = json_object_get(obj, m->name);
	if (st != HEX_OK) {
		FUZZ_CHECK(st == HEX_INVALID);
		FUZZ_CHECK(err->field != NULL && strcmp(err->field, m->name) == 0);
		FUZZ_CHECK(err->message[0] != '\0');
		/* Refused only when required and absent, or present with the wrong type
		 * (null included). */
		FUZZ_CHECK(v == NULL                  ? m->required
		           : m->type == MEMBER_STRING ? !json_is_string(v)
		                                      : !json_is_integer(v));
		return;
	}
	if (v == NULL) {
		FUZZ_CHECK(!m->required && !got_value);
		return;
	}
	FUZZ_CHECK(got_value);
	FUZZ_CHECK(m->type == MEMBER_STRING ? json_is_string(v) : json_is_integer(v));
}

static void read_route(json_t *obj, const struct member *members)
{
	for (int i = 0; i < MEMBERS_MAX && members[i].name != NULL; i++) {
		const struct member *m = &members[i];
		struct hex_err err = {0};
		enum hex_status st;
		bool got_value;
		if (m->type == MEMBER_STRING) {
			const char *s = NULL;
			st = json_body_string(obj, m->name, m->required, &s, &err);
			got_value = s != NULL;
			if (s != NULL)
				FUZZ_CHECK(s == json_string_value(json_object_get(obj, m->name)));
		} else {
			int64_t n = -1;
			const int64_t untouched = -1;
			st = json_body_int(obj, m->name, m->required, &n, &err);
			json_t *v = json_object_get(obj, m->name);
			got_value = st == HEX_OK && v != NULL;
			if (got_value)
				FUZZ_CHECK(n == (int64_t)json_integer_value(v));
			else if (st == HEX_OK)
				FUZZ_CHECK(n == untouched); /* absent: the caller's default stays */
		}
		check_member(obj, m, st, &err, got_value);
		if (st != HEX_OK)
			return; /* handlers answer the first bad member */
	}
}

/* A dump of what we accepted reads back as the same document: replies echo it. */
static void check_round_trip(json_t *obj)
{
	char *text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
	FUZZ_CHECK(text != NULL);
	json_t *again = NULL;
	struct hex_err err = {0};
	FUZZ_CHECK(json_body_parse(text, strlen(text), &again, &err) == HEX_OK);
	FUZZ_CHECK(json_equal(obj, again));
	json_decref(again);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body = fuzz_input_copy(data, size);
	json_t *obj = (json_t *)1; /* must be reset by the parser, whatever it answers */
	struct hex_err err = {0};
	enum hex_status st = json_body_parse(body, size, &obj, &err);
	if (st != HEX_OK) {
		FUZZ_CHECK(st == HEX_INVALID && obj == NULL);
		FUZZ_CHECK(err.field != NULL && strcmp(err.field, "body") == 0);
		FUZZ_CHECK(err.message[0] != '\0');
		goto out;
	}
	FUZZ_CHECK(json_is_object(obj));
	FUZZ_CHECK(no_nul_strings(obj));
	check_round_trip(obj);
	for (size_t r = 0; r < sizeof routes / sizeof routes[0]; r++)
		read_route(obj, routes[r].members);
out:
	json_decref(obj);
	free(body);
	return 0;
}

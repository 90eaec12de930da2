/*
 * fuzz_http_cursor: the opaque list cursors of ?cursor= (http_cursor_decode and
 * http_cursor_encode). The first input byte picks the list kind; the rest is tried both as
 * cursor text as a client sends it and as the text inside the base64url, so that the
 * fuzzer reaches the inner grammar directly.
 *
 * Properties: a cursor is accepted only in the one form we write: decoding it and
 * encoding the result again gives the same text (a client cannot vary it); what we
 * encode decodes to the same values, and only for its own kind; a refusal names "cursor".
 */
#include "support/fuzz_input.h"

#include "adapters/crypto/base64url.h"
#include "adapters/http/http_query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CURSOR_TEXT_MAX 160 /* http_cursor_encode()'s out size */
#define RAW_MAX         108 /* what encodes to the longest text decode reads (144) */

static const char kinds[] = {'u', 'm', 'p', 'e'};

/* Decodes text as kind; if accepted, our encoder must write exactly text. */
static void check_canonical(char kind, const char *text)
{
	int64_t ts = 0;
	char id[HEX_ID_LEN + 1] = "";
	uint64_t tag = 0;
	struct hex_err err = {0};
	enum hex_status st = http_cursor_decode(kind, text, &ts, id, &tag, &err);
	if (st != HEX_OK) {
		FUZZ_CHECK(st == HEX_INVALID);
		FUZZ_CHECK(err.field != NULL && strcmp(err.field, "cursor") == 0);
		return;
	}
	char again[CURSOR_TEXT_MAX];
	http_cursor_encode(kind, ts, id, tag, again, sizeof again);
	if (strcmp(again, text) != 0)
		fprintf(stderr, "fuzz_http_cursor: accepted %s, which we write as %s\n", text,
		        again);
	FUZZ_CHECK(strcmp(again, text) == 0);
}

static uint64_t take_u64(const uint8_t *data, size_t size, size_t *at)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++, (*at)++)
		v = v << 8 | (*at < size ? data[*at] : 0);
	return v;
}

/* A cursor made from input bytes decodes to what went in, for its own kind only. */
static void check_round_trip(size_t k, const uint8_t *data, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t at = 1;
	int64_t ts = (int64_t)take_u64(data, size, &at);
	uint64_t tag = take_u64(data, size, &at);
	char id[HEX_ID_LEN + 1];
	for (int i = 0; i < HEX_ID_LEN; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		id[i] = dash ? '-' : hex[(at < size ? data[at] : 0) & 15];
		at++;
	}
	id[HEX_ID_LEN] = '\0';
	char text[CURSOR_TEXT_MAX];
	http_cursor_encode(kinds[k], ts, id, tag, text, sizeof text);

	int64_t ts2 = 0;
	uint64_t tag2 = 0;
	char id2[HEX_ID_LEN + 1] = "";
	struct hex_err err = {0};
	FUZZ_CHECK(http_cursor_decode(kinds[k], text, &ts2, id2, &tag2, &err) == HEX_OK);
	FUZZ_CHECK(ts2 == ts && tag2 == tag && strcmp(id2, id) == 0);
	char other = kinds[(k + 1) % sizeof kinds];
	FUZZ_CHECK(http_cursor_decode(other, text, &ts2, id2, &tag2, &err) == HEX_INVALID);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	size_t k = data[0] % sizeof kinds;
	char *text = fuzz_input_cstr(data + 1, size - 1);
	check_canonical(kinds[k], text);
	free(text);

	size_t raw_len = size - 1 < RAW_MAX ? size - 1 : RAW_MAX;
	char *raw = fuzz_input_copy(data + 1, raw_len);
	char inner[CURSOR_TEXT_MAX];
	FUZZ_CHECK(base64url_encode(raw, raw_len, inner, sizeof inner));
	check_canonical(kinds[k], inner);
	free(raw);

	check_round_trip(k, data, size);
	return 0;
}

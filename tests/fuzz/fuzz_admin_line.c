/*
 * fuzz_admin_line: admin-port command lines through admin_line_split(), from an
 * exact-size buffer (the admin loop passes the line without its newline).
 *
 * Properties: an accepted line gives at most ADMIN_ARGS_MAX words, each UTF-8 text that a
 * JSON reply can carry; quoting every word again (with \" and \\) and joining them by
 * spaces splits back into the same words. A refused line leaves no word allocated.
 */
#include "support/fuzz_input.h"

#include "adapters/admin/admin_line.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* The words, each in double quotes with " and \ escaped, separated by one space. */
static char *quote_all(int argc, char *const argv[], size_t *len)
{
	size_t cap = 1;
	for (int i = 0; i < argc; i++)
		cap += 2 * strlen(argv[i]) + 3;
	char *line = malloc(cap);
	if (line == NULL)
		abort();
	size_t n = 0;
	for (int i = 0; i < argc; i++) {
		if (i > 0)
			line[n++] = ' ';
		line[n++] = '"';
		for (const char *p = argv[i]; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				line[n++] = '\\';
			line[n++] = *p;
		}
		line[n++] = '"';
	}
	line[n] = '\0';
	*len = n;
	return line;
}

static void check_words(int argc, char *const argv[], size_t size)
{
	FUZZ_CHECK(argc >= 0 && argc <= ADMIN_ARGS_MAX);
	for (int i = 0; i < argc; i++) {
		FUZZ_CHECK(argv[i] != NULL && strlen(argv[i]) <= size);
		json_t *s = json_string(argv[i]); /* NULL when not valid UTF-8 */
		FUZZ_CHECK(s != NULL);
		json_decref(s);
	}
	for (int i = argc; i < ADMIN_ARGS_MAX; i++)
		FUZZ_CHECK(argv[i] == NULL);
}

static void check_requoted(int argc, char *const argv[])
{
	size_t len = 0;
	char *line = quote_all(argc, argv, &len);
	char *exact = fuzz_input_copy((const uint8_t *)line, len);
	char *again[ADMIN_ARGS_MAX] = {0};
	int argc2 = -1;
	struct hex_err err = {0};
	FUZZ_CHECK(admin_line_split(exact, len, &argc2, again, &err) == HEX_OK);
	FUZZ_CHECK(argc2 == argc);
	for (int i = 0; i < argc; i++)
		FUZZ_CHECK(strcmp(again[i], argv[i]) == 0);
	admin_line_free(argc2, again);
	free(exact);
	free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = fuzz_input_copy(data, size);
	char *argv[ADMIN_ARGS_MAX] = {0};
	int argc = -1;
	struct hex_err err = {0};
	enum hex_status st = admin_line_split(line, size, &argc, argv, &err);
	if (st == HEX_OK) {
		check_words(argc, argv, size);
		check_requoted(argc, argv);
		admin_line_free(argc, argv);
	} else {
		FUZZ_CHECK(st == HEX_INVALID && argc == 0 && err.message[0] != '\0');
		for (int i = 0; i < ADMIN_ARGS_MAX; i++)
			FUZZ_CHECK(argv[i] == NULL);
	}
	free(line);
	return 0;
}

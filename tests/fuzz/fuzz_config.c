/*
 * fuzz_config: the hexd.conf parser and checks, through config_load_text() (the same
 * line reader config_load() uses on a file), from an exact-size buffer.
 *
 * Properties: a refusal is one non-empty line of text; an accepted file, written back as
 * `key=value` lines (what hexd --print-config shows, secrets included), loads again to
 * the very same values: what was accepted is stable.
 */
#include "support/fuzz_input.h"

#include "daemon/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

/* The file name of each key, in enum config_key order, as config_print_effective() lists. */
static char *key_names[CFG_KEY_COUNT];

/* HEX_* variables would override the file: the target must see the file alone. */
static void clear_hex_environment(void)
{
	for (bool again = true; again;) {
		again = false;
		for (char **e = environ; *e != NULL; e++) {
			if (strncmp(*e, "HEX_", 4) != 0)
				continue;
			char *name = strndup(*e, strcspn(*e, "="));
			unsetenv(name);
			free(name);
			again = true; /* environ changed under us: start over */
			break;
		}
	}
}

static void read_key_names(void)
{
	struct config cfg;
	char msg[512];
	if (!config_load_text(&cfg, "defaults", NULL, 0, msg, sizeof msg))
		fuzz_input_fail(__FILE__, msg);
	char *listing = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&listing, &len);
	config_print_effective(&cfg, f);
	fclose(f);
	config_free(&cfg);
	char *save = NULL;
	int k = 0;
	for (char *line = strtok_r(listing, "\n", &save); line != NULL && k < CFG_KEY_COUNT;
	     line = strtok_r(NULL, "\n", &save))
		key_names[k++] = strndup(line, strcspn(line, " "));
	free(listing);
	if (k != CFG_KEY_COUNT)
		fuzz_input_fail(__FILE__, "config_print_effective() does not list every key");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	clear_hex_environment();
	read_key_names();
	return 0;
}

/* `key=value` lines: never longer than the line each value came from. */
static char *write_back(const struct config *cfg, size_t *len)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len);
	for (int k = 0; k < CFG_KEY_COUNT; k++)
		fprintf(f, "%s=%s\n", key_names[k], config_str(cfg, (enum config_key)k));
	fclose(f);
	return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_input_copy(data, size);
	struct config cfg, again;
	char msg[512] = "";
	bool ok = config_load_text(&cfg, "fuzz.conf", text, size, msg, sizeof msg);
	if (!ok) {
		FUZZ_CHECK(msg[0] != '\0' && strchr(msg, '\n') == NULL);
		goto out;
	}
	size_t len = 0;
	char *copy = write_back(&cfg, &len);
	bool ok_again = config_load_text(&again, "written-back.conf", copy, len, msg, sizeof msg);
	if (!ok_again)
		fprintf(stderr, "fuzz_config: written back, refused: %s\n", msg);
	FUZZ_CHECK(ok_again);
	for (int k = 0; k < CFG_KEY_COUNT; k++)
		FUZZ_CHECK(strcmp(config_str(&cfg, (enum config_key)k),
		                  config_str(&again, (enum config_key)k)) == 0);
	config_free(&again);
	free(copy);
out:
	config_free(&cfg);
	free(text);
	return 0;
}

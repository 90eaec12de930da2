/* shell_command.c: one command line through the admin client, its outcome printed. */
#include "tui/shell.h"

#include <stdlib.h>

#include "tui/table.h"

/* The protocol code a failure of hexctl's own is reported with under --json. */
static const char *const failure_codes[HEX_STATUS_COUNT] = {
    [HEX_INVALID] = "invalid_argument",
    [HEX_UNAUTHENTICATED] = "unauthorized",
    [HEX_UNAVAILABLE] = "unavailable",
};

static void print_json_line(FILE *out, const json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (s != NULL)
		fprintf(out, "%s\n", s);
	free(s);
	fflush(out);
}

void shell_command_print_failure(const struct shell_options *o, enum hex_status st,
                                 const struct hex_err *err)
{
	if (!o->json) {
		fprintf(stderr, "hexctl: %s\n", err->message);
		return;
	}
	const char *code =
	    (unsigned)st < HEX_STATUS_COUNT && failure_codes[st] ? failure_codes[st] : "internal";
	json_t *obj = json_pack("{s:b,s:s,s:s}", "ok", 0, "error", err->message, "code", code);
	print_json_line(stderr, obj);
	json_decref(obj);
}

void shell_command_print_event(const json_t *event, const struct shell_options *o)
{
	if (o->json) {
		print_json_line(stdout, event);
		return;
	}
	const char *name = json_string_value(json_object_get(event, "event"));
	char *data = json_dumps(json_object_get(event, "data"), JSON_COMPACT | JSON_ENCODE_ANY);
	/* json_dumps escapes control characters, so the line is safe for a terminal */
	printf("[%s] %s\n", name != NULL ? name : "?", data != NULL ? data : "null");
	free(data);
	fflush(stdout);
}

bool shell_command_drain_events(struct admin_client *c, const struct shell_options *o)
{
	json_t *ev = NULL;
	enum hex_status st;
	while ((st = admin_client_next_event(c, 0, &ev)) == HEX_OK) {
		shell_command_print_event(ev, o);
		json_decref(ev);
	}
	return st != HEX_UNAVAILABLE;
}

static void print_error_reply(const json_t *reply, const struct shell_options *o)
{
	if (o->json) {
		print_json_line(stderr, reply);
		return;
	}
	const char *text = json_string_value(json_object_get(reply, "error"));
	const char *code = json_string_value(json_object_get(reply, "code"));
	const char *field = json_string_value(json_object_get(reply, "field"));
	fprintf(stderr, "error: %s (%s%s%s)\n", text != NULL ? text : "(no message)",
	        code != NULL ? code : "no code", field != NULL ? ", field " : "",
	        field != NULL ? field : "");
}

static void print_ok_reply(const json_t *data, const struct shell_options *o, shell_printer print)
{
	if (o->json) {
		print_json_line(stdout, data);
		return;
	}
	(print != NULL ? print : table_print)(stdout, data, table_width(stdout));
	fflush(stdout);
}

/* hexd went away while the client was idle (a restart): nothing was sent yet. */
static int reconnect(struct admin_client *c, const struct shell_options *o)
{
	struct hex_err err = {0};
	enum hex_status st = admin_client_connect(c, &err);
	if (st != HEX_OK) {
		shell_command_print_failure(o, st, &err);
		return HEXCTL_EXIT_UNREACHABLE;
	}
	fprintf(stderr, "hexctl: hexd at %s had closed the connection; reconnected\n",
	        admin_client_target(c));
	return HEXCTL_EXIT_OK;
}

int shell_command_run(struct admin_client *c, const char *line, const struct shell_options *o,
                      shell_printer print)
{
	json_t *reply = NULL;
	struct hex_err err = {0};
	int rc = HEXCTL_EXIT_OK;
	if (!shell_command_drain_events(c, o)) {
		rc = reconnect(c, o);
		if (rc != HEXCTL_EXIT_OK)
			goto out;
	}
	enum hex_status st = admin_client_call(c, line, o->timeout_ms, &reply, &err);
	if (st != HEX_OK) {
		shell_command_print_failure(o, st, &err);
		rc = st == HEX_INVALID ? HEXCTL_EXIT_FAILED : HEXCTL_EXIT_UNREACHABLE;
		goto out;
	}
	/* events that came before the reply are printed before it */
	(void)shell_command_drain_events(c, o);
	if (!json_is_true(json_object_get(reply, "ok"))) {
		print_error_reply(reply, o);
		rc = HEXCTL_EXIT_FAILED;
		goto out;
	}
	const json_t *data = json_object_get(reply, "data");
	if (data == NULL)
		data = json_null();
	if (o->on_data != NULL)
		o->on_data(data);
	print_ok_reply(data, o, print);
out:
	json_decref(reply);
	return rc;
}

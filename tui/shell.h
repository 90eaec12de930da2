/*
 * shell: hexctl's command runner. shell_run is the readline shell (interactive) or a
 * script reader (one command per line); shell_command_run runs one command line for
 * both and for one-shot `hexctl <verb> ...`: it reconnects when hexd went away while
 * idle, prints the reply (a table, or JSON with --json) and maps the outcome to
 * hexctl's exit status. shell_complete.c is the Tab completion behind the readline loop.
 */
#ifndef HEX_TUI_SHELL_H
#define HEX_TUI_SHELL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "tui/admin_client.h"

/* hexctl's exit statuses; a script returns the worst it met. */
enum hexctl_exit {
	HEXCTL_EXIT_OK = 0,
	HEXCTL_EXIT_FAILED = 1,      /* a command got an error reply */
	HEXCTL_EXIT_USAGE = 2,       /* bad options or arguments to hexctl itself */
	HEXCTL_EXIT_UNREACHABLE = 3, /* cannot connect, token refused, connection lost */
};

#define SHELL_DEFAULT_TIMEOUT_MS 30000

struct shell_options {
	bool json;       /* ok: the data as one JSON line on stdout; errors: JSON on stderr */
	bool keep_going; /* scripts: run every line even after a failed one */
	int timeout_ms;  /* for each reply */
	FILE *script;    /* shell_run reads commands from it; NULL: interactive readline */
	/* Called with the data of every ok reply (the shell remembers ids); may be NULL. */
	void (*on_data)(const json_t *data);
};

/* Prints the data of an ok reply for people. */
typedef void (*shell_printer)(FILE *out, const json_t *data, int width);

/*
 * The shell: interactive when o->script is NULL (prompt "hexctl <target>> ", history in
 * ~/.hexctl_history, Tab completion, reconnects when hexd restarts), else reads o->script
 * to its end (blank lines and # comments skipped) and stops at the first failure unless
 * o->keep_going. c is connected. Returns an enum hexctl_exit value.
 */
int shell_run(struct admin_client *c, const struct shell_options *o);

/*
 * Runs one command line (as typed: the server parses quotes) and prints its outcome:
 * queued events first, then the reply (print, or table_print when NULL; --json prints
 * raw). Reconnects first when hexd closed the connection while idle, and says so on
 * stderr. Returns an enum hexctl_exit value.
 */
int shell_command_run(struct admin_client *c, const char *line, const struct shell_options *o,
                      shell_printer print);

/* Prints queued and already-arrived events (one line each); false once disconnected. */
bool shell_command_drain_events(struct admin_client *c, const struct shell_options *o);

/* Prints one event line ({"event","data"}): raw with --json, else "[name] data". */
void shell_command_print_event(const json_t *event, const struct shell_options *o);

/* Prints a failure hexctl met itself (not an error reply), as text or as JSON. */
void shell_command_print_failure(const struct shell_options *o, enum hex_status st,
                                 const struct hex_err *err);

/* HELP's data for people: usage and summary per verb, then the shell's own words. */
void shell_print_help(FILE *out, const json_t *data, int width);

/* Tab completion (shell_complete.c). Readline hooks carry no user data, so this keeps one
 * process-wide set: verbs from HELP, the shell's words, and ids seen in recent replies. */
void shell_complete_install(const char *const *builtin_words);
void shell_complete_set_verbs(const json_t *help_data);
/* Remembers every string under a key "id" or "*_id" in data, most recent first. */
void shell_complete_note(const json_t *data);
/* Frees everything the completion holds. */
void shell_complete_clear(void);

#endif

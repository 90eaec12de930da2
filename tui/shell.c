/* shell.c: the readline shell and the script reader of hexctl. */
#include "tui/shell.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "core/xmalloc.h"
#include "tui/table.h"

#define HISTORY_FILE "/.hexctl_history"
#define HISTORY_MAX  1000

struct shell {
	struct admin_client *client;
	const struct shell_options *opts;
	long lineno; /* of the script */
	int worst;   /* the worst exit status met so far */
	bool done;   /* exit, quit, Ctrl-D or the end of the script */
};

/* ---- the shell's own words: one table for dispatch, help and completion */

struct shell_builtin {
	const char *name;
	const char *usage;
	const char *summary;
	int (*run)(struct shell *sh, const char *args);
};

static void print_shell_words(FILE *out);

static int builtin_help(struct shell *sh, const char *args)
{
	char *line = args[0] != '\0' ? xasprintf("HELP %s", args) : xstrdup("HELP");
	int rc = shell_command_run(sh->client, line, sh->opts, shell_print_help);
	if (rc == HEXCTL_EXIT_OK && args[0] == '\0' && !sh->opts->json && sh->opts->script == NULL)
		print_shell_words(stdout);
	free(line);
	return rc;
}

static int builtin_exit(struct shell *sh, const char *args)
{
	sh->done = true;
	return HEXCTL_EXIT_OK;
}

static const struct shell_builtin shell_builtins[] = {
    {"help", "help [VERB]", "the verbs hexd knows, or one verb's usage", builtin_help},
    {"exit", "exit", "leave the shell (also Ctrl-D)", builtin_exit},
    {"quit", "quit", "leave the shell", builtin_exit},
};
#define BUILTIN_COUNT (sizeof shell_builtins / sizeof shell_builtins[0])

static const char *const builtin_words[] = {"help", "exit", "quit", NULL};

/* The builtin the line's first word names (any case), with *args after it; or NULL. */
static const struct shell_builtin *builtin_find(const char *line, const char **args)
{
	size_t n = strcspn(line, " \t");
	for (size_t i = 0; i < BUILTIN_COUNT; i++) {
		if (strlen(shell_builtins[i].name) == n &&
		    strncasecmp(shell_builtins[i].name, line, n) == 0) {
			*args = line + n + strspn(line + n, " \t");
			return &shell_builtins[i];
		}
	}
	return NULL;
}

void shell_print_help(FILE *out, const json_t *data, int width)
{
	if (!json_is_array(data)) {
		table_print(out, data, width);
		return;
	}
	int usage_w = 0;
	size_t i;
	json_t *verb;
	json_array_foreach(data, i, verb)
	{
		const char *u = json_string_value(json_object_get(verb, "usage"));
		if (u != NULL && (int)strlen(u) > usage_w)
			usage_w = (int)strlen(u);
	}
	json_array_foreach(data, i, verb)
	{
		const char *u = json_string_value(json_object_get(verb, "usage"));
		const char *s = json_string_value(json_object_get(verb, "summary"));
		bool mutating = json_is_true(json_object_get(verb, "mutating"));
		fprintf(out, "  %-*s  %s%s\n", usage_w, u != NULL ? u : "?", s != NULL ? s : "",
		        mutating ? " (mutating, audited)" : "");
	}
}

static void print_shell_words(FILE *out)
{
	fprintf(out, "\nIn the shell:\n");
	for (size_t b = 0; b < BUILTIN_COUNT; b++)
		fprintf(out, "  %-12s  %s\n", shell_builtins[b].usage, shell_builtins[b].summary);
	fprintf(out, "  %-12s  %s\n", "Tab",
	        "completes verbs, options and ids from recent replies");
	fflush(out);
}

/* ---- one line, from either mode */

/* Trims line in place; NULL for a blank line or a # comment. */
static char *command_text(char *line)
{
	while (isspace((unsigned char)*line))
		line++;
	size_t n = strlen(line);
	while (n > 0 && isspace((unsigned char)line[n - 1]))
		line[--n] = '\0';
	return n == 0 || line[0] == '#' ? NULL : line;
}

static void shell_line(struct shell *sh, char *raw)
{
	char *line = command_text(raw);
	if (line == NULL)
		return;
	const char *args = NULL;
	const struct shell_builtin *b = builtin_find(line, &args);
	int rc = b != NULL ? b->run(sh, args) : shell_command_run(sh->client, line, sh->opts, NULL);
	if (rc > sh->worst)
		sh->worst = rc;
	/* A runbook's reader needs to know which line failed; --json keeps stderr JSON. */
	if (rc != HEXCTL_EXIT_OK && sh->opts->script != NULL && !sh->opts->json)
		fprintf(stderr, "hexctl: line %ld failed: %s\n", sh->lineno, line);
	/* Nothing can run once hexd is unreachable; otherwise a failure ends a script unless
	 * it was told to keep going. */
	if (sh->opts->script != NULL &&
	    (rc == HEXCTL_EXIT_UNREACHABLE || (rc != HEXCTL_EXIT_OK && !sh->opts->keep_going)))
		sh->done = true;
}

/* ---- scripts */

static int shell_script(struct shell *sh)
{
	char *buf = NULL;
	size_t cap = 0;
	while (!sh->done && getline(&buf, &cap, sh->opts->script) >= 0) {
		sh->lineno++;
		shell_line(sh, buf);
	}
	free(buf);
	return sh->worst;
}

/* ---- the interactive loop (readline's callback interface, so hexd's events and a
 * closed connection are noticed while the operator is typing) */

static struct shell *active; /* readline's line handler takes no user data */
static volatile sig_atomic_t got_sigint, got_sigwinch;

static void on_signal(int sig)
{
	if (sig == SIGINT)
		got_sigint = 1;
	else
		got_sigwinch = 1;
}

static void on_readline(char *line)
{
	if (line == NULL) { /* Ctrl-D */
		active->done = true;
		rl_callback_handler_remove();
		return;
	}
	char *cmd = command_text(line);
	if (cmd != NULL) {
		HIST_ENTRY *last =
		    history_length > 0 ? history_get(history_base + history_length - 1) : NULL;
		if (last == NULL || strcmp(last->line, cmd) != 0)
			add_history(cmd);
	}
	shell_line(active, line);
	/* A Ctrl-C during the command was for the command (admin_client gave up on it). */
	got_sigint = 0;
	if (active->done)
		rl_callback_handler_remove();
	free(line);
}

/* Prints above the line being edited, then puts the prompt and the line back. */
static void print_above_prompt(struct shell *sh, const char *notice)
{
	int point = rl_point;
	char *saved = rl_copy_text(0, rl_end);
	rl_save_prompt();
	rl_replace_line("", 0);
	rl_redisplay();
	if (notice != NULL)
		fprintf(stderr, "hexctl: %s\n", notice);
	else if (!shell_command_drain_events(sh->client, sh->opts))
		fprintf(stderr,
		        "hexctl: hexd at %s closed the connection; the next command "
		        "reconnects\n",
		        admin_client_target(sh->client));
	rl_restore_prompt();
	rl_replace_line(saved, 0);
	rl_point = point;
	rl_redisplay();
	free(saved);
}

static void on_interrupt(void)
{
	/* Ctrl-C drops the line being typed, as in bash. */
	rl_free_line_state();
	rl_callback_sigcleanup();
	rl_replace_line("", 0);
	fputs("^C\n", stdout);
	rl_on_new_line();
	rl_redisplay();
}

static char *history_path(void)
{
	const char *home = getenv("HOME");
	if (home == NULL || home[0] == '\0') {
		const struct passwd *pw = getpwuid(getuid());
		home = pw != NULL ? pw->pw_dir : NULL;
	}
	return home != NULL ? xasprintf("%s%s", home, HISTORY_FILE) : NULL;
}

static void install_signals(void)
{
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGWINCH, &sa, NULL);
}

static void fetch_verbs(struct shell *sh)
{
	json_t *reply = NULL;
	struct hex_err err = {0};
	if (admin_client_call(sh->client, "HELP", sh->opts->timeout_ms, &reply, &err) == HEX_OK &&
	    json_is_true(json_object_get(reply, "ok")))
		shell_complete_set_verbs(json_object_get(reply, "data"));
	json_decref(reply);
}

static void shell_loop(struct shell *sh, const char *prompt)
{
	rl_callback_handler_install(prompt, on_readline);
	while (!sh->done) {
		struct pollfd fds[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
		                        {.fd = admin_client_fd(sh->client), .events = POLLIN}};
		int n = got_sigint || got_sigwinch ? 0 : poll(fds, fds[1].fd >= 0 ? 2 : 1, -1);
		if (got_sigint) {
			got_sigint = 0;
			on_interrupt();
		}
		if (got_sigwinch) {
			got_sigwinch = 0;
			rl_resize_terminal();
		}
		if (n < 0 && errno != EINTR) {
			print_above_prompt(sh, strerror(errno));
			break;
		}
		if (n <= 0)
			continue;
		if (fds[1].fd >= 0 && fds[1].revents != 0)
			print_above_prompt(sh, NULL);
		if (fds[0].revents != 0)
			rl_callback_read_char();
	}
	if (!sh->done)
		rl_callback_handler_remove();
}

static int shell_interactive(struct shell *sh)
{
	char *hist = history_path();
	char *prompt = xasprintf("hexctl %s> ", admin_client_target(sh->client));
	rl_readline_name = "hexctl";
	rl_catch_signals = 0;
	rl_catch_sigwinch = 0;
	install_signals();
	shell_complete_install(builtin_words);
	fetch_verbs(sh);
	using_history();
	stifle_history(HISTORY_MAX);
	if (hist != NULL)
		read_history(hist); /* none yet is fine */
	printf("connected to hexd at %s; help lists the verbs, Tab completes, Ctrl-D leaves\n",
	       admin_client_target(sh->client));
	active = sh;
	admin_client_set_interrupt(sh->client, &got_sigint);
	shell_loop(sh, prompt);
	admin_client_set_interrupt(sh->client, NULL);
	active = NULL;
	int werr = hist != NULL ? write_history(hist) : 0; /* an errno value, 0 on success */
	if (werr != 0)
		fprintf(stderr, "hexctl: cannot write the history to %s: %s\n", hist,
		        strerror(werr));
	clear_history();
	shell_complete_clear();
	free(prompt);
	free(hist);
	return HEXCTL_EXIT_OK;
}

int shell_run(struct admin_client *c, const struct shell_options *o)
{
	struct shell sh = {.client = c, .opts = o};
	if (o->script != NULL)
		return shell_script(&sh);
	struct shell_options interactive = *o;
	interactive.on_data = shell_complete_note;
	sh.opts = &interactive;
	return shell_interactive(&sh);
}

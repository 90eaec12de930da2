/*
 * hexctl.c: the operators' command: `hexctl` (the console), `hexctl shell`, `hexctl -f
 * FILE` and one-shot `hexctl <verb> ...`, all over the admin port (docs/ADMIN.md).
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/xmalloc.h"
#include "tui/admin_client.h"
#include "tui/shell.h"
#ifdef HEXCTL_CONSOLE
#include "tui/console.h"
#endif

#define TOKEN_FILE_MAX 4096

struct hexctl_args {
	const char *target;
	const char *token_file;
	const char *operator_name;
	const char *file;
	bool json;
	bool keep_going;
	int timeout_ms;
	bool show_version;
	bool show_help;
};

/* ---- options: one table for parsing and --help */

struct hexctl_option {
	const char *name;
	int short_name;  /* 0: long only */
	const char *arg; /* NULL: a flag */
	const char *help;
	bool (*set)(struct hexctl_args *a, const char *value);
};

static bool set_target(struct hexctl_args *a, const char *v)
{
	a->target = v;
	return v[0] != '\0';
}

static bool set_token_file(struct hexctl_args *a, const char *v)
{
	a->token_file = v;
	return true;
}

static bool set_operator(struct hexctl_args *a, const char *v)
{
	a->operator_name = v;
	return v[0] != '\0';
}

static bool set_file(struct hexctl_args *a, const char *v)
{
	a->file = v;
	return v[0] != '\0';
}

static bool set_json(struct hexctl_args *a, const char *v)
{
	a->json = true;
	return true;
}

static bool set_keep_going(struct hexctl_args *a, const char *v)
{
	a->keep_going = true;
	return true;
}

static bool set_timeout(struct hexctl_args *a, const char *v)
{
	char *end = NULL;
	errno = 0;
	long s = strtol(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || s < 1 || s > 86400)
		return false;
	a->timeout_ms = (int)s * 1000;
	return true;
}

static bool set_version(struct hexctl_args *a, const char *v)
{
	a->show_version = true;
	return true;
}

static bool set_help(struct hexctl_args *a, const char *v)
{
	a->show_help = true;
	return true;
}

static const struct hexctl_option hexctl_options[] = {
    {"target", 't', "ADDR",
     "hexd's admin port: host:port or a unix socket path (default: $HEX_ADMIN_SOCKET, "
     "else $HEX_ADMIN_LISTEN, else " ADMIN_CLIENT_DEFAULT_TARGET ")",
     set_target},
    {"token-file", 0, "FILE",
     "read the admin token from FILE's first line (default: $HEX_ADMIN_TOKEN; a file "
     "keeps it out of the environment)",
     set_token_file},
    {"operator", 'o', "NAME", "who the audit log names (default: $USER, else unknown)",
     set_operator},
    {"file", 'f', "FILE", "run the commands in FILE, one per line ('-': standard input)", set_file},
    {"json", 'j', NULL,
     "machine output: each reply's data as one JSON line; errors as JSON on stderr", set_json},
    {"keep-going", 'k', NULL, "scripts: run the remaining commands after a failure (exit 1)",
     set_keep_going},
    {"timeout", 0, "SECONDS", "how long to wait for each reply (default 30)", set_timeout},
    {"version", 'V', NULL, "print the version and exit", set_version},
    {"help", 'h', NULL, "print this help and exit", set_help},
};
#define OPTION_COUNT (sizeof hexctl_options / sizeof hexctl_options[0])
#define LONG_ONLY    256 /* getopt values of long-only options: LONG_ONLY + table index */

/* ---- built-in words: what hexctl itself does with the first word */

struct hexctl_run {
	const struct hexctl_args *args;
	struct admin_client *client;
	struct shell_options shell;
	char **words;
	int nwords;
};

static int run_shell(struct hexctl_run *r);
static int run_help(struct hexctl_run *r);

struct hexctl_word {
	const char *name;
	const char *usage;
	const char *summary;
	int (*run)(struct hexctl_run *r);
};

static const struct hexctl_word hexctl_words[] = {
    {"shell", "shell",
     "the interactive shell; reads commands from standard input when it is not a terminal",
     run_shell},
    {"help", "help [VERB]", "the verbs hexd knows, or one verb's usage", run_help},
};
#define WORD_COUNT (sizeof hexctl_words / sizeof hexctl_words[0])

#define HELP_COLUMN 27 /* where the explanations start in --help */
#define HELP_WIDTH  80

/* "  left" padded to HELP_COLUMN, then text wrapped at word boundaries under itself. */
static void print_help_entry(FILE *out, const char *left, const char *text)
{
	int col = fprintf(out, "  %s", left);
	if (col >= HELP_COLUMN) {
		fputc('\n', out);
		col = 0;
	}
	fprintf(out, "%*s", HELP_COLUMN - col, "");
	col = HELP_COLUMN;
	while (*text != '\0') {
		size_t word = strcspn(text, " ");
		if (col > HELP_COLUMN && col + 1 + (int)word > HELP_WIDTH) {
			fprintf(out, "\n%*s", HELP_COLUMN, "");
			col = HELP_COLUMN;
		} else if (col > HELP_COLUMN) {
			fputc(' ', out);
			col++;
		}
		fwrite(text, 1, word, out);
		col += (int)word;
		text += word;
		text += strspn(text, " ");
	}
	fputc('\n', out);
}

static void print_usage(FILE *out)
{
	fprintf(out,
	        "usage: hexctl [OPTIONS]                  the full-screen console\n"
	        "       hexctl [OPTIONS] shell            the interactive shell\n"
	        "       hexctl [OPTIONS] -f FILE          the commands in FILE\n"
	        "       hexctl [OPTIONS] VERB [ARG ...]   one command (hexctl users list limit 5)\n"
	        "\noptions:\n");
	for (size_t i = 0; i < OPTION_COUNT; i++) {
		const struct hexctl_option *o = &hexctl_options[i];
		char flags[64];
		snprintf(flags, sizeof flags, "%c%c%s--%s%s%s", o->short_name ? '-' : ' ',
		         o->short_name ? o->short_name : ' ', o->short_name ? ", " : "  ", o->name,
		         o->arg ? " " : "", o->arg ? o->arg : "");
		print_help_entry(out, flags, o->help);
	}
	fprintf(out, "\nwords hexctl itself knows:\n");
	for (size_t i = 0; i < WORD_COUNT; i++)
		print_help_entry(out, hexctl_words[i].usage, hexctl_words[i].summary);
	fprintf(out,
	        "\nEvery other VERB is sent to hexd: `hexctl help` lists the verbs it knows.\n"
	        "Words holding spaces are quoted for the protocol; options may follow the verb\n"
	        "(`--` ends them). In the shell: help, exit, quit, Tab completion; history in\n"
	        "~/.hexctl_history. Scripts skip blank lines and # comments and stop at the\n"
	        "first failure unless --keep-going.\n"
	        "\nenvironment: HEX_ADMIN_SOCKET, HEX_ADMIN_LISTEN, HEX_ADMIN_TOKEN, USER\n"
	        "exit status: 0 ok; 1 a command failed; 2 usage; 3 cannot connect, token\n"
	        "refused or connection lost\n");
}

static const struct hexctl_option *option_for(int val)
{
	if (val >= LONG_ONLY && val < LONG_ONLY + (int)OPTION_COUNT)
		return &hexctl_options[val - LONG_ONLY];
	for (size_t i = 0; i < OPTION_COUNT; i++)
		if (hexctl_options[i].short_name != 0 && hexctl_options[i].short_name == val)
			return &hexctl_options[i];
	return NULL;
}

/* -1 when the arguments call for a run, else the exit status to end with. */
static int parse_args(struct hexctl_args *a, int argc, char **argv)
{
	struct option longs[OPTION_COUNT + 1];
	char shorts[2 * OPTION_COUNT + 1];
	size_t ns = 0;
	for (size_t i = 0; i < OPTION_COUNT; i++) {
		const struct hexctl_option *o = &hexctl_options[i];
		int val = o->short_name ? o->short_name : LONG_ONLY + (int)i;
		longs[i] =
		    (struct option){o->name, o->arg ? required_argument : no_argument, NULL, val};
		if (o->short_name) {
			shorts[ns++] = (char)o->short_name;
			if (o->arg)
				shorts[ns++] = ':';
		}
	}
	longs[OPTION_COUNT] = (struct option){0};
	shorts[ns] = '\0';

	int val;
	while ((val = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		const struct hexctl_option *o = option_for(val);
		if (o == NULL) {
			fprintf(stderr, "hexctl: try hexctl --help\n");
			return HEXCTL_EXIT_USAGE;
		}
		if (!o->set(a, optarg)) {
			fprintf(stderr, "hexctl: invalid value for --%s: %s\n", o->name,
			        optarg != NULL ? optarg : "");
			return HEXCTL_EXIT_USAGE;
		}
	}
	if (a->show_help) {
		print_usage(stdout);
		return HEXCTL_EXIT_OK;
	}
	if (a->show_version) {
		printf("hexctl %s\n", HEX_VERSION);
		return HEXCTL_EXIT_OK;
	}
	return -1;
}

/* ---- the admin token */

/*
 * The token from FILE's first line, malloc'ed (the caller wipes and frees it), or NULL
 * with a message printed.
 */
static char *token_from_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		fprintf(stderr, "hexctl: cannot read the token file %s: %s\n", path,
		        strerror(errno));
		return NULL;
	}
	char *buf = xcalloc(1, TOKEN_FILE_MAX);
	if (fgets(buf, TOKEN_FILE_MAX, f) == NULL)
		buf[0] = '\0';
	fclose(f);
	size_t n = strlen(buf);
	while (n > 0 && isspace((unsigned char)buf[n - 1]))
		buf[--n] = '\0';
	return buf;
}

/* ---- the ways hexctl runs */

static int connect_or_report(struct hexctl_run *r)
{
	struct hex_err err = {0};
	enum hex_status st = admin_client_connect(r->client, &err);
	if (st == HEX_OK)
		return HEXCTL_EXIT_OK;
	shell_command_print_failure(&r->shell, st, &err);
	return HEXCTL_EXIT_UNREACHABLE;
}

static int run_shell(struct hexctl_run *r)
{
	if (r->nwords > 1) {
		fprintf(stderr, "hexctl: shell takes no arguments (use -f FILE for a script)\n");
		return HEXCTL_EXIT_USAGE;
	}
	if (!isatty(STDIN_FILENO))
		r->shell.script = stdin;
	int rc = connect_or_report(r);
	return rc != HEXCTL_EXIT_OK ? rc : shell_run(r->client, &r->shell);
}

static int run_script(struct hexctl_run *r)
{
	if (r->nwords > 0) {
		fprintf(stderr, "hexctl: -f runs a script; give no verb with it\n");
		return HEXCTL_EXIT_USAGE;
	}
	bool from_stdin = strcmp(r->args->file, "-") == 0;
	FILE *f = from_stdin ? stdin : fopen(r->args->file, "r");
	if (f == NULL) {
		fprintf(stderr, "hexctl: cannot open %s: %s\n", r->args->file, strerror(errno));
		return HEXCTL_EXIT_USAGE;
	}
	r->shell.script = f;
	int rc = connect_or_report(r);
	if (rc == HEXCTL_EXIT_OK)
		rc = shell_run(r->client, &r->shell);
	if (!from_stdin)
		fclose(f);
	return rc;
}

/* The words as one protocol line, each quoted as needed. malloc'ed. */
static char *command_line(char **words, int nwords)
{
	char *line = xstrdup("");
	for (int i = 0; i < nwords; i++) {
		char *q = admin_client_quote(words[i]);
		char *next = xasprintf("%s%s%s", line, i ? " " : "", q);
		free(q);
		free(line);
		line = next;
	}
	return line;
}

static volatile sig_atomic_t stop_following;

static void on_stop(int sig)
{
	stop_following = 1;
}

/* After SUBSCRIBE: prints events until Ctrl-C (exit 0) or hexd goes away (exit 3). */
static int follow_events(struct hexctl_run *r)
{
	struct sigaction sa = {.sa_handler = on_stop};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	admin_client_set_interrupt(r->client, &stop_following);
	json_t *ev = NULL;
	while (!stop_following && admin_client_next_event(r->client, -1, &ev) == HEX_OK) {
		shell_command_print_event(ev, &r->shell);
		json_decref(ev);
	}
	admin_client_set_interrupt(r->client, NULL);
	if (stop_following)
		return HEXCTL_EXIT_OK;
	fprintf(stderr, "hexctl: hexd at %s closed the connection\n",
	        admin_client_target(r->client));
	return HEXCTL_EXIT_UNREACHABLE;
}

static int run_one_shot(struct hexctl_run *r, shell_printer print)
{
	int rc = connect_or_report(r);
	if (rc != HEXCTL_EXIT_OK)
		return rc;
	char *line = command_line(r->words, r->nwords);
	rc = shell_command_run(r->client, line, &r->shell, print);
	free(line);
	if (rc == HEXCTL_EXIT_OK && strcasecmp(r->words[0], "SUBSCRIBE") == 0)
		rc = follow_events(r);
	return rc;
}

static int run_help(struct hexctl_run *r)
{
	return run_one_shot(r, shell_print_help);
}

static int run_console(struct hexctl_run *r)
{
#ifdef HEXCTL_CONSOLE
	const char *no_color = getenv("NO_COLOR");
	struct console_options o = {.no_color = no_color != NULL && no_color[0] != '\0'};
	return console_run(r->client, &o);
#else
	fprintf(stderr, "hexctl: the console is not built yet; use `hexctl shell` or "
	                "`hexctl VERB ...`\n");
	return HEXCTL_EXIT_USAGE;
#endif
}

static int dispatch(struct hexctl_run *r)
{
	if (r->args->file != NULL)
		return run_script(r);
	if (r->nwords == 0)
		return run_console(r);
	for (size_t i = 0; i < WORD_COUNT; i++)
		if (strcasecmp(r->words[0], hexctl_words[i].name) == 0)
			return hexctl_words[i].run(r);
	return run_one_shot(r, NULL);
}

int main(int argc, char **argv)
{
	struct hexctl_args a = {.timeout_ms = SHELL_DEFAULT_TIMEOUT_MS};
	char *token = NULL;
	struct admin_client *client = NULL;
	int rc;

	setlocale(LC_ALL, "");
	setlocale(LC_NUMERIC, "C"); /* numbers print the same for every operator */

	rc = parse_args(&a, argc, argv);
	if (rc >= 0)
		goto out;
	if (a.token_file != NULL) {
		token = token_from_file(a.token_file);
		if (token == NULL) {
			rc = HEXCTL_EXIT_USAGE;
			goto out;
		}
	}
	client = admin_client_new(a.target, token, a.operator_name);
	struct hexctl_run r = {
	    .args = &a,
	    .client = client,
	    .shell = {.json = a.json, .keep_going = a.keep_going, .timeout_ms = a.timeout_ms},
	    .words = argv + optind,
	    .nwords = argc - optind,
	};
	rc = dispatch(&r);
out:
	admin_client_free(client);
	if (token != NULL)
		explicit_bzero(token, strlen(token));
	free(token);
	return rc;
}

/* main.c: hexd's command line: options, then a sub-command from the table. */
#include "daemon/commands.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

struct command {
	const char *name;
	const char *usage;
	unsigned needs; /* enum app_needs */
	int (*exec)(struct app *app, int argc, char **argv);
};

static const struct command commands[] = {
    {"serve", "serve                      run the daemon (migrates first)",
     APP_NEEDS_DB | APP_NEEDS_JWT, cmd_serve},
    {"migrate", "migrate                    apply pending database migrations", APP_NEEDS_DB,
     cmd_migrate},
    {"user", "user grant-admin EMAIL     make a user an admin (revoke-admin undoes it)",
     APP_NEEDS_DB, cmd_user},
    {"ledger",
     "ledger verify              recheck every balance and that all entries sum to "
     "zero",
     APP_NEEDS_DB, cmd_ledger},
    {"dlq",
     "dlq list [--all]           dead-lettered events (show ID, replay ID, discard ID "
     "REASON)",
     APP_NEEDS_DB, cmd_dlq},
};

static void usage(FILE *out)
{
	fprintf(out, "usage: hexd [-c FILE] COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(out, "  %s\n", commands[i].usage);
	fprintf(out, "\noptions:\n"
	             "  -c, --config FILE          read settings from FILE (key = value)\n"
	             "  --print-config             print the effective settings (secrets hidden)\n"
	             "  --print-example-config     print a documented hexd.conf\n"
	             "  -h, --help                 this help\n"
	             "  -V, --version              print the version\n"
	             "\nsettings (environment variables override the file):\n");
	config_print_help(out);
}

int main(int argc, char **argv)
{
	enum { OPT_PRINT_CONFIG = 256, OPT_PRINT_EXAMPLE };
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {"print-config", no_argument, NULL, OPT_PRINT_CONFIG},
	    {"print-example-config", no_argument, NULL, OPT_PRINT_EXAMPLE},
	    {NULL, 0, NULL, 0},
	};
	const char *config_path = NULL;
	bool print_config = false;
	int c;
	while ((c = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("hexd %s\n", HEX_VERSION);
			return 0;
		case OPT_PRINT_CONFIG:
			print_config = true;
			break;
		case OPT_PRINT_EXAMPLE:
			config_print_example(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	struct app app;
	if (print_config) {
		if (!app_init(&app, config_path, 0))
			return 2;
		config_print_effective(&app.cfg, stdout);
		app_free(&app);
		return 0;
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	const struct command *cmd = NULL;
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(argv[optind], commands[i].name) == 0)
			cmd = &commands[i];
	if (cmd == NULL) {
		fprintf(stderr, "hexd: unknown command %s (try hexd --help)\n", argv[optind]);
		return 2;
	}
	if (!app_init(&app, config_path, cmd->needs))
		return 2;
	int rc = cmd->exec(&app, argc - optind, argv + optind);
	app_free(&app);
	return rc;
}

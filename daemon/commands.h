/* commands: the hexd sub-commands, dispatched from a table in main.c. */
#ifndef HEX_COMMANDS_H
#define HEX_COMMANDS_H

#include "daemon/app.h"

/* Applies pending migrations; false after one line on stderr. */
bool migrate_database(struct app *app, int *applied);

int cmd_serve(struct app *app, int argc, char **argv);
int cmd_migrate(struct app *app, int argc, char **argv);
int cmd_user(struct app *app, int argc, char **argv);
int cmd_ledger(struct app *app, int argc, char **argv);
int cmd_dlq(struct app *app, int argc, char **argv);

#endif

/* migrate.c: `hexd migrate`: apply pending migrations and exit. */
#include "daemon/commands.h"

#include "adapters/postgres/pg_conn.h"
#include "adapters/postgres/pg_migrate.h"

#include <stdio.h>

bool migrate_database(struct app *app, int *applied)
{
	struct pg_conn *c = app_db_open(app);
	if (c == NULL)
		return false;
	struct hex_err err = {0};
	enum hex_status st = pg_migrate(c, applied, &err);
	pg_conn_free(c);
	if (st != HEX_OK)
		fprintf(stderr, "hexd: migration failed: %s\n", err.message);
	return st == HEX_OK;
}

int cmd_migrate(struct app *app, int argc, char **argv)
{
	int applied = 0;
	if (!migrate_database(app, &applied))
		return 1;
	printf("migrations applied: %d\n", applied);
	return 0;
}

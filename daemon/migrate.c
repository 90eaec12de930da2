/* migrate.c: `hexd migrate`: apply pending migrations and exit. */
#include "daemon/commands.h"

#include "adapters/postgres/pg_conn.h"
#include "adapters/postgres/pg_migrate.h"

#include <stdio.h>

int cmd_migrate(struct app *app, int argc, char **argv)
{
	struct pg_conn *c = app_db_open(app);
	if (c == NULL)
		return 1;
	struct hex_err err = {0};
	int applied = 0;
	enum hex_status st = pg_migrate(c, &applied, &err);
	pg_conn_free(c);
	if (st != HEX_OK) {
		fprintf(stderr, "hexd: migration failed: %s\n", err.message);
		return 1;
	}
	printf("migrations applied: %d\n", applied);
	return 0;
}

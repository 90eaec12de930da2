/* ledger_admin.c: `hexd ledger verify`: recheck the books from the command line. */
#include "daemon/commands.h"

#include "adapters/crypto/random_ids.h"
#include "adapters/crypto/system_clock.h"
#include "adapters/postgres/pg_conn.h"
#include "adapters/postgres/pg_ledger_repo.h"
#include "core/ledger_service.h"

#include <stdio.h>
#include <string.h>

static void print_report(const struct ledger_verify_report *r)
{
	printf("accounts checked: %ld\n", r->accounts_checked);
	for (int i = 0; i < r->nmismatches && i < LEDGER_MISMATCH_MAX; i++)
		printf("MISMATCH account %s: balance %lld, entries sum to %lld\n",
		       r->mismatches[i].account_id, (long long)r->mismatches[i].balance,
		       (long long)r->mismatches[i].entries_sum);
	if (r->nmismatches > LEDGER_MISMATCH_MAX)
		printf("... and %d more accounts\n", r->nmismatches - LEDGER_MISMATCH_MAX);
	for (int i = 0; i < r->nunbalanced && i < LEDGER_CURRENCY_MAX; i++)
		printf("UNBALANCED %s: all entries sum to %lld\n", r->unbalanced[i].currency,
		       (long long)r->unbalanced[i].sum);
	printf("%s\n", r->ok ? "ledger ok" : "LEDGER DISAGREES");
}

int cmd_ledger(struct app *app, int argc, char **argv)
{
	if (argc != 2 || strcmp(argv[1], "verify") != 0) {
		fprintf(stderr, "usage: hexd ledger verify\n");
		return 2;
	}
	struct pg_conn *c = app_db_open(app);
	if (c == NULL)
		return 1;
	struct ledger_service ls = {
	    .repo = pg_ledger_repo_port(c),
	    .clock = system_clock_port(),
	    .ids = random_ids_port(),
	};
	struct ledger_verify_report r;
	struct hex_err err = {0};
	enum hex_status st = ledger_service_verify(&ls, &r, &err);
	pg_conn_free(c);
	if (st != HEX_OK) {
		fprintf(stderr, "hexd ledger verify: %s\n", err.message);
		return 1;
	}
	print_report(&r);
	return r.ok ? 0 : 3;
}

/* dlq_admin.c: `hexd dlq list|show|replay|discard`: dead letters from the command line. */
#include "daemon/commands.h"

#include "adapters/crypto/system_clock.h"
#include "adapters/postgres/pg_conn.h"
#include "adapters/postgres/pg_dead_letter_repo.h"
#include "core/dead_letter_service.h"
#include "core/xmalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void fmt_time(int64_t us, char out[32])
{
	if (us == 0) {
		strcpy(out, "-");
		return;
	}
	time_t s = (time_t)(us / 1000000);
	struct tm tm;
	gmtime_r(&s, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void print_row(const struct dead_letter *d)
{
	char at[32];
	fmt_time(d->created_at_us, at);
	printf("%-6lld %-9s %-10s %-3d %s %s: %s\n", (long long)d->id,
	       dead_letter_status_name(d->status), d->consumer, d->attempts, at, d->event_id,
	       d->error);
}

static void print_full(const struct dead_letter *d)
{
	char at[32];
	printf("id:        %lld\nstatus:    %s\nconsumer:  %s\nevent:     %s\ntopic:     %s\n"
	       "attempts:  %d\nerror:     %s\n",
	       (long long)d->id, dead_letter_status_name(d->status), d->consumer, d->event_id,
	       d->topic, d->attempts, d->error);
	fmt_time(d->created_at_us, at);
	printf("created:   %s\n", at);
	if (d->status != DEAD_LETTER_OPEN) {
		fmt_time(d->resolved_at_us, at);
		printf("resolved:  %s by %s%s%s\n", at, d->resolved_by, d->reason[0] ? ": " : "",
		       d->reason);
	}
	for (int i = 0; i < d->nhistory; i++) {
		fmt_time(d->history[i].failed_at_us, at);
		printf("attempt %d at %s: %s\n", d->history[i].attempt, at, d->history[i].error);
	}
	if (d->payload != NULL)
		printf("payload:   %s\n", d->payload);
}

static bool parse_id(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v <= 0)
		return false;
	*out = v;
	return true;
}

/* Who did it, for the audit trail: the operator's login on this machine. */
static void actor_of(char out[DEAD_LETTER_ACTOR_MAX + 1])
{
	const char *user = getenv("USER");
	snprintf(out, DEAD_LETTER_ACTOR_MAX + 1, "hexd-cli:%s", user != NULL ? user : "unknown");
}

static enum hex_status run_list(struct dead_letter_service *s, int argc, char **argv,
                                struct hex_err *err)
{
	bool all = argc == 3 && strcmp(argv[2], "--all") == 0;
	if (argc == 3 && !all)
		return hex_fail(err, HEX_INVALID, NULL, "unknown option %s (only --all)", argv[2]);
	struct dead_letter_page *page = xcalloc(1, sizeof *page);
	int64_t before = 0;
	enum hex_status st;
	do {
		st = dead_letter_service_list(s, all, HEX_LIST_MAX, before, page, err);
		for (int i = 0; st == HEX_OK && i < page->count; i++)
			print_row(&page->items[i]);
		if (page->count > 0)
			before = page->items[page->count - 1].id;
	} while (st == HEX_OK && page->has_more);
	free(page);
	return st;
}

static enum hex_status run_one(struct dead_letter_service *s, int argc, char **argv,
                               struct hex_err *err)
{
	int64_t id;
	if (!parse_id(argv[2], &id))
		return hex_fail(err, HEX_INVALID, "id", "%s is not a dead letter id", argv[2]);
	char actor[DEAD_LETTER_ACTOR_MAX + 1];
	actor_of(actor);
	struct dead_letter d;
	enum hex_status st;
	if (strcmp(argv[1], "show") == 0)
		st = dead_letter_service_show(s, id, &d, err);
	else if (strcmp(argv[1], "replay") == 0)
		st = dead_letter_service_replay(s, id, actor, &d, err);
	else
		st = dead_letter_service_discard(s, id, actor, argc > 3 ? argv[3] : "", &d, err);
	if (st == HEX_OK)
		print_full(&d);
	free(d.payload);
	return st;
}

static const struct {
	const char *verb;
	int min_args, max_args;
	enum hex_status (*run)(struct dead_letter_service *, int, char **, struct hex_err *);
} verbs[] = {
    {"list", 2, 3, run_list},
    {"show", 3, 3, run_one},
    {"replay", 3, 3, run_one},
    {"discard", 4, 4, run_one},
};

int cmd_dlq(struct app *app, int argc, char **argv)
{
	int v = -1;
	for (size_t i = 0; argc >= 2 && i < sizeof verbs / sizeof verbs[0]; i++)
		if (strcmp(argv[1], verbs[i].verb) == 0 && argc >= verbs[i].min_args &&
		    argc <= verbs[i].max_args)
			v = (int)i;
	if (v < 0) {
		fprintf(stderr, "usage: hexd dlq list [--all] | show ID | replay ID | "
		                "discard ID REASON\n");
		return 2;
	}
	struct pg_conn *c = app_db_open(app);
	if (c == NULL)
		return 1;
	struct dead_letter_service s = {
	    .repo = pg_dead_letter_repo_port(c),
	    .clock = system_clock_port(),
	};
	struct hex_err err = {0};
	enum hex_status st = verbs[v].run(&s, argc, argv, &err);
	pg_conn_free(c);
	if (st != HEX_OK) {
		fprintf(stderr, "hexd dlq %s: %s\n", argv[1], err.message);
		return st == HEX_NOT_FOUND ? 4 : st == HEX_CONFLICT ? 5 : 1;
	}
	return 0;
}

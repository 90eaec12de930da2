/*
 * test_admin_verbs: the admin port's verb table and admin_run over fakes of the services'
 * ports: every verb of docs/ADMIN.md is in the table (mutating exactly where the audit
 * log must see it), lookup by one or two words in any case, argument counts answered
 * with the usage line and the missing argument's field, options (LIMIT, CURSOR, ALL) and
 * cursors refused with their field, an audit row after every mutating verb whatever its
 * outcome (and only then), and the operator from AUTH as the dead letters' resolver.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/admin/admin_call.h"
#include "core/xmalloc.h"
#include "support/fake_admin.h"
#include "support/fake_events.h"

#define USER_ID "0000000a-0000-4000-8000-00000000000b"

struct fixture {
	struct fake_log log;
	struct fake_clock clock;
	struct fake_audit_repo audit;
	struct fake_cache_admin cache;
	struct fake_dead_letter_repo dead;
	struct fake_outbox outbox;
	struct fake_stream stream;
	struct hex_services svc;
	struct admin_env env;
	struct admin_call call;
	int stats_calls;
};

static json_t *fake_stats(void *self)
{
	struct fixture *f = self;
	f->stats_calls++;
	return json_pack("{s:i, s:s}", "pid", 4242, "version", "test");
}

static const struct admin_process_ops process_ops = {.stats = fake_stats};

static int setup(void **state)
{
	struct fixture *f = test_calloc(1, sizeof *f);
	f->clock.now_us = FAKE_T0_S * INT64_C(1000000);
	f->cache.keys = 3;
	f->svc.audit =
	    (struct audit_service){fake_audit_repo_port(&f->audit), fake_clock_port(&f->clock)};
	f->svc.cache.admin = fake_cache_admin_port(&f->cache);
	f->svc.dead_letters = (struct dead_letter_service){
	    fake_dead_letter_repo_port(&f->dead, &f->log), fake_clock_port(&f->clock)};
	f->svc.events = (struct event_lag_service){
	    .outbox = fake_outbox_port(&f->outbox, &f->log),
	    .dead = f->svc.dead_letters.repo,
	    .stream = fake_stream_port(&f->stream, &f->log),
	    .clock = fake_clock_port(&f->clock),
	};
	f->env = (struct admin_env){.svc = &f->svc, .process = {&process_ops, f}};
	*state = f;
	return 0;
}

static void call_clear(struct admin_call *c)
{
	for (int i = 0; i < c->argc; i++)
		free(c->argv[i]);
	json_decref(c->data);
	memset(c, 0, sizeof *c);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	call_clear(&f->call);
	test_free(f);
	return 0;
}

/* Runs the words (NULL-terminated) as operator would, as the server does: the verb found
 * first, then admin_run. The call stays in f->call until the next run. */
static struct admin_call *run(struct fixture *f, const char *operator_name, ...)
{
	struct admin_call *c = &f->call;
	call_clear(c);
	va_list ap;
	va_start(ap, operator_name);
	for (const char *w; (w = va_arg(ap, const char *)) != NULL;)
		c->argv[c->argc++] = xstrdup(w);
	va_end(ap);
	snprintf(c->operator_name, sizeof c->operator_name, "%s", operator_name);
	int nwords = 0;
	c->verb = admin_verb_find(c->argc, c->argv, &nwords);
	c->first = nwords;
	admin_run(c, &f->env);
	assert_true(c->done);
	return c;
}

/* The call failed with code and field (NULL: none); its message contains part. */
static void assert_failed(const struct admin_call *c, const char *code, const char *field,
                          const char *part)
{
	char *line = admin_reply_line(c);
	json_error_t jerr;
	json_t *reply = json_loads(line, 0, &jerr);
	assert_non_null(reply);
	if (!json_is_false(json_object_get(reply, "ok")))
		fail_msg("expected a failure, got %s", line);
	const char *got_code = json_string_value(json_object_get(reply, "code"));
	const char *got_field = json_string_value(json_object_get(reply, "field"));
	const char *message = json_string_value(json_object_get(reply, "error"));
	if (got_code == NULL || strcmp(got_code, code) != 0 ||
	    (field == NULL) != (got_field == NULL) ||
	    (field != NULL && strcmp(field, got_field) != 0) || message == NULL ||
	    (part != NULL && strstr(message, part) == NULL))
		fail_msg("want code %s field %s message ~%s, got %s", code, field ? field : "-",
		         part ? part : "-", line);
	json_decref(reply);
	free(line);
}

/* The call succeeded; its data. */
static json_t *ok_data(const struct admin_call *c)
{
	if (c->status != HEX_OK) {
		char *line = admin_reply_line(c);
		fail_msg("expected ok, got %s", line);
	}
	assert_non_null(c->data);
	return c->data;
}

static const char *str_of(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	if (s == NULL)
		fail_msg("no string %s", key);
	return s;
}

/* ---- the table ---- */

static void test_table_has_every_verb_of_the_protocol(void **state)
{
	static const struct {
		const char *name;
		bool mutating, server;
	} want[] = {
	    {"PING", false, false},
	    {"HELP", false, false},
	    {"STATS", false, false},
	    {"USERS LIST", false, false},
	    {"USERS SEARCH", false, false},
	    {"USERS SHOW", false, false},
	    {"USERS GRANT-ADMIN", true, false},
	    {"USERS REVOKE-ADMIN", true, false},
	    {"MESSAGES LIST", false, false},
	    {"MESSAGES SHOW", false, false},
	    {"PAYMENTS LIST", false, false},
	    {"PAYMENTS STUCK", false, false},
	    {"PAYMENTS SHOW", false, false},
	    {"LEDGER ACCOUNTS", false, false},
	    {"LEDGER ENTRIES", false, false},
	    {"LEDGER VERIFY", false, false},
	    {"DLQ LIST", false, false},
	    {"DLQ SHOW", false, false},
	    {"DLQ REPLAY", true, false},
	    {"DLQ DISCARD", true, false},
	    {"EVENTS LAG", false, false},
	    {"CACHE STATS", false, false},
	    {"CACHE FLUSH", true, false},
	    {"AUDIT LIST", false, false},
	    {"SUBSCRIBE", false, true},
	    {"UNSUBSCRIBE", false, true},
	    {"QUIT", false, true},
	};
	assert_int_equal(admin_verb_count, (int)(sizeof want / sizeof want[0]));
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		const struct admin_verb *v = NULL;
		for (int k = 0; k < admin_verb_count; k++)
			if (strcmp(admin_verbs[k].name, want[i].name) == 0) {
				assert_null(v); /* no name twice */
				v = &admin_verbs[k];
			}
		if (v == NULL)
			fail_msg("no verb %s", want[i].name);
		assert_int_equal(v->mutating, want[i].mutating);
		assert_int_equal(v->exec == NULL, want[i].server);
		/* HELP prints the usage: it starts with the name and is followed by arguments. */
		size_t n = strlen(v->name);
		assert_memory_equal(v->usage, v->name, n);
		assert_true(v->usage[n] == '\0' || v->usage[n] == ' ');
		assert_true(strlen(v->summary) > 5);
		assert_true(v->min_args >= 0);
		assert_true(v->max_args == -1 || v->max_args >= v->min_args);
		assert_true(v->max_args == -1 || v->max_args < ADMIN_ARGS_MAX);
		for (const char *p = v->name; *p != '\0'; p++)
			assert_true((*p >= 'A' && *p <= 'Z') || *p == ' ' || *p == '-');
	}
}

static void test_find_by_one_or_two_words_in_any_case(void **state)
{
	char *two[] = {"users", "List", "LIMIT", "5"};
	int nwords = -1;
	const struct admin_verb *v = admin_verb_find(4, two, &nwords);
	assert_non_null(v);
	assert_string_equal(v->name, "USERS LIST");
	assert_int_equal(nwords, 2);

	char *help[] = {"Help", "dlq"};
	v = admin_verb_find(2, help, &nwords);
	assert_string_equal(v->name, "HELP");
	assert_int_equal(nwords, 1);

	char *ping[] = {"ping"};
	v = admin_verb_find(1, ping, &nwords);
	assert_string_equal(v->name, "PING");

	char *noun_only[] = {"USERS"};
	assert_null(admin_verb_find(1, noun_only, &nwords));
	assert_int_equal(nwords, 0);
	char *wrong[] = {"DLQ", "EAT"};
	assert_null(admin_verb_find(2, wrong, &nwords));
	char *prefix[] = {"USERS", "LIS"};
	assert_null(admin_verb_find(2, prefix, &nwords));
	char *longer[] = {"PINGS"};
	assert_null(admin_verb_find(1, longer, &nwords));
	char *empty[] = {""};
	assert_null(admin_verb_find(1, empty, &nwords));
	assert_null(admin_verb_find(0, NULL, &nwords));
}

/* ---- admin_run ---- */

static void test_argument_counts_answer_the_usage_and_field(void **state)
{
	struct fixture *f = *state;
	assert_failed(run(f, "op", "PING", "now", NULL), "invalid_argument", "args", "usage: PING");
	assert_failed(run(f, "op", "USERS", "SHOW", NULL), "invalid_argument", "id",
	              "usage: USERS SHOW <id or email>");
	assert_failed(run(f, "op", "USERS", "SHOW", "a", "b", NULL), "invalid_argument", "args",
	              "too many arguments");
	assert_failed(run(f, "op", "LEDGER", "ENTRIES", NULL), "invalid_argument", "account_id",
	              "missing argument");
	assert_failed(run(f, "op", "USERS", "SEARCH", NULL), "invalid_argument", "text", NULL);
	assert_failed(run(f, "op", "USERS", "GRANT-ADMIN", NULL), "invalid_argument", "email",
	              NULL);
	assert_failed(run(f, "op", "DLQ", "DISCARD", "3", NULL), "invalid_argument", "reason",
	              "usage: DLQ DISCARD <id> <reason>");
	assert_failed(run(f, "op", "DLQ", "SHOW", NULL), "invalid_argument", "id", NULL);
	assert_failed(run(f, "op", "CACHE", "FLUSH", USER_ID, "x", NULL), "invalid_argument",
	              "args", NULL);
	/* Verbs the connection answers are never run here. */
	assert_failed(run(f, "op", "QUIT", NULL), "invalid_argument", NULL, "connection");
}

static void test_unknown_verb(void **state)
{
	struct fixture *f = *state;
	assert_failed(run(f, "op", "FROB", "x", NULL), "unknown_verb", NULL, "FROB");
	assert_failed(run(f, "op", "USERS", NULL), "unknown_verb", NULL, "USERS");
	assert_int_equal(f->audit.appends, 0);
}

static void test_ping_and_no_audit_for_reads(void **state)
{
	struct fixture *f = *state;
	struct admin_call *c = run(f, "op", "ping", NULL);
	assert_string_equal(json_string_value(ok_data(c)), "pong");
	char *line = admin_reply_line(c);
	assert_string_equal(line, "{\"ok\":true,\"data\":\"pong\"}");
	free(line);
	run(f, "op", "CACHE", "STATS", NULL);
	run(f, "op", "DLQ", "LIST", NULL);
	run(f, "op", "EVENTS", "LAG", NULL);
	run(f, "op", "DLQ", "SHOW", "99", NULL); /* a failed read is no change either */
	assert_int_equal(f->audit.appends, 0);
}

static void test_help_lists_every_verb_or_those_asked(void **state)
{
	struct fixture *f = *state;
	json_t *all = ok_data(run(f, "op", "HELP", NULL));
	assert_int_equal(json_array_size(all), admin_verb_count);
	json_t *first = json_array_get(all, 0);
	assert_string_equal(str_of(first, "verb"), admin_verbs[0].name);
	assert_string_equal(str_of(first, "usage"), admin_verbs[0].usage);
	assert_string_equal(str_of(first, "summary"), admin_verbs[0].summary);
	assert_true(json_is_false(json_object_get(first, "mutating")));

	json_t *dlq = ok_data(run(f, "op", "help", "dlq", NULL));
	assert_int_equal(json_array_size(dlq), 4);
	for (size_t i = 0; i < 4; i++)
		assert_memory_equal(str_of(json_array_get(dlq, i), "verb"), "DLQ ", 4);

	json_t *one = ok_data(run(f, "op", "HELP", "Dlq", "Replay", NULL));
	assert_int_equal(json_array_size(one), 1);
	assert_string_equal(str_of(json_array_get(one, 0), "usage"), "DLQ REPLAY <id>");
	assert_true(json_is_true(json_object_get(json_array_get(one, 0), "mutating")));

	json_t *quit = ok_data(run(f, "op", "HELP", "QUIT", NULL));
	assert_int_equal(json_array_size(quit), 1);

	assert_failed(run(f, "op", "HELP", "NOPE", NULL), "not_found", "verb", "NOPE");
	assert_failed(run(f, "op", "HELP", "DLQ", "EAT", NULL), "not_found", "verb", NULL);
}

static void test_stats_adds_the_events_part(void **state)
{
	struct fixture *f = *state;
	fake_outbox_add(&f->outbox, "evt_1", "", 1, "{}", f->clock.now_us - 2500000);
	fake_dead_letter_repo_add(&f->dead, "ledger", "evt_0", 1, "boom", "{}", f->clock.now_us);
	json_t *d = ok_data(run(f, "op", "STATS", NULL));
	assert_int_equal(json_integer_value(json_object_get(d, "pid")), 4242);
	json_t *ev = json_object_get(d, "events");
	assert_int_equal(json_integer_value(json_object_get(ev, "outbox_unpublished")), 1);
	assert_true(json_real_value(json_object_get(ev, "oldest_unpublished_s")) == 2.5);
	assert_int_equal(json_integer_value(json_object_get(ev, "dead_letters_open")), 1);
	assert_null(json_object_get(ev, "consumers"));

	/* The database down blanks only the events part. */
	fake_fail_next(&f->outbox.base, "lag", HEX_UNAVAILABLE);
	d = ok_data(run(f, "op", "STATS", NULL));
	assert_true(json_is_null(json_object_get(d, "events")));
	assert_int_equal(json_integer_value(json_object_get(d, "pid")), 4242);

	/* A process without stats still answers. */
	f->env.process.ops = NULL;
	d = ok_data(run(f, "op", "STATS", NULL));
	assert_non_null(json_object_get(d, "events"));
	assert_int_equal(f->stats_calls, 2);
}

static void test_events_lag_per_consumer(void **state)
{
	struct fixture *f = *state;
	json_t *d = ok_data(run(f, "op", "EVENTS", "LAG", NULL));
	json_t *consumers = json_object_get(d, "consumers");
	assert_true(json_array_size(consumers) >= 3);
	json_t *ledger = json_array_get(consumers, 0);
	assert_string_equal(str_of(ledger, "name"), "ledger");
	assert_int_equal(json_integer_value(json_object_get(ledger, "pending")), 0);
	assert_int_equal(json_integer_value(json_object_get(ledger, "lag")), 0);

	/* Redis unreachable: the consumers are unknown (null), the rest is there. */
	f->svc.events.stream = (struct event_stream){0};
	d = ok_data(run(f, "op", "EVENTS", "LAG", NULL));
	ledger = json_array_get(json_object_get(d, "consumers"), 0);
	assert_true(json_is_null(json_object_get(ledger, "pending")));
	assert_true(json_is_null(json_object_get(ledger, "lag")));
	assert_int_equal(json_integer_value(json_object_get(d, "outbox_unpublished")), 0);

	fake_fail_next(&f->dead.base, "count_open", HEX_UNAVAILABLE);
	assert_failed(run(f, "op", "EVENTS", "LAG", NULL), "unavailable", NULL, "database");
}

/* ---- mutating verbs and the audit log ---- */

static void test_cache_flush_is_audited_with_operator_and_args(void **state)
{
	struct fixture *f = *state;
	json_t *d = ok_data(run(f, "alice", "CACHE", "FLUSH", NULL));
	assert_int_equal(json_integer_value(json_object_get(d, "deleted")), 3);
	assert_true(f->cache.flushed_all);
	assert_int_equal(f->audit.count, 1);
	const struct audit_entry *a = &f->audit.rows[0];
	assert_string_equal(a->operator_name, "alice");
	assert_string_equal(a->verb, "CACHE FLUSH");
	assert_string_equal(a->args, "");
	assert_true(a->ok);
	assert_int_equal(a->at_us, f->clock.now_us);

	snprintf(f->cache.cached, sizeof f->cache.cached, "%s", USER_ID);
	f->cache.keys = 1;
	d = ok_data(run(f, "bob", "cache", "flush", USER_ID, NULL));
	assert_int_equal(json_integer_value(json_object_get(d, "deleted")), 1);
	assert_string_equal(f->cache.flushed_id, USER_ID);
	assert_string_equal(f->audit.rows[1].args, USER_ID);
	assert_string_equal(f->audit.rows[1].operator_name, "bob");
}

static void test_failed_mutations_are_audited_too(void **state)
{
	struct fixture *f = *state;
	/* A bad argument: refused before the cache is touched, and written down. */
	assert_failed(run(f, "alice", "CACHE", "FLUSH", "not-a-user", NULL), "invalid_argument",
	              "user_id", "not-a-user");
	assert_int_equal(f->cache.flushes, 0);
	/* A missing argument of a mutating verb. */
	assert_failed(run(f, "alice", "DLQ", "REPLAY", NULL), "invalid_argument", "id", NULL);
	/* Redis not configured. */
	f->svc.cache.admin = (struct user_cache_admin){0};
	assert_failed(run(f, "", "CACHE", "FLUSH", NULL), "unavailable", NULL, "no cache");

	assert_int_equal(f->audit.count, 3);
	assert_false(f->audit.rows[0].ok);
	assert_string_equal(f->audit.rows[0].args, "not-a-user");
	assert_non_null(strstr(f->audit.rows[0].error, "not-a-user"));
	assert_string_equal(f->audit.rows[1].verb, "DLQ REPLAY");
	assert_non_null(strstr(f->audit.rows[1].error, "usage"));
	/* No operator given at AUTH: "unknown", as the protocol says. */
	assert_string_equal(f->audit.rows[2].operator_name, "unknown");
	assert_non_null(strstr(f->audit.rows[2].error, "no cache"));
}

static void test_an_audit_failure_does_not_hide_what_happened(void **state)
{
	struct fixture *f = *state;
	f->audit.fail_next = HEX_UNAVAILABLE;
	json_t *d = ok_data(run(f, "alice", "CACHE", "FLUSH", NULL));
	assert_int_equal(json_integer_value(json_object_get(d, "deleted")), 3);
	assert_int_equal(f->cache.keys, 0);
	assert_int_equal(f->audit.count, 0);
	assert_int_equal(f->audit.appends, 1);
}

static void test_dlq_replay_and_discard_name_the_operator(void **state)
{
	struct fixture *f = *state;
	int64_t a = fake_dead_letter_repo_add(&f->dead, "ledger", "evt_a", 1, "no such payment",
	                                      "{\"id\":\"evt_a\"}", f->clock.now_us);
	int64_t b = fake_dead_letter_repo_add(&f->dead, "ledger", "evt_b", 2, "boom", "{}",
	                                      f->clock.now_us);
	char id_a[24], id_b[24];
	snprintf(id_a, sizeof id_a, "%lld", (long long)a);
	snprintf(id_b, sizeof id_b, "%lld", (long long)b);

	json_t *d = ok_data(run(f, "carol", "DLQ", "REPLAY", id_a, NULL));
	assert_string_equal(str_of(d, "status"), "replayed");
	assert_string_equal(str_of(d, "resolved_by"), "carol");
	assert_string_equal(f->dead.last_actor, "carol");
	assert_null(json_object_get(d, "payload")); /* the row after the change, not SHOW */

	/* Twice: a conflict, audited as a failure. */
	assert_failed(run(f, "carol", "DLQ", "REPLAY", id_a, NULL), "conflict", "id",
	              "already replayed");

	/* The reason: the rest of the line, or one quoted word. */
	d = ok_data(run(f, "dave", "DLQ", "DISCARD", id_b, "not", "ours", "at", "all", NULL));
	assert_string_equal(str_of(d, "status"), "discarded");
	assert_string_equal(str_of(d, "reason"), "not ours at all");
	assert_string_equal(str_of(d, "resolved_by"), "dave");

	assert_int_equal(f->audit.count, 3);
	assert_true(f->audit.rows[0].ok);
	assert_string_equal(f->audit.rows[0].args, id_a);
	assert_false(f->audit.rows[1].ok);
	assert_non_null(strstr(f->audit.rows[1].error, "already replayed"));
	char want[64];
	snprintf(want, sizeof want, "%s not ours at all", id_b);
	assert_string_equal(f->audit.rows[2].args, want);
}

static void test_dlq_discard_needs_a_reason_and_ids_are_numbers(void **state)
{
	struct fixture *f = *state;
	int64_t a =
	    fake_dead_letter_repo_add(&f->dead, "ledger", "evt_a", 1, "x", "{}", f->clock.now_us);
	char id[24];
	snprintf(id, sizeof id, "%lld", (long long)a);
	assert_failed(run(f, "op", "DLQ", "DISCARD", id, "", NULL), "invalid_argument", "reason",
	              NULL);
	assert_int_equal(fake_dead_letter_repo_find(&f->dead, a)->status, DEAD_LETTER_OPEN);
	const char *bad[] = {"abc", "0", "-1", "12x", "+5", " 5", "99999999999999999999"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_failed(run(f, "op", "DLQ", "REPLAY", bad[i], NULL), "invalid_argument", "id",
		              NULL);
		assert_failed(run(f, "op", "DLQ", "SHOW", bad[i], NULL), "invalid_argument", "id",
		              NULL);
	}
	assert_failed(run(f, "op", "DLQ", "SHOW", "777", NULL), "not_found", "id",
	              "dead letter 777 not found");
	/* A quoted reason with quotes inside is written to the audit log re-quoted. */
	json_t *d = ok_data(run(f, "op", "DLQ", "DISCARD", id, "a \"b\" \\c", NULL));
	assert_string_equal(str_of(d, "reason"), "a \"b\" \\c");
	char want[64];
	snprintf(want, sizeof want, "%s \"a \\\"b\\\" \\\\c\"", id);
	assert_string_equal(f->audit.rows[f->audit.count - 1].args, want);
}

static void test_dlq_show_has_payload_and_history(void **state)
{
	struct fixture *f = *state;
	int64_t a = fake_dead_letter_repo_add(&f->dead, "ledger", "evt_a", 1, "no such payment",
	                                      "{\"id\":\"evt_a\"}", f->clock.now_us);
	char id[24];
	snprintf(id, sizeof id, "%lld", (long long)a);
	json_t *d = ok_data(run(f, "op", "DLQ", "SHOW", id, NULL));
	assert_int_equal(json_integer_value(json_object_get(d, "id")), a);
	assert_string_equal(str_of(d, "payload"), "{\"id\":\"evt_a\"}");
	assert_string_equal(str_of(d, "status"), "open");
	assert_true(json_is_null(json_object_get(d, "resolved_at")));
	assert_true(json_is_null(json_object_get(d, "reason")));
	json_t *h = json_object_get(d, "history");
	assert_int_equal(json_array_size(h), 1);
	assert_string_equal(str_of(json_array_get(h, 0), "error"), "no such payment");
}

/* ---- options and cursors ---- */

static void test_options_are_checked(void **state)
{
	struct fixture *f = *state;
	assert_failed(run(f, "op", "DLQ", "LIST", "LIMIT", "0", NULL), "invalid_argument", "limit",
	              "1 to 100");
	assert_failed(run(f, "op", "DLQ", "LIST", "LIMIT", "101", NULL), "invalid_argument",
	              "limit", NULL);
	assert_failed(run(f, "op", "DLQ", "LIST", "LIMIT", "ten", NULL), "invalid_argument",
	              "limit", NULL);
	assert_failed(run(f, "op", "DLQ", "LIST", "LIMIT", "+5", NULL), "invalid_argument", "limit",
	              NULL);
	assert_failed(run(f, "op", "DLQ", "LIST", "LIMIT", NULL), "invalid_argument", "limit",
	              "needs a value");
	assert_failed(run(f, "op", "DLQ", "LIST", "LIMIT", "5", "limit", "6", NULL),
	              "invalid_argument", "limit", "twice");
	assert_failed(run(f, "op", "DLQ", "LIST", "FOO", "1", NULL), "invalid_argument", "args",
	              "unknown option FOO");
	assert_failed(run(f, "op", "DLQ", "LIST", "STATUS", "open", NULL), "invalid_argument",
	              "args", "STATUS");
	assert_failed(run(f, "op", "DLQ", "LIST", "CURSOR", "bm9wZQ", NULL), "invalid_argument",
	              "cursor", NULL);
	assert_failed(run(f, "op", "DLQ", "LIST", "CURSOR", "!!", NULL), "invalid_argument",
	              "cursor", NULL);
	assert_failed(run(f, "op", "AUDIT", "LIST", "ALL", NULL), "invalid_argument", "args", NULL);
	/* Option names in any case; ALL takes no value. */
	ok_data(run(f, "op", "dlq", "list", "all", "limit", "3", NULL));
	assert_int_equal(f->dead.last_limit, 3);
	assert_true(f->dead.last_all);
}

/* Walks DLQ LIST with limit 2 (all or open) and returns the ids seen, page by page. */
static void walk_dlq(struct fixture *f, bool all, char *out, size_t n)
{
	char cursor[256] = "";
	out[0] = '\0';
	for (int pages = 0; pages < 10; pages++) {
		struct admin_call *c = cursor[0] == '\0'
		                           ? run(f, "op", "DLQ", "LIST", all ? "ALL" : "LIMIT",
		                                 all ? "LIMIT" : "2", all ? "2" : NULL, NULL)
		                           : run(f, "op", "DLQ", "LIST", "LIMIT", "2", "CURSOR",
		                                 cursor, all ? "ALL" : NULL, NULL);
		json_t *d = ok_data(c);
		json_t *items = json_object_get(d, "items");
		size_t len = strlen(out);
		snprintf(out + len, n - len, "%s", len > 0 ? "|" : "");
		for (size_t i = 0; i < json_array_size(items); i++) {
			len = strlen(out);
			snprintf(out + len, n - len, "%s%lld", i > 0 ? "," : "",
			         (long long)json_integer_value(
			             json_object_get(json_array_get(items, i), "id")));
		}
		json_t *next = json_object_get(d, "next_cursor");
		if (json_is_null(next))
			return;
		snprintf(cursor, sizeof cursor, "%s", json_string_value(next));
	}
	fail_msg("the walk did not end");
}

static void test_paging_with_cursors(void **state)
{
	struct fixture *f = *state;
	for (int i = 0; i < 5; i++) {
		char ev[16];
		snprintf(ev, sizeof ev, "evt_%d", i);
		fake_dead_letter_repo_add(&f->dead, "ledger", ev, 1, "x", "{}", f->clock.now_us);
	}
	f->dead.rows[1].status = DEAD_LETTER_DISCARDED; /* id 2 */
	char got[128];
	walk_dlq(f, true, got, sizeof got);
	assert_string_equal(got, "5,4|3,2|1");
	walk_dlq(f, false, got, sizeof got);
	assert_string_equal(got, "5,4|3,1");

	/* A cursor of the ALL walk is refused by the open walk, and one of another list. */
	json_t *d = ok_data(run(f, "op", "DLQ", "LIST", "ALL", "LIMIT", "1", NULL));
	char cursor[256];
	snprintf(cursor, sizeof cursor, "%s", json_string_value(json_object_get(d, "next_cursor")));
	assert_failed(run(f, "op", "DLQ", "LIST", "CURSOR", cursor, NULL), "invalid_argument",
	              "cursor", "other filters");
	assert_failed(run(f, "op", "AUDIT", "LIST", "CURSOR", cursor, NULL), "invalid_argument",
	              "cursor", NULL);
	/* A cursor changed by one character is not ours. */
	cursor[strlen(cursor) - 2] = cursor[strlen(cursor) - 2] == 'A' ? 'B' : 'A';
	assert_failed(run(f, "op", "DLQ", "LIST", "ALL", "CURSOR", cursor, NULL),
	              "invalid_argument", "cursor", NULL);
}

static void test_audit_list_shows_mutations_newest_first(void **state)
{
	struct fixture *f = *state;
	run(f, "alice", "CACHE", "FLUSH", NULL);
	run(f, "alice", "PING", NULL);
	run(f, "bob", "CACHE", "FLUSH", "bad", NULL);
	run(f, "carol", "CACHE", "FLUSH", USER_ID, NULL);
	json_t *d = ok_data(run(f, "op", "AUDIT", "LIST", "LIMIT", "2", NULL));
	json_t *items = json_object_get(d, "items");
	assert_int_equal(json_array_size(items), 2);
	json_t *newest = json_array_get(items, 0);
	assert_string_equal(str_of(newest, "operator"), "carol");
	assert_string_equal(str_of(newest, "verb"), "CACHE FLUSH");
	assert_string_equal(str_of(newest, "args"), USER_ID);
	assert_true(json_is_true(json_object_get(newest, "ok")));
	assert_true(json_is_null(json_object_get(newest, "error")));
	json_t *failed = json_array_get(items, 1);
	assert_true(json_is_false(json_object_get(failed, "ok")));
	assert_non_null(strstr(str_of(failed, "error"), "bad"));
	char cursor[256];
	snprintf(cursor, sizeof cursor, "%s", json_string_value(json_object_get(d, "next_cursor")));
	d = ok_data(run(f, "op", "AUDIT", "LIST", "CURSOR", cursor, NULL));
	items = json_object_get(d, "items");
	assert_int_equal(json_array_size(items), 1);
	assert_string_equal(str_of(json_array_get(items, 0), "operator"), "alice");
	assert_true(json_is_null(json_object_get(d, "next_cursor")));
	/* Reads are never audited: three rows for three CACHE FLUSH. */
	assert_int_equal(f->audit.count, 3);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table_has_every_verb_of_the_protocol),
	    cmocka_unit_test(test_find_by_one_or_two_words_in_any_case),
	    T(test_argument_counts_answer_the_usage_and_field),
	    T(test_unknown_verb),
	    T(test_ping_and_no_audit_for_reads),
	    T(test_help_lists_every_verb_or_those_asked),
	    T(test_stats_adds_the_events_part),
	    T(test_events_lag_per_consumer),
	    T(test_cache_flush_is_audited_with_operator_and_args),
	    T(test_failed_mutations_are_audited_too),
	    T(test_an_audit_failure_does_not_hide_what_happened),
	    T(test_dlq_replay_and_discard_name_the_operator),
	    T(test_dlq_discard_needs_a_reason_and_ids_are_numbers),
	    T(test_dlq_show_has_payload_and_history),
	    T(test_options_are_checked),
	    T(test_paging_with_cursors),
	    T(test_audit_list_shows_mutations_newest_first),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* pg_conn against a real PostgreSQL: settings, error map, timeouts, lost sessions, outages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "adapters/postgres/pg_conn.h"
#include "support/pg_testdb.h"

static struct pg_testdb db;

enum { T_PID, T_SLEEP, T_INT, T_SETTING, T_PUT, T_PUT_CHILD, T_COUNT };

static const struct pg_stmt t_stmts[T_COUNT] = {
    [T_PID] = {"t_pid", "SELECT pg_backend_pid()", 0},
    [T_SLEEP] = {"t_sleep", "SELECT pg_sleep($1::float8)", 1},
    [T_INT] = {"t_int", "SELECT $1::int", 1},
    [T_SETTING] = {"t_setting", "SELECT current_setting($1)", 1},
    [T_PUT] = {"t_put", "INSERT INTO t_items (k) VALUES ($1)", 1},
    [T_PUT_CHILD] = {"t_put_child", "INSERT INTO t_children (k) VALUES ($1)", 1},
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct pg_conn *open_with(const char *conninfo, const struct pg_conn_options *o)
{
	struct hex_err err = {0};
	struct pg_conn *c = NULL;
	enum hex_status st = pg_conn_connect(conninfo, o, &c, &err);
	if (st != HEX_OK)
		fail_msg("cannot open: %s: %s", hex_status_name(st), err.message);
	assert_non_null(c);
	pg_conn_register(c, t_stmts, T_COUNT);
	return c;
}

/* Opens conninfo expecting failure; returns the status, err gets the detail. */
static enum hex_status open_fails(const char *conninfo, const struct pg_conn_options *o,
                                  struct hex_err *err)
{
	struct pg_conn *c = (struct pg_conn *)1;
	enum hex_status st = pg_conn_connect(conninfo, o, &c, err);
	assert_int_not_equal(st, HEX_OK);
	assert_null(c);
	return st;
}

static struct pg_conn *open_default(void)
{
	struct pg_conn_options o;
	pg_conn_options_defaults(&o);
	return open_with(db.conninfo, &o);
}

/* Runs a one-parameter statement and returns its single text value (static buffer). */
static const char *value_of(struct pg_conn *c, int which, const char *param)
{
	static char out[256];
	PGresult *r = NULL;
	const char *params[] = {param};
	enum hex_status st = pg_conn_query(c, &t_stmts[which], params, &r);
	if (st != HEX_OK)
		fail_msg("%s: %s: %s", t_stmts[which].name, hex_status_name(st),
		         pg_conn_last_error(c));
	snprintf(out, sizeof out, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return out;
}

static int backend_pid(struct pg_conn *c)
{
	return atoi(value_of(c, T_PID, NULL));
}

/* Ends the server session of c from another connection and waits until it is gone. */
static void kill_session(struct pg_conn *c)
{
	char sql[128];
	snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d, 5000)::int", backend_pid(c));
	assert_int_equal(pg_testdb_scalar(&db, sql), 1);
}

static int group_setup(void **state)
{
	pg_testdb_create(&db);
	pg_testdb_exec(&db, "CREATE TABLE t_items (k text PRIMARY KEY);"
	                    "CREATE TABLE t_children (k text NOT NULL REFERENCES t_items (k))");
	return 0;
}

static int group_teardown(void **state)
{
	pg_testdb_drop(&db);
	return 0;
}

static int setup(void **state)
{
	/* A test that failed half-way may have left a transaction open: end it, not hang. */
	pg_testdb_exec(&db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
	                    "WHERE datname = current_database() AND pid <> pg_backend_pid()");
	pg_testdb_exec(&db, "TRUNCATE t_items, t_children");
	return 0;
}

static void test_open_sets_application_name_and_statement_timeout(void **state)
{
	struct pg_conn *c = open_default();
	assert_int_equal(pg_conn_ping(c), HEX_OK);
	assert_string_equal(value_of(c, T_SETTING, "application_name"), "hexd");
	assert_string_equal(value_of(c, T_SETTING, "statement_timeout"), "5s");
	pg_conn_free(c);
}

static void test_settings_in_the_conninfo_win(void **state)
{
	char conninfo[1200];
	snprintf(conninfo, sizeof conninfo, "%s application_name=custom", db.conninfo);
	struct pg_conn_options o;
	pg_conn_options_defaults(&o);
	struct pg_conn *c = open_with(conninfo, &o);
	assert_string_equal(value_of(c, T_SETTING, "application_name"), "custom");
	pg_conn_free(c);
}

static void test_uri_conninfo_connects(void **state)
{
	char host[128], port[16], user[64], uri[512];
	assert_true(pg_testdb_param(&db, "host", host, sizeof host));
	assert_true(pg_testdb_param(&db, "port", port, sizeof port));
	assert_true(pg_testdb_param(&db, "user", user, sizeof user));
	snprintf(uri, sizeof uri, "postgresql://%s@%s:%s/%s?application_name=via_uri", user, host,
	         port, db.name);
	struct pg_conn_options o;
	pg_conn_options_defaults(&o);
	struct pg_conn *c = open_with(uri, &o);
	assert_string_equal(value_of(c, T_SETTING, "application_name"), "via_uri");
	assert_string_equal(value_of(c, T_SETTING, "statement_timeout"), "5s");
	pg_conn_free(c);
}

static void test_malformed_conninfo_is_invalid(void **state)
{
	const char *bad[] = {"host=127.0.0.1 port", "bogus_option=1", "postgresql://a:b@[::1"};
	struct pg_conn_options o;
	pg_conn_options_defaults(&o);
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		struct hex_err err = {0};
		assert_int_equal(open_fails(bad[i], &o, &err), HEX_INVALID);
		assert_string_equal(err.field, "database_url");
		assert_non_null(strstr(err.message, "invalid database_url"));
		struct hex_err err2 = {0}, err3 = {0};
		assert_null(pg_conn_open(bad[i], &err2));
		assert_string_equal(err2.message, err.message);
		assert_null(pg_conn_open_with(bad[i], &o, &err3));
		assert_string_equal(err3.message, err.message);
	}
	struct hex_err err = {0};
	assert_int_equal(open_fails("bogus_option=1", &o, &err), HEX_INVALID);
	assert_non_null(strstr(err.message, "bogus_option"));
}

/* A loopback port with nothing listening (taken and released just now). */
static int dead_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static void test_refused_address_is_unavailable_at_once(void **state)
{
	char conninfo[1200];
	pg_testdb_conninfo_at(&db, "127.0.0.1", dead_port(), conninfo, sizeof conninfo);
	struct pg_conn_options o;
	pg_conn_options_defaults(&o);
	struct hex_err err = {0};
	double t0 = now_s();
	assert_int_equal(open_fails(conninfo, &o, &err), HEX_UNAVAILABLE);
	assert_true(now_s() - t0 < 2.0);
	assert_non_null(strstr(err.message, "cannot connect"));
	assert_non_null(strstr(err.message, "refused"));
}

static void test_silent_server_times_out_instead_of_hanging(void **state)
{
	/* Accepts TCP (the kernel does) but never speaks: only connect_timeout ends the wait. */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	char conninfo[1200];
	pg_testdb_conninfo_at(&db, "127.0.0.1", ntohs(a.sin_port), conninfo, sizeof conninfo);

	struct pg_conn_options o;
	pg_conn_options_defaults(&o);
	o.connect_timeout_s = 2;
	struct hex_err err = {0};
	double t0 = now_s();
	enum hex_status st = open_fails(conninfo, &o, &err);
	double took = now_s() - t0;
	close(fd);
	assert_int_equal(st, HEX_UNAVAILABLE);
	assert_true(took >= 1.5 && took < 4.5);
	assert_non_null(strstr(err.message, "timeout"));
}

static void test_server_errors_map_to_statuses(void **state)
{
	struct pg_conn *c = open_default();
	const char *x[] = {"x"};
	const char *orphan[] = {"nobody"};
	const char *word[] = {"abc"};

	assert_int_equal(pg_conn_query(c, &t_stmts[T_PUT], x, NULL), HEX_OK);
	assert_int_equal(pg_conn_query(c, &t_stmts[T_PUT], x, NULL), HEX_CONFLICT);
	assert_int_equal(pg_conn_query(c, &t_stmts[T_PUT_CHILD], orphan, NULL), HEX_NOT_FOUND);
	PGresult *r = (PGresult *)1;
	assert_int_equal(pg_conn_query(c, &t_stmts[T_INT], word, &r), HEX_INTERNAL);
	assert_null(r);
	assert_non_null(strstr(pg_conn_last_error(c), "invalid input syntax"));
	/* The session is fine after each error. */
	assert_string_equal(value_of(c, T_INT, "42"), "42");
	assert_string_equal(pg_conn_last_error(c), "");
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM t_items"), 1);
	pg_conn_free(c);
}

static void test_slow_statement_is_cut_by_statement_timeout(void **state)
{
	struct pg_conn_options o;
	pg_conn_options_defaults(&o);
	o.statement_timeout_ms = 200;
	struct pg_conn *c = open_with(db.conninfo, &o);
	const char *two[] = {"2"};
	double t0 = now_s();
	assert_int_equal(pg_conn_query(c, &t_stmts[T_SLEEP], two, NULL), HEX_UNAVAILABLE);
	assert_true(now_s() - t0 < 1.5);
	assert_string_equal(value_of(c, T_INT, "7"), "7");
	pg_conn_free(c);
}

static void test_statement_errors_in_the_binary_are_internal(void **state)
{
	static const struct pg_stmt broken[] = {
	    {"t_missing_table", "SELECT k FROM no_such_table WHERE k = $1", 1},
	};
	static const struct pg_stmt stray = {"t_stray", "SELECT 1", 0};
	struct pg_conn *c = open_default();
	assert_int_equal(pg_conn_query(c, &stray, NULL, NULL), HEX_INTERNAL);

	struct hex_err err = {0};
	assert_int_equal(pg_conn_prepare_all(c, &err), HEX_OK);
	pg_conn_register(c, broken, 1);
	pg_conn_register(c, broken, 1); /* twice is harmless */
	const char *k[] = {"k"};
	assert_int_equal(pg_conn_query(c, &broken[0], k, NULL), HEX_INTERNAL);
	assert_int_equal(pg_conn_prepare_all(c, &err), HEX_INTERNAL);
	assert_non_null(strstr(err.message, "t_missing_table"));
	assert_non_null(strstr(err.message, "no_such_table"));
	/* Other statements still run. */
	assert_string_equal(value_of(c, T_INT, "1"), "1");
	pg_conn_free(c);
}

static void test_killed_session_recovers_on_the_next_call(void **state)
{
	struct pg_conn *c = open_default();
	assert_string_equal(value_of(c, T_INT, "1"), "1"); /* prepared on the first session */
	int before = backend_pid(c);

	kill_session(c);
	/* Prepared statements are gone with the session: they must be prepared again. */
	assert_string_equal(value_of(c, T_INT, "2"), "2");
	int after = backend_pid(c);
	assert_true(after != before);
	assert_string_equal(value_of(c, T_SETTING, "statement_timeout"), "5s");

	kill_session(c);
	assert_int_equal(pg_conn_ping(c), HEX_OK);
	pg_conn_free(c);
}

static void test_session_lost_inside_a_transaction_never_autocommits(void **state)
{
	struct pg_conn *c = open_default();
	const char *a[] = {"a"}, *b[] = {"b"}, *z[] = {"z"};

	assert_int_equal(pg_conn_begin(c), HEX_OK);
	assert_int_equal(pg_conn_query(c, &t_stmts[T_PUT], a, NULL), HEX_OK);
	kill_session(c);
	assert_int_equal(pg_conn_query(c, &t_stmts[T_PUT], b, NULL), HEX_UNAVAILABLE);
	assert_int_equal(pg_conn_commit(c), HEX_UNAVAILABLE);
	pg_conn_rollback(c);
	assert_int_equal(pg_conn_query(c, &t_stmts[T_PUT], z, NULL), HEX_OK);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM t_items WHERE k IN ('a','b')"),
	                 0);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM t_items WHERE k = 'z'"), 1);
	pg_conn_free(c);
}

static void test_failed_transaction_does_not_commit(void **state)
{
	struct pg_conn *c = open_default();
	const char *y[] = {"y"}, *word[] = {"abc"};

	assert_int_equal(pg_conn_begin(c), HEX_OK);
	assert_int_equal(pg_conn_query(c, &t_stmts[T_PUT], y, NULL), HEX_OK);
	assert_int_equal(pg_conn_query(c, &t_stmts[T_INT], word, NULL), HEX_INTERNAL);
	assert_int_equal(pg_conn_commit(c), HEX_INTERNAL);
	assert_int_equal(pg_conn_commit(c), HEX_INTERNAL); /* no transaction any more */
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM t_items"), 0);
	assert_string_equal(value_of(c, T_INT, "3"), "3");
	pg_conn_free(c);
}

static void test_transaction_commits_and_rolls_back(void **state)
{
	struct pg_conn *c = open_default();
	const char *kept[] = {"kept"}, *gone[] = {"gone"};

	assert_int_equal(pg_conn_depth(c), 0);
	assert_int_equal(pg_conn_begin(c), HEX_OK);
	assert_int_equal(pg_conn_depth(c), 1);
	assert_int_equal(pg_conn_query(c, &t_stmts[T_PUT], gone, NULL), HEX_OK);
	pg_conn_rollback(c);
	assert_int_equal(pg_conn_depth(c), 0);
	pg_conn_rollback(c); /* harmless outside a transaction */
	assert_int_equal(pg_conn_depth(c), 0);

	assert_int_equal(pg_conn_begin(c), HEX_OK);
	assert_int_equal(pg_conn_query(c, &t_stmts[T_PUT], kept, NULL), HEX_OK);
	/* Not visible to others before the commit. */
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM t_items"), 0);
	assert_int_equal(pg_conn_commit(c), HEX_OK);
	assert_int_equal(pg_conn_depth(c), 0);

	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM t_items WHERE k = 'kept'"), 1);
	assert_int_equal(pg_testdb_scalar(&db, "SELECT count(*) FROM t_items"), 1);
	pg_conn_free(c);
}

/* The keys in t_items, sorted and joined by commas, as another session sees them. */
static const char *committed_keys(void)
{
	static char out[256];
	PGconn *raw = PQconnectdb(db.conninfo);
	assert_int_equal(PQstatus(raw), CONNECTION_OK);
	PGresult *r =
	    PQexec(raw, "SELECT coalesce(string_agg(k, ',' ORDER BY k), '') FROM t_items");
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	snprintf(out, sizeof out, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	PQfinish(raw);
	return out;
}

static void put(struct pg_conn *c, const char *k)
{
	const char *params[] = {k};
	enum hex_status st = pg_conn_query(c, &t_stmts[T_PUT], params, NULL);
	if (st != HEX_OK)
		fail_msg("put %s: %s: %s", k, hex_status_name(st), pg_conn_last_error(c));
}

static void test_nested_rollback_keeps_the_outer_work(void **state)
{
	struct pg_conn *c = open_default();
	assert_int_equal(pg_conn_begin(c), HEX_OK);
	put(c, "outer1");
	assert_int_equal(pg_conn_begin(c), HEX_OK);
	assert_int_equal(pg_conn_depth(c), 2);
	put(c, "inner");
	pg_conn_rollback(c);
	assert_int_equal(pg_conn_depth(c), 1);
	put(c, "outer2");
	assert_string_equal(committed_keys(), ""); /* still one open transaction */
	assert_int_equal(pg_conn_commit(c), HEX_OK);
	assert_int_equal(pg_conn_depth(c), 0);
	assert_string_equal(committed_keys(), "outer1,outer2");
	pg_conn_free(c);
}

static void test_outer_rollback_drops_inner_committed_work(void **state)
{
	struct pg_conn *c = open_default();
	assert_int_equal(pg_conn_begin(c), HEX_OK);
	put(c, "outer");
	assert_int_equal(pg_conn_begin(c), HEX_OK);
	put(c, "inner");
	assert_int_equal(pg_conn_commit(c), HEX_OK);
	assert_int_equal(pg_conn_depth(c), 1);
	/* The inner commit only released a savepoint: nothing is visible yet. */
	assert_string_equal(committed_keys(), "");
	pg_conn_rollback(c);
	assert_int_equal(pg_conn_depth(c), 0);
	assert_string_equal(committed_keys(), "");
	/* Three levels: the middle one's rollback takes the innermost's work with it. */
	assert_int_equal(pg_conn_begin(c), HEX_OK);
	put(c, "a");
	assert_int_equal(pg_conn_begin(c), HEX_OK);
	put(c, "b");
	assert_int_equal(pg_conn_begin(c), HEX_OK);
	assert_int_equal(pg_conn_depth(c), 3);
	put(c, "c");
	assert_int_equal(pg_conn_commit(c), HEX_OK);
	pg_conn_rollback(c);
	assert_int_equal(pg_conn_begin(c), HEX_OK); /* a savepoint again, at the same depth */
	put(c, "d");
	assert_int_equal(pg_conn_commit(c), HEX_OK);
	assert_int_equal(pg_conn_commit(c), HEX_OK);
	assert_string_equal(committed_keys(), "a,d");
	pg_conn_free(c);
}

static void test_inner_failure_rolled_back_outer_still_commits(void **state)
{
	struct pg_conn *c = open_default();
	const char *dup[] = {"first"}, *word[] = {"abc"};
	assert_int_equal(pg_conn_begin(c), HEX_OK);
	put(c, "first");
	assert_int_equal(pg_conn_begin(c), HEX_OK);
	put(c, "lost");
	assert_int_equal(pg_conn_query(c, &t_stmts[T_PUT], dup, NULL), HEX_CONFLICT);
	pg_conn_rollback(c);
	put(c, "second"); /* the outer transaction is usable again */

	/* A commit of a failed level fails and rolls that level back; the outer one goes on. */
	assert_int_equal(pg_conn_begin(c), HEX_OK);
	put(c, "lost2");
	assert_int_equal(pg_conn_query(c, &t_stmts[T_INT], word, NULL), HEX_INTERNAL);
	assert_int_equal(pg_conn_commit(c), HEX_INTERNAL);
	assert_int_equal(pg_conn_depth(c), 1);
	put(c, "third");
	assert_int_equal(pg_conn_commit(c), HEX_OK);
	assert_string_equal(committed_keys(), "first,second,third");
	pg_conn_free(c);
}

static void test_failure_in_the_outer_level_fails_its_commit(void **state)
{
	struct pg_conn *c = open_default();
	const char *word[] = {"abc"};
	assert_int_equal(pg_conn_begin(c), HEX_OK);
	put(c, "before");
	assert_int_equal(pg_conn_query(c, &t_stmts[T_INT], word, NULL), HEX_INTERNAL);
	/* An inner level cannot even start in a failed transaction. */
	assert_int_equal(pg_conn_begin(c), HEX_INTERNAL);
	assert_int_equal(pg_conn_depth(c), 1);
	assert_int_equal(pg_conn_commit(c), HEX_INTERNAL);
	assert_int_equal(pg_conn_depth(c), 0);
	assert_string_equal(committed_keys(), "");
	put(c, "after");
	assert_string_equal(committed_keys(), "after");
	pg_conn_free(c);
}

static void test_session_lost_in_a_nested_level_fails_every_level(void **state)
{
	struct pg_conn *c = open_default();
	const char *b[] = {"b"};
	assert_int_equal(pg_conn_begin(c), HEX_OK);
	put(c, "a");
	assert_int_equal(pg_conn_begin(c), HEX_OK);
	kill_session(c);
	assert_int_equal(pg_conn_query(c, &t_stmts[T_PUT], b, NULL), HEX_UNAVAILABLE);
	assert_int_equal(pg_conn_commit(c), HEX_UNAVAILABLE);
	assert_int_equal(pg_conn_depth(c), 1);
	/* The outer level must not carry on in autocommit on a fresh session. */
	assert_int_equal(pg_conn_query(c, &t_stmts[T_PUT], b, NULL), HEX_UNAVAILABLE);
	assert_int_equal(pg_conn_begin(c), HEX_UNAVAILABLE);
	assert_int_equal(pg_conn_depth(c), 1);
	assert_int_equal(pg_conn_commit(c), HEX_UNAVAILABLE);
	assert_int_equal(pg_conn_depth(c), 0);
	pg_conn_rollback(c); /* after the failed commit: harmless */
	put(c, "z");
	assert_string_equal(committed_keys(), "z");
	pg_conn_free(c);
}

/*
 * A TCP forwarder to the test server that can be taken down (every session cut, the port
 * closed) and brought back on the same port: a PostgreSQL restart as a client sees it.
 * Stalled, it cuts every session and leaves new ones hanging: a server that hangs.
 */
#define PROXY_PAIRS 16

enum proxy_mode { PROXY_UP, PROXY_DOWN, PROXY_STALL };

struct proxy {
	pthread_mutex_t mu;
	pthread_t thread;
	int port, target_port;
	enum proxy_mode want, is; /* STALL: sessions cut, port open, nobody answers */
	bool quit;
	int lfd;                                /* owned by the thread once started */
	int down[PROXY_PAIRS], up[PROXY_PAIRS]; /* client side, server side; -1 if free */
};

static int proxy_listen(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void proxy_close_pair(struct proxy *p, int i)
{
	close(p->down[i]);
	close(p->up[i]);
	p->down[i] = p->up[i] = -1;
}

static void proxy_accept(struct proxy *p)
{
	int d = accept(p->lfd, NULL, NULL);
	if (d < 0)
		return;
	int u = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)p->target_port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	for (int i = 0; i < PROXY_PAIRS; i++) {
		if (p->down[i] < 0 && connect(u, (struct sockaddr *)&a, sizeof a) == 0) {
			p->down[i] = d;
			p->up[i] = u;
			return;
		}
	}
	close(d);
	close(u);
}

/* Copies what from has to to; false when the pair is finished. */
static bool proxy_pump(int from, int to)
{
	char buf[16384];
	ssize_t n = read(from, buf, sizeof buf);
	for (ssize_t off = 0; n > 0 && off < n;) {
		/* MSG_NOSIGNAL: a peer that hung up must not SIGPIPE the test. */
		ssize_t w = send(to, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
		if (w <= 0)
			return false;
		off += w;
	}
	return n > 0;
}

static void proxy_cut(struct proxy *p, bool close_port)
{
	for (int i = 0; i < PROXY_PAIRS; i++)
		if (p->down[i] >= 0)
			proxy_close_pair(p, i);
	if (close_port && p->lfd >= 0) {
		close(p->lfd);
		p->lfd = -1;
	}
}

static void *proxy_run(void *arg)
{
	struct proxy *p = arg;
	enum proxy_mode now = PROXY_UP;
	for (;;) {
		pthread_mutex_lock(&p->mu);
		bool quit = p->quit;
		enum proxy_mode want = p->want;
		pthread_mutex_unlock(&p->mu);
		if (quit)
			break;
		if (want != now && want != PROXY_UP)
			proxy_cut(p, want == PROXY_DOWN);
		if (want != PROXY_DOWN && p->lfd < 0)
			p->lfd = proxy_listen(p->port);
		if (want == PROXY_DOWN || p->lfd >= 0)
			now = want;
		pthread_mutex_lock(&p->mu);
		p->is = now;
		pthread_mutex_unlock(&p->mu);

		struct pollfd fds[1 + 2 * PROXY_PAIRS];
		fds[0] = (struct pollfd){.fd = now == PROXY_UP ? p->lfd : -1, .events = POLLIN};
		for (int i = 0; i < PROXY_PAIRS; i++) {
			fds[1 + 2 * i] = (struct pollfd){.fd = p->down[i], .events = POLLIN};
			fds[2 + 2 * i] = (struct pollfd){.fd = p->up[i], .events = POLLIN};
		}
		if (poll(fds, 1 + 2 * PROXY_PAIRS, 20) <= 0)
			continue;
		if (fds[0].revents & POLLIN)
			proxy_accept(p);
		for (int i = 0; i < PROXY_PAIRS; i++) {
			if (p->down[i] < 0)
				continue;
			bool ok = true;
			if (fds[1 + 2 * i].revents & (POLLIN | POLLHUP | POLLERR))
				ok = proxy_pump(p->down[i], p->up[i]);
			if (ok && fds[2 + 2 * i].revents & (POLLIN | POLLHUP | POLLERR))
				ok = proxy_pump(p->up[i], p->down[i]);
			if (!ok)
				proxy_close_pair(p, i);
		}
	}
	proxy_cut(p, true);
	return NULL;
}

static void proxy_start(struct proxy *p, int target_port)
{
	memset(p, 0, sizeof *p);
	pthread_mutex_init(&p->mu, NULL);
	for (int i = 0; i < PROXY_PAIRS; i++)
		p->down[i] = p->up[i] = -1;
	p->target_port = target_port;
	p->lfd = proxy_listen(0);
	assert_true(p->lfd >= 0);
	struct sockaddr_in a;
	socklen_t len = sizeof a;
	assert_int_equal(getsockname(p->lfd, (struct sockaddr *)&a, &len), 0);
	p->port = ntohs(a.sin_port);
	p->want = p->is = PROXY_UP;
	assert_int_equal(pthread_create(&p->thread, NULL, proxy_run, p), 0);
}

/* Puts the proxy in mode and waits until it is so. */
static void proxy_set(struct proxy *p, enum proxy_mode mode)
{
	pthread_mutex_lock(&p->mu);
	p->want = mode;
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < 400; i++) {
		pthread_mutex_lock(&p->mu);
		bool done = p->is == mode;
		pthread_mutex_unlock(&p->mu);
		if (done)
			return;
		usleep(5000);
	}
	fail_msg("the proxy did not reach mode %d", mode);
}

static void proxy_stop(struct proxy *p)
{
	pthread_mutex_lock(&p->mu);
	p->quit = true;
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->thread, NULL);
	pthread_mutex_destroy(&p->mu);
}

static struct pg_conn *open_through(struct proxy *px, int backoff_ms)
{
	char port[16];
	assert_true(pg_testdb_param(&db, "port", port, sizeof port));
	proxy_start(px, atoi(port));
	char conninfo[1200];
	pg_testdb_conninfo_at(&db, "127.0.0.1", px->port, conninfo, sizeof conninfo);
	struct pg_conn_options o;
	pg_conn_options_defaults(&o);
	o.connect_timeout_s = 2;
	o.reconnect_backoff_ms = backoff_ms;
	struct pg_conn *c = open_with(conninfo, &o);
	assert_string_equal(value_of(c, T_INT, "1"), "1");
	return c;
}

static void test_restarted_server_answers_at_once_then_recovers(void **state)
{
	struct proxy px;
	struct pg_conn *c = open_through(&px, 300);
	const char *one[] = {"1"};

	proxy_set(&px, PROXY_DOWN);
	usleep(50000); /* the cut reaches our socket */
	double t0 = now_s();
	assert_int_equal(pg_conn_query(c, &t_stmts[T_INT], one, NULL), HEX_UNAVAILABLE);
	assert_int_equal(pg_conn_ping(c), HEX_UNAVAILABLE);
	assert_true(now_s() - t0 < 1.0);

	proxy_set(&px, PROXY_UP);
	usleep(350000); /* past the backoff */
	assert_string_equal(value_of(c, T_INT, "5"), "5");
	assert_int_equal(pg_conn_ping(c), HEX_OK);

	pg_conn_free(c);
	proxy_stop(&px);
}

static void test_hung_server_costs_one_timeout_then_answers_at_once(void **state)
{
	struct proxy px;
	struct pg_conn *c = open_through(&px, 3000);
	const char *one[] = {"1"};

	proxy_set(&px, PROXY_STALL);
	usleep(50000);
	double t0 = now_s();
	assert_int_equal(pg_conn_query(c, &t_stmts[T_INT], one, NULL), HEX_UNAVAILABLE);
	double first = now_s() - t0;
	assert_true(first >= 1.5 && first < 4.5); /* connect_timeout, not a hang */
	/* Within the backoff no new attempt is made: the next callers are not held up. */
	for (int i = 0; i < 3; i++) {
		double t1 = now_s();
		assert_int_equal(pg_conn_query(c, &t_stmts[T_INT], one, NULL), HEX_UNAVAILABLE);
		assert_true(now_s() - t1 < 0.05);
	}
	assert_non_null(strstr(pg_conn_last_error(c), "retrying"));

	proxy_set(&px, PROXY_UP);
	usleep(3100000 - (useconds_t)((now_s() - t0 - first) * 1e6));
	assert_string_equal(value_of(c, T_INT, "6"), "6");

	pg_conn_free(c);
	proxy_stop(&px);
}

static void test_free_accepts_null(void **state)
{
	pg_conn_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_open_sets_application_name_and_statement_timeout, setup),
	    cmocka_unit_test_setup(test_settings_in_the_conninfo_win, setup),
	    cmocka_unit_test_setup(test_uri_conninfo_connects, setup),
	    cmocka_unit_test_setup(test_malformed_conninfo_is_invalid, setup),
	    cmocka_unit_test_setup(test_refused_address_is_unavailable_at_once, setup),
	    cmocka_unit_test_setup(test_silent_server_times_out_instead_of_hanging, setup),
	    cmocka_unit_test_setup(test_server_errors_map_to_statuses, setup),
	    cmocka_unit_test_setup(test_slow_statement_is_cut_by_statement_timeout, setup),
	    cmocka_unit_test_setup(test_statement_errors_in_the_binary_are_internal, setup),
	    cmocka_unit_test_setup(test_killed_session_recovers_on_the_next_call, setup),
	    cmocka_unit_test_setup(test_session_lost_inside_a_transaction_never_autocommits, setup),
	    cmocka_unit_test_setup(test_failed_transaction_does_not_commit, setup),
	    cmocka_unit_test_setup(test_transaction_commits_and_rolls_back, setup),
	    cmocka_unit_test_setup(test_nested_rollback_keeps_the_outer_work, setup),
	    cmocka_unit_test_setup(test_outer_rollback_drops_inner_committed_work, setup),
	    cmocka_unit_test_setup(test_inner_failure_rolled_back_outer_still_commits, setup),
	    cmocka_unit_test_setup(test_failure_in_the_outer_level_fails_its_commit, setup),
	    cmocka_unit_test_setup(test_session_lost_in_a_nested_level_fails_every_level, setup),
	    cmocka_unit_test_setup(test_restarted_server_answers_at_once_then_recovers, setup),
	    cmocka_unit_test_setup(test_hung_server_costs_one_timeout_then_answers_at_once, setup),
	    cmocka_unit_test(test_free_accepts_null),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/*
 * admin_server.c: the admin port's loop thread: listeners, connections, AUTH, line
 * framing, dispatch to workers, replies, and the latency and log subscriptions.
 *
 * Every connection and every libevent object is touched by the loop thread only. Other
 * threads reach the loop through two events: done_ev (a worker finished a command;
 * the job sits on a locked list) and log_ev (the logger tap queued lines in logq).
 * A connection is never freed inside a callback that may still use it: closing one
 * frees its socket at once and leaves the struct on a dead list that reap_ev empties
 * (after the command it may still have on a worker came back).
 */
#include "adapters/admin/admin_server.h"

#include "adapters/admin/admin_line.h"
#include "adapters/admin/admin_logq.h"
#include "adapters/json/json_time.h"
#include "core/logger.h"
#include "core/xmalloc.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES     (64 * 1024)
#define MAX_CONNECTIONS    64
#define AUTH_TIMEOUT_MS    10000
#define MAX_PENDING_OUTPUT (1024 * 1024)
#define PAUSE_OUTPUT       (256 * 1024) /* no next command while more than this is unsent */
#define SOCKET_SNDBUF      (128 * 1024) /* keeps a stuck reader's backlog in our buffer */
#define LINGER_S           2            /* a closing connection's last reply gets this long */
#define LINGER_DISCARD_MAX (1024 * 1024)
#define LOG_QUEUE_LINES    1000
#define LATENCY_WINDOW_S   10
#define TICK_MS            1000
#define ACCEPT_BACKOFF_MS  100
#define DEFAULT_OPERATOR   "unknown"
#define OPERATOR_CHARS     "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._@-"
#define PEER_MAX           64

struct admin_conn;

struct admin_job {
	struct admin_job *next;
	struct admin_server *server;
	struct admin_conn *conn;
	struct admin_call call;
	char *reply; /* the reply line, made on the worker */
	int64_t start_us;
};

struct admin_conn {
	struct admin_server *server;
	struct admin_conn *prev, *next; /* live list, or dead list (next only) */
	struct bufferevent *bev;        /* NULL once closed */
	struct event *auth_timer;
	char peer[PEER_MAX];
	char operator_name[ADMIN_OPERATOR_MAX + 1];
	bool counted; /* holds one of the max_connections places */
	bool authed;
	bool closing;  /* sending its last reply, then closes */
	bool shut;     /* closing, and our side of the socket is shut down */
	bool read_eof; /* the client shut its side */
	size_t discarded;
	struct admin_job *job; /* the command on a worker now, or NULL */
	bool sub_latency, sub_log;
	uint64_t log_dropped;
};

struct admin_server {
	struct admin_server_config cfg;
	char *token;
	size_t token_len;
	char *socket_path; /* created by us, unlinked at stop; NULL if none */
	int max_connections, auth_timeout_ms;
	size_t max_pending;

	struct event_base *base;
	struct evconnlistener *listeners[2];
	struct event *stop_ev, *done_ev, *log_ev, *tick_ev, *reap_ev, *accept_retry_ev;
	pthread_t thread;
	bool thread_started;

	struct admin_conn *live, *dead;
	int nconns;
	int latency_subs, log_subs;
	int tap_id;
	struct admin_logq *logq;

	pthread_mutex_t done_mu;
	pthread_cond_t done_cv;
	struct admin_job *done_head, *done_tail;
	int jobs_out; /* submitted and not yet back on the done list */
};

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ------------------------------------------------------------------------------------ */
/* calls and jobs */

static void call_clear(struct admin_call *c)
{
	admin_line_free(c->argc, c->argv);
	c->argc = 0;
	json_decref(c->data);
	c->data = NULL;
}

static void job_free(struct admin_job *j)
{
	if (j == NULL)
		return;
	call_clear(&j->call);
	free(j->reply);
	free(j);
}

/* ------------------------------------------------------------------------------------ */
/* closing */

static void sub_log_off(struct admin_conn *c);
static void sub_latency_off(struct admin_conn *c);

/* Frees the socket now and the struct later (reap_ev); safe to call twice. */
static void conn_close(struct admin_conn *c, const char *why)
{
	struct admin_server *s = c->server;
	if (c->bev == NULL)
		return;
	if (why != NULL)
		log_info("admin_disconnected", "%s (%s): %s", c->peer,
		         c->authed ? c->operator_name : "not authenticated", why);
	sub_latency_off(c);
	sub_log_off(c);
	if (c->auth_timer != NULL) {
		event_free(c->auth_timer);
		c->auth_timer = NULL;
	}
	bufferevent_free(c->bev);
	c->bev = NULL;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->live = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	if (c->counted)
		s->nconns--;
	c->prev = NULL;
	c->next = s->dead;
	s->dead = c;
	event_active(s->reap_ev, 0, 0);
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
	struct admin_server *s = arg;
	struct admin_conn **p = &s->dead;
	while (*p != NULL) {
		struct admin_conn *c = *p;
		if (c->job != NULL) { /* its command is still on a worker */
			p = &c->next;
			continue;
		}
		*p = c->next;
		free(c);
	}
}

static void on_flushed(struct admin_conn *c)
{
	if (c->read_eof) {
		conn_close(c, NULL);
		return;
	}
	/* Half-close and read until the client closes too: closing a socket with unread
	 * input sends a reset, which can destroy the reply before the client reads it. */
	shutdown(bufferevent_getfd(c->bev), SHUT_WR);
	c->shut = true;
}

/* Sends what is queued, then closes (lingering as on_flushed says). False if it was
 * closed or closing already. */
static bool conn_close_after_flush(struct admin_conn *c)
{
	if (c->bev == NULL || c->closing)
		return false;
	c->closing = true;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	evbuffer_drain(in, evbuffer_get_length(in));
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
	struct timeval tv = {LINGER_S, 0};
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_enable(c->bev, c->read_eof ? EV_WRITE : EV_READ | EV_WRITE);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		on_flushed(c);
	return true;
}

/* ------------------------------------------------------------------------------------ */
/* writing */

/* Queues one line; false (and the connection closed) when the client is too slow. */
static bool conn_send(struct admin_conn *c, const char *line, size_t len)
{
	if (c->bev == NULL)
		return false;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	evbuffer_add(out, line, len);
	evbuffer_add(out, "\n", 1);
	if (evbuffer_get_length(out) <= c->server->max_pending)
		return true;
	log_warn("admin_slow_reader", "%s (%s): more than %zu bytes unsent; disconnected", c->peer,
	         c->authed ? c->operator_name : "not authenticated", c->server->max_pending);
	conn_close(c, NULL);
	return false;
}

static void log_command(const struct admin_conn *c, const struct admin_call *call, int64_t start_us)
{
	bool ok = call->done && call->status == HEX_OK;
	/* Reads are routine (a console polls); changes and failures are worth a line. */
	enum logger_level lvl =
	    ok && (call->verb == NULL || !call->verb->mutating) ? LOGGER_DEBUG : LOGGER_INFO;
	char fields[256];
	snprintf(fields, sizeof fields,
	         "\"operator\":\"%s\",\"verb\":\"%s\",\"ok\":%s%s%s%s,\"duration_us\":%lld",
	         c->operator_name, call->verb != NULL ? call->verb->name : "(unknown)",
	         ok ? "true" : "false", ok ? "" : ",\"code\":\"",
	         ok               ? ""
	         : call->code     ? call->code
	         : call->err.code ? call->err.code
	                          : hex_status_name(call->status),
	         ok ? "" : "\"", (long long)(now_us() - start_us));
	logger_write_fields(lvl, "admin_command", fields);
}

/* Sends the reply of call; false if that closed the connection. */
static bool conn_reply(struct admin_conn *c, const struct admin_call *call)
{
	char *line = admin_reply_line(call);
	bool alive = conn_send(c, line, strlen(line));
	free(line);
	return alive;
}

/* A protocol-level error that is no verb's outcome (framing, auth, dispatch). */
static bool conn_error(struct admin_conn *c, const char *code, const char *field,
                       const char *message)
{
	struct admin_call call = {0};
	admin_fail_code(&call, code, field, "%s", message);
	return conn_reply(c, &call);
}

/* ------------------------------------------------------------------------------------ */
/* subscriptions */

static void on_log_tap(const char *line, size_t len, void *arg)
{
	struct admin_server *s = arg;
	if (admin_logq_push(s->logq, line, len))
		event_active(s->log_ev, 0, 0);
}

static bool sub_log_on(struct admin_conn *c)
{
	struct admin_server *s = c->server;
	if (c->sub_log)
		return true;
	if (s->log_subs == 0 && (s->tap_id = logger_tap_add(on_log_tap, s)) < 0)
		return false;
	c->sub_log = true;
	c->log_dropped = 0;
	s->log_subs++;
	return true;
}

static void sub_log_off(struct admin_conn *c)
{
	struct admin_server *s = c->server;
	if (!c->sub_log)
		return;
	c->sub_log = false;
	if (--s->log_subs > 0)
		return;
	/* Last one out: stop the tap (it waits for running taps), then drop what it left. */
	logger_tap_remove(s->tap_id);
	s->tap_id = -1;
	uint64_t dropped;
	admin_logq_lines_free(admin_logq_take(s->logq, &dropped));
}

static void sub_latency_on(struct admin_conn *c)
{
	struct admin_server *s = c->server;
	if (c->sub_latency)
		return;
	c->sub_latency = true;
	if (s->latency_subs++ == 0) {
		struct timeval tv = {TICK_MS / 1000, (TICK_MS % 1000) * 1000};
		event_add(s->tick_ev, &tv);
	}
}

static void sub_latency_off(struct admin_conn *c)
{
	struct admin_server *s = c->server;
	if (!c->sub_latency)
		return;
	c->sub_latency = false;
	if (--s->latency_subs == 0)
		event_del(s->tick_ev);
}

/* A log line as the `data` of an event: its own JSON object, or, for the text format
 * (or a line that is not JSON), {"text": line}. Malloc'ed event line. */
static char *log_event_line(const struct admin_log_line *l)
{
	json_t *parsed = json_loadb(l->text, l->len, 0, NULL);
	bool object = json_is_object(parsed);
	json_decref(parsed);
	if (object)
		return xasprintf("{\"event\":\"log\",\"data\":%s}", l->text);
	char *text = xstrndup(l->text, l->len);
	json_t *o = json_pack("{s:s,s:{s:s}}", "event", "log", "data", "text", text);
	if (o == NULL) { /* not UTF-8: keep the ASCII, mark the rest */
		for (char *p = text; *p != '\0'; p++)
			if ((unsigned char)*p >= 0x80)
				*p = '?';
		o = json_pack("{s:s,s:{s:s}}", "event", "log", "data", "text", text);
	}
	char *line = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	free(text);
	return line;
}

static void on_log_ready(evutil_socket_t fd, short what, void *arg)
{
	struct admin_server *s = arg;
	uint64_t dropped = 0;
	struct admin_log_line *lines = admin_logq_take(s->logq, &dropped);
	for (struct admin_conn *c = s->live; c != NULL; c = c->next)
		if (c->sub_log)
			c->log_dropped += dropped;
	for (struct admin_log_line *l = lines; l != NULL; l = l->next) {
		char *ev = log_event_line(l);
		if (ev == NULL)
			continue;
		size_t len = strlen(ev);
		for (struct admin_conn *c = s->live, *next; c != NULL; c = next) {
			next = c->next;
			if (c->sub_log && !c->closing)
				conn_send(c, ev, len);
		}
		free(ev);
	}
	admin_logq_lines_free(lines);
	for (struct admin_conn *c = s->live, *next; c != NULL; c = next) {
		next = c->next;
		if (!c->sub_log || c->closing || c->log_dropped == 0)
			continue;
		char ev[96];
		int n = snprintf(ev, sizeof ev,
		                 "{\"event\":\"log_dropped\",\"data\":{\"dropped\":%llu}}",
		                 (unsigned long long)c->log_dropped);
		c->log_dropped = 0;
		conn_send(c, ev, (size_t)n);
	}
}

static double round_to(double v, double unit)
{
	return round(v / unit) * unit;
}

static void latency_row(const char *method, const char *route, const struct latency_stats *st,
                        void *arg)
{
	json_t *routes = arg;
	char name[160];
	snprintf(name, sizeof name, "%s %s", method, route);
	json_t *row = json_pack("{s:s,s:f,s:f,s:f,s:f,s:f}", "route", name, "rps",
	                        round_to(st->requests_per_s, 0.1), "error_rate",
	                        round_to(st->error_rate, 0.0001), "p50_ms",
	                        round_to((double)st->p50_us / 1000.0, 0.001), "p95_ms",
	                        round_to((double)st->p95_us / 1000.0, 0.001), "p99_ms",
	                        round_to((double)st->p99_us / 1000.0, 0.001));
	if (row != NULL)
		json_array_append_new(routes, row);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct admin_server *s = arg;
	char when[JSON_TIME_LEN];
	json_time_format(wall_us(), when);
	json_t *routes = json_array();
	if (s->cfg.latency != NULL)
		s->cfg.latency(LATENCY_WINDOW_S, latency_row, routes);
	json_t *ev = json_pack("{s:s,s:{s:s,s:i,s:o}}", "event", "latency", "data", "time", when,
	                       "window_s", LATENCY_WINDOW_S, "routes", routes);
	/* Rounded above; a short precision keeps 0.41 from printing as 0.40999999999999998. */
	char *line = ev != NULL ? json_dumps(ev, JSON_COMPACT | JSON_REAL_PRECISION(12)) : NULL;
	json_decref(ev);
	if (line == NULL)
		return;
	size_t len = strlen(line);
	for (struct admin_conn *c = s->live, *next; c != NULL; c = next) {
		next = c->next;
		if (c->sub_latency && !c->closing)
			conn_send(c, line, len);
	}
	free(line);
}

/* ------------------------------------------------------------------------------------ */
/* the server's own verbs: connection state, answered on the loop */

static const char *const topics[] = {"latency", "log"};

static int topic_index(const char *word)
{
	for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++)
		if (strcasecmp(word, topics[i]) == 0)
			return (int)i;
	return -1;
}

static void own_quit(struct admin_conn *c, struct admin_call *call)
{
	admin_ok(call, json_string("bye"));
}

static void own_subscribe(struct admin_conn *c, struct admin_call *call)
{
	int t = topic_index(call->argv[call->first]);
	if (t < 0) {
		admin_fail_code(call, "invalid_argument", "topic",
		                "usage: SUBSCRIBE LATENCY or SUBSCRIBE LOG");
		return;
	}
	if (t == 0) {
		sub_latency_on(c);
		admin_ok(call,
		         json_pack("{s:s,s:i}", "subscribed", "latency", "interval_ms", TICK_MS));
		return;
	}
	if (!sub_log_on(c)) {
		admin_fail_code(call, "unavailable", NULL, "the log feed has no free slot");
		return;
	}
	admin_ok(call, json_pack("{s:s}", "subscribed", "log"));
}

static void own_unsubscribe(struct admin_conn *c, struct admin_call *call)
{
	int only = -1;
	if (call->argc > call->first && (only = topic_index(call->argv[call->first])) < 0) {
		admin_fail_code(call, "invalid_argument", "topic",
		                "usage: UNSUBSCRIBE [LATENCY or LOG]");
		return;
	}
	json_t *gone = json_array();
	if ((only < 0 || only == 0) && c->sub_latency) {
		sub_latency_off(c);
		json_array_append_new(gone, json_string("latency"));
	}
	if ((only < 0 || only == 1) && c->sub_log) {
		sub_log_off(c);
		json_array_append_new(gone, json_string("log"));
	}
	admin_ok(call, json_pack("{s:o}", "unsubscribed", gone));
}

/* Also in the verb table for HELP and completion; the server answers them itself
 * whatever the table says, since they act on the connection. */
static const struct {
	struct admin_verb verb;
	void (*run)(struct admin_conn *c, struct admin_call *call);
	bool closes; /* once its reply is sent */
} own_verbs[] = {
    {{"QUIT", "QUIT", "close the connection", false, 0, 0, NULL}, own_quit, true},
    {{"SUBSCRIBE", "SUBSCRIBE LATENCY|LOG", "stream latency ticks or log lines", false, 1, 1, NULL},
     own_subscribe,
     false},
    {{"UNSUBSCRIBE", "UNSUBSCRIBE [LATENCY|LOG]", "stop one stream, or all", false, 0, 1, NULL},
     own_unsubscribe,
     false},
};

static int own_verb_index(const char *word)
{
	for (size_t i = 0; i < sizeof own_verbs / sizeof own_verbs[0]; i++)
		if (strcasecmp(word, own_verbs[i].verb.name) == 0)
			return (int)i;
	return -1;
}

/* ------------------------------------------------------------------------------------ */
/* commands */

static void conn_pump(struct admin_conn *c);

static void run_job(void *job, void *ctx)
{
	struct admin_job *j = job;
	struct admin_server *s = j->server;
	struct admin_env env = {.svc = ctx, .process = s->cfg.process};
	admin_run(&j->call, &env);
	j->reply = admin_reply_line(&j->call);
	/* The event is activated under the lock: once jobs_out reaches 0 the stopper may
	 * free the server, so nothing of it may be touched after the unlock. */
	pthread_mutex_lock(&s->done_mu);
	j->next = NULL;
	if (s->done_tail != NULL)
		s->done_tail->next = j;
	else
		s->done_head = j;
	s->done_tail = j;
	s->jobs_out--;
	event_active(s->done_ev, 0, 0);
	pthread_cond_broadcast(&s->done_cv);
	pthread_mutex_unlock(&s->done_mu);
}

static struct admin_job *take_done(struct admin_server *s)
{
	pthread_mutex_lock(&s->done_mu);
	struct admin_job *j = s->done_head;
	s->done_head = s->done_tail = NULL;
	pthread_mutex_unlock(&s->done_mu);
	return j;
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	struct admin_server *s = arg;
	for (struct admin_job *j = take_done(s), *next; j != NULL; j = next) {
		next = j->next;
		struct admin_conn *c = j->conn;
		c->job = NULL;
		if (c->bev == NULL) { /* the client left meanwhile */
			event_active(s->reap_ev, 0, 0);
		} else {
			log_command(c, &j->call, j->start_us);
			if (conn_send(c, j->reply, strlen(j->reply)))
				conn_pump(c);
		}
		job_free(j);
	}
}

static void submit(struct admin_conn *c, struct admin_job *j)
{
	struct admin_server *s = c->server;
	pthread_mutex_lock(&s->done_mu);
	s->jobs_out++;
	pthread_mutex_unlock(&s->done_mu);
	c->job = j;
	if (s->cfg.exec.ops->submit(s->cfg.exec.self, run_job, j))
		return;
	pthread_mutex_lock(&s->done_mu);
	s->jobs_out--;
	pthread_mutex_unlock(&s->done_mu);
	c->job = NULL;
	admin_fail_code(&j->call, "busy", NULL, "the admin workers are busy; retry shortly");
	log_command(c, &j->call, j->start_us);
	conn_reply(c, &j->call);
	job_free(j);
}

/* Printable ASCII words are echoed in errors; anything else is not worth repeating. */
static bool echoable(const char *w)
{
	size_t n = strlen(w);
	if (n == 0 || n > 32)
		return false;
	for (const char *p = w; *p != '\0'; p++)
		if (*p < 0x21 || *p > 0x7e)
			return false;
	return true;
}

/* The count rule of admin_run for the verbs that never reach it. */
static bool own_args_ok_or_fail(struct admin_call *call)
{
	const struct admin_verb *v = call->verb;
	int nargs = call->argc - call->first;
	if (nargs < v->min_args)
		admin_fail_code(call, "invalid_argument", "topic", "missing argument: usage: %s",
		                v->usage);
	else if (v->max_args >= 0 && nargs > v->max_args)
		admin_fail_code(call, "invalid_argument", "args", "too many arguments: usage: %s",
		                v->usage);
	return !call->done;
}

/* An authenticated connection's command, its words already split (argv taken). */
static void dispatch(struct admin_conn *c, int argc, char **argv)
{
	struct admin_job *j = xcalloc(1, sizeof *j);
	j->server = c->server;
	j->conn = c;
	j->start_us = now_us();
	struct admin_call *call = &j->call;
	call->argc = argc;
	memcpy(call->argv, argv, (size_t)argc * sizeof *argv);
	hex_strlcpy(call->operator_name, c->operator_name, sizeof call->operator_name);

	int own = own_verb_index(argv[0]);
	int nwords = 0;
	if (strcasecmp(argv[0], "AUTH") == 0) {
		admin_fail_code(call, "invalid_argument", NULL, "already authenticated");
	} else if (own >= 0) {
		call->verb = &own_verbs[own].verb;
		call->first = 1;
		if (own_args_ok_or_fail(call))
			own_verbs[own].run(c, call);
	} else if ((call->verb = admin_verb_find(argc, argv, &nwords)) == NULL) {
		if (echoable(argv[0]))
			admin_fail_code(call, "unknown_verb", NULL,
			                "unknown verb %s; HELP lists the verbs", argv[0]);
		else
			admin_fail_code(call, "unknown_verb", NULL,
			                "unknown verb; HELP lists the verbs");
	} else if (call->verb->exec == NULL) {
		admin_fail_code(call, "internal", NULL, "%s is not served here", call->verb->name);
	} else {
		call->first = nwords;
		submit(c, j);
		return;
	}
	log_command(c, call, j->start_us);
	if (conn_reply(c, call) && own >= 0 && own_verbs[own].closes && call->status == HEX_OK)
		conn_close_after_flush(c);
	job_free(j);
}

static bool operator_ok(const char *name)
{
	size_t n = strlen(name);
	return n >= 1 && n <= ADMIN_OPERATOR_MAX && strspn(name, OPERATOR_CHARS) == n;
}

/* The first line: AUTH <token> [operator]. Anything else ends the connection. */
static void authenticate(struct admin_conn *c, int argc, char **argv)
{
	struct admin_server *s = c->server;
	if (argc < 2 || argc > 3 || strcasecmp(argv[0], "AUTH") != 0) {
		log_warn("admin_auth_failed", "%s: the first line was not AUTH <token> [operator]",
		         c->peer);
		conn_error(c, "unauthorized", NULL,
		           "the first line must be AUTH <token> [operator]");
		conn_close_after_flush(c);
		return;
	}
	if (!hex_ct_equal(argv[1], strlen(argv[1]), s->token, s->token_len)) {
		log_warn("admin_auth_failed", "%s: wrong token", c->peer);
		conn_error(c, "unauthorized", NULL, "wrong token");
		conn_close_after_flush(c);
		return;
	}
	if (argc == 3 && !operator_ok(argv[2])) {
		log_warn("admin_auth_failed", "%s: bad operator name", c->peer);
		conn_error(c, "invalid_argument", "operator",
		           "operator must be 1 to 63 of A-Z a-z 0-9 . _ @ -");
		conn_close_after_flush(c);
		return;
	}
	hex_strlcpy(c->operator_name, argc == 3 ? argv[2] : DEFAULT_OPERATOR,
	            sizeof c->operator_name);
	c->authed = true;
	event_free(c->auth_timer);
	c->auth_timer = NULL;
	log_info("admin_authenticated", "%s: operator %s", c->peer, c->operator_name);
	struct admin_call call = {0};
	admin_ok(&call, json_pack("{s:s}", "operator", c->operator_name));
	conn_reply(c, &call);
	call_clear(&call);
}

static void handle_line(struct admin_conn *c, const char *line, size_t len)
{
	int argc = 0;
	char *argv[ADMIN_ARGS_MAX];
	struct hex_err err = {0};
	if (admin_line_split(line, len, &argc, argv, &err) != HEX_OK) {
		if (!c->authed) {
			authenticate(c, 0, argv);
			return;
		}
		conn_error(c, "invalid_argument", NULL, err.message);
		return;
	}
	if (argc == 0) /* a blank line is no command: nothing to answer */
		return;
	if (!c->authed) {
		authenticate(c, argc, argv);
		admin_line_free(argc, argv);
		return;
	}
	dispatch(c, argc, argv); /* takes argv */
}

static void line_too_long(struct admin_conn *c)
{
	log_warn("admin_line_too_long", "%s: a line over %d bytes; disconnected", c->peer,
	         LINE_MAX_BYTES);
	conn_error(c, "line_too_long", NULL, "a line is longer than 65536 bytes");
	conn_close_after_flush(c);
}

/* Input without a newline is already too long past LINE_MAX bytes, unless the one byte
 * past them is a \r, which belongs to the line end. */
static bool no_eol_too_long(struct evbuffer *in)
{
	size_t len = evbuffer_get_length(in);
	if (len <= LINE_MAX_BYTES)
		return false;
	if (len > LINE_MAX_BYTES + 1)
		return true;
	struct evbuffer_ptr at;
	char last = 0;
	evbuffer_ptr_set(in, &at, LINE_MAX_BYTES, EVBUFFER_PTR_SET);
	evbuffer_copyout_from(in, &at, &last, 1);
	return last != '\r';
}

/* Runs the buffered lines, one at a time: stops while a command is on a worker, while
 * the client has a backlog to read, and when the connection ends. */
static void conn_pump(struct admin_conn *c)
{
	while (c->bev != NULL && !c->closing && c->job == NULL) {
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) > PAUSE_OUTPUT)
			return; /* on_write resumes */
		struct evbuffer *in = bufferevent_get_input(c->bev);
		size_t eol_len = 0;
		struct evbuffer_ptr p = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
		if (p.pos < 0) {
			if (no_eol_too_long(in))
				line_too_long(c);
			else if (c->read_eof &&
			         conn_close_after_flush(c)) /* a last line without \n is dropped */
				log_info("admin_disconnected", "%s (%s): closed by the client",
				         c->peer,
				         c->authed ? c->operator_name : "not authenticated");
			return;
		}
		size_t n = (size_t)p.pos;
		if (n > LINE_MAX_BYTES + 1) {
			line_too_long(c);
			return;
		}
		char *line = xmalloc(n + 1);
		evbuffer_remove(in, line, n);
		evbuffer_drain(in, eol_len);
		line[n] = '\0';
		if (n > 0 && line[n - 1] == '\r')
			line[--n] = '\0';
		if (n > LINE_MAX_BYTES)
			line_too_long(c);
		else
			handle_line(c, line, n);
		free(line);
	}
}

/* ------------------------------------------------------------------------------------ */
/* connection events */

static void on_read(struct bufferevent *bev, void *arg)
{
	struct admin_conn *c = arg;
	if (!c->closing) {
		conn_pump(c);
		return;
	}
	struct evbuffer *in = bufferevent_get_input(bev);
	c->discarded += evbuffer_get_length(in);
	evbuffer_drain(in, evbuffer_get_length(in));
	if (c->discarded > LINGER_DISCARD_MAX)
		conn_close(c, NULL);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct admin_conn *c = arg;
	if (!c->closing)
		conn_pump(c);
	else if (!c->shut && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		on_flushed(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct admin_conn *c = arg;
	if (what & BEV_EVENT_EOF) {
		c->read_eof = true;
		if (c->shut || (what & BEV_EVENT_WRITING))
			conn_close(c, c->closing ? NULL : "closed by the client");
		else if (!c->closing)
			conn_pump(c);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		conn_close(c, c->closing ? NULL : "timed out");
		return;
	}
	if (what & BEV_EVENT_ERROR)
		conn_close(c, c->closing ? NULL : "connection error");
}

static void on_auth_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct admin_conn *c = arg;
	if (c->authed || c->closing)
		return;
	log_warn("admin_auth_timeout", "%s: no AUTH within %d ms; disconnected", c->peer,
	         c->server->auth_timeout_ms);
	conn_error(c, "unauthorized", NULL, "no AUTH in time");
	conn_close_after_flush(c);
}

static void peer_name(const struct sockaddr *sa, char out[PEER_MAX])
{
	char host[INET6_ADDRSTRLEN] = "?";
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		evutil_inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
		snprintf(out, PEER_MAX, "%s:%u", host, (unsigned)ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		evutil_inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
		snprintf(out, PEER_MAX, "[%s]:%u", host, (unsigned)ntohs(in6->sin6_port));
	} else {
		snprintf(out, PEER_MAX, "unix");
	}
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
	struct admin_server *s = arg;
	int sndbuf = SOCKET_SNDBUF;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
	struct admin_conn *c = xcalloc(1, sizeof *c);
	c->server = s;
	peer_name(sa, c->peer);
	hex_strlcpy(c->operator_name, DEFAULT_OPERATOR, sizeof c->operator_name);
	c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		log_error("admin_accept_failed", "%s: no buffer for the connection", c->peer);
		evutil_closesocket(fd);
		free(c);
		return;
	}
	c->next = s->live;
	if (s->live != NULL)
		s->live->prev = c;
	s->live = c;
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, LINE_MAX_BYTES + 2);
	bufferevent_setwatermark(c->bev, EV_WRITE, PAUSE_OUTPUT, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (s->nconns >= s->max_connections) {
		log_warn("admin_busy", "%s: already %d admin connections; refused", c->peer,
		         s->nconns);
		conn_error(c, "busy", NULL, "too many admin connections; retry later");
		conn_close_after_flush(c);
		return;
	}
	c->counted = true;
	s->nconns++;
	c->auth_timer = evtimer_new(s->base, on_auth_timeout, c);
	struct timeval tv = {s->auth_timeout_ms / 1000, (s->auth_timeout_ms % 1000) * 1000};
	evtimer_add(c->auth_timer, &tv);
	log_debug("admin_connected", "%s", c->peer);
}

static void on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
	struct admin_server *s = arg;
	for (int i = 0; i < 2; i++)
		if (s->listeners[i] != NULL)
			evconnlistener_enable(s->listeners[i]);
}

/* Out of descriptors, say: pause accepting a moment instead of spinning on the error. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
	struct admin_server *s = arg;
	static int64_t last_log;
	if (logger_every(&last_log, 10))
		log_error("admin_accept_error", "accept failed: %s",
		          evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	evconnlistener_disable(l);
	struct timeval tv = {0, ACCEPT_BACKOFF_MS * 1000};
	event_add(s->accept_retry_ev, &tv);
}

/* ------------------------------------------------------------------------------------ */
/* life cycle */

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	struct admin_server *s = arg;
	for (int i = 0; i < 2; i++) {
		if (s->listeners[i] != NULL)
			evconnlistener_free(s->listeners[i]);
		s->listeners[i] = NULL;
	}
	while (s->live != NULL)
		conn_close(s->live, "hexd is stopping");
	event_base_loopbreak(s->base);
}

static void *loop_main(void *arg)
{
	struct admin_server *s = arg;
	pthread_setname_np(pthread_self(), "admin-loop");
	event_base_loop(s->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

/*
 * Binds the unix socket at path, mode 0600 before it listens (so nobody else can ever
 * connect). A socket file nobody answers on is a leftover and is replaced; a live one
 * or any other file is refused.
 */
static int unix_listen(const char *path, struct hex_err *err)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (!hex_strlcpy(sun.sun_path, path, sizeof sun.sun_path)) {
		hex_fail(err, HEX_INVALID, "socket_path", "%s: longer than %zu bytes", path,
		         sizeof sun.sun_path - 1);
		return -1;
	}
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			hex_fail(err, HEX_CONFLICT, "socket_path", "%s exists and is not a socket",
			         path);
			return -1;
		}
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		bool live = probe >= 0 && connect(probe, (struct sockaddr *)&sun, sizeof sun) == 0;
		if (probe >= 0)
			close(probe);
		if (live) {
			hex_fail(err, HEX_CONFLICT, "socket_path", "%s: in use by a running server",
			         path);
			return -1;
		}
		unlink(path);
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
		hex_fail(err, HEX_UNAVAILABLE, "socket_path", "cannot bind %s: %s", path,
		         strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (chmod(path, 0600) != 0 || listen(fd, 64) != 0) {
		hex_fail(err, HEX_UNAVAILABLE, "socket_path", "cannot listen on %s: %s", path,
		         strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	return fd;
}

static void server_free(struct admin_server *s)
{
	for (int i = 0; i < 2; i++)
		if (s->listeners[i] != NULL)
			evconnlistener_free(s->listeners[i]);
	/* The loop is gone: connections still open are closed now, and commands that came
	 * back are dropped with them. */
	while (s->live != NULL)
		conn_close(s->live, NULL);
	for (struct admin_job *j = take_done(s), *next; j != NULL; j = next) {
		next = j->next;
		j->conn->job = NULL;
		job_free(j);
	}
	while (s->dead != NULL) {
		struct admin_conn *c = s->dead;
		s->dead = c->next;
		free(c);
	}
	struct event *evs[] = {s->stop_ev, s->done_ev, s->log_ev,
	                       s->tick_ev, s->reap_ev, s->accept_retry_ev};
	for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
		if (evs[i] != NULL)
			event_free(evs[i]);
	if (s->base != NULL)
		event_base_free(s->base);
	admin_logq_free(s->logq);
	if (s->socket_path != NULL) {
		unlink(s->socket_path);
		free(s->socket_path);
	}
	free(s->token);
	pthread_mutex_destroy(&s->done_mu);
	pthread_cond_destroy(&s->done_cv);
	free(s);
}

struct admin_server *admin_server_start(const struct admin_server_config *cfg, struct hex_err *err)
{
	struct admin_server *s = xcalloc(1, sizeof *s);
	int unix_fd = -1;
	s->cfg = *cfg;
	s->token = xstrdup(cfg->token);
	s->token_len = strlen(s->token);
	s->cfg.token = NULL;
	s->cfg.socket_path = NULL;
	s->max_connections = cfg->max_connections > 0 ? cfg->max_connections : MAX_CONNECTIONS;
	s->auth_timeout_ms = cfg->auth_timeout_ms > 0 ? cfg->auth_timeout_ms : AUTH_TIMEOUT_MS;
	s->max_pending = cfg->max_pending_output > 0 ? cfg->max_pending_output : MAX_PENDING_OUTPUT;
	s->tap_id = -1;
	pthread_mutex_init(&s->done_mu, NULL);
	pthread_cond_init(&s->done_cv, NULL);
	s->logq = admin_logq_new(LOG_QUEUE_LINES);
	evthread_use_pthreads(); /* workers and log writers wake this loop */
	s->base = event_base_new();
	if (s->base == NULL) {
		hex_fail(err, HEX_INTERNAL, NULL, "cannot create an event loop");
		goto fail;
	}
	s->stop_ev = event_new(s->base, -1, 0, on_stop, s);
	s->done_ev = event_new(s->base, -1, 0, on_done, s);
	s->log_ev = event_new(s->base, -1, 0, on_log_ready, s);
	s->tick_ev = event_new(s->base, -1, EV_PERSIST, on_tick, s);
	s->reap_ev = event_new(s->base, -1, 0, on_reap, s);
	s->accept_retry_ev = evtimer_new(s->base, on_accept_retry, s);
	if (cfg->socket_path != NULL && cfg->socket_path[0] != '\0') {
		if ((unix_fd = unix_listen(cfg->socket_path, err)) < 0)
			goto fail;
		s->socket_path = xstrdup(cfg->socket_path);
	}
	int fds[2] = {cfg->listen_fd, unix_fd};
	for (int i = 0; i < 2; i++) {
		if (fds[i] < 0)
			continue;
		/* backlog 0: the socket already listens */
		s->listeners[i] =
		    evconnlistener_new(s->base, on_accept, s,
		                       LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fds[i]);
		if (s->listeners[i] == NULL) {
			hex_fail(err, HEX_INTERNAL, NULL, "cannot accept on the admin socket");
			goto fail;
		}
		fds[i] = -1;
		if (i == 0)
			s->cfg.listen_fd = -1;
		else
			unix_fd = -1;
		evconnlistener_set_error_cb(s->listeners[i], on_accept_error);
	}
	if (pthread_create(&s->thread, NULL, loop_main, s) != 0) {
		hex_fail(err, HEX_INTERNAL, NULL, "cannot start the admin thread");
		goto fail;
	}
	s->thread_started = true;
	return s;
fail:
	if (s->cfg.listen_fd >= 0)
		close(s->cfg.listen_fd);
	if (unix_fd >= 0)
		close(unix_fd);
	server_free(s);
	return NULL;
}

void admin_server_stop(struct admin_server *s)
{
	if (s == NULL)
		return;
	if (s->thread_started) {
		event_active(s->stop_ev, 0, 0);
		pthread_join(s->thread, NULL);
	}
	pthread_mutex_lock(&s->done_mu);
	while (s->jobs_out > 0)
		pthread_cond_wait(&s->done_cv, &s->done_mu);
	pthread_mutex_unlock(&s->done_mu);
	server_free(s);
}

/*
 * console: hexctl's ncurses console. One thread, one loop: poll(2) on the terminal and
 * the admin connection with a one-second tick. Admin calls are synchronous (a screen
 * asks, waits at most CONSOLE_CALL_MS, draws); events (latency ticks) are collected
 * between keys. A lost connection is retried with a doubling backoff while the status
 * line says "reconnecting"; the screens keep what they last showed.
 */
#include "tui/console.h"

#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/xmalloc.h"
#include "tui/admin_client.h"
#include "tui/console_fmt.h"
#include "tui/console_screen.h"

#define CONSOLE_TICK_MS      1000
#define CONSOLE_STATUS_MS    3000
#define CONSOLE_RETRY_MIN_MS 500
#define CONSOLE_RETRY_MAX_MS 4000
#define CONSOLE_MESSAGE_MS   8000
#define CONSOLE_EVENTS_MAX   256 /* per loop turn, so a flood cannot starve the keys */

static const struct console_screen *const console_screens[CONSOLE_SCREEN_COUNT] = {
    [CONSOLE_USERS] = &console_users_screen,       [CONSOLE_MESSAGES] = &console_messages_screen,
    [CONSOLE_PAYMENTS] = &console_payments_screen, [CONSOLE_LEDGER] = &console_ledger_screen,
    [CONSOLE_DLQ] = &console_dlq_screen,           [CONSOLE_LATENCY] = &console_latency_screen,
};

/* Set by the handlers of the signals that end the console; read by the loop. */
static volatile sig_atomic_t console_stop_signal;
/* Whether curses owns the terminal now: the exit paths restore it once. */
static bool console_curses_on;

static const int console_stop_signals[] = {SIGINT, SIGTERM, SIGHUP};
#ifndef __SANITIZE_ADDRESS__
/* A crash still gives the terminal back (the sanitizers keep their own handlers). */
static const int console_fatal_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGABRT, SIGILL};
#endif

struct console_saved_signals {
	struct sigaction stop[sizeof console_stop_signals / sizeof console_stop_signals[0]];
#ifndef __SANITIZE_ADDRESS__
	struct sigaction fatal[sizeof console_fatal_signals / sizeof console_fatal_signals[0]];
#endif
};

int64_t console_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void console_restore(void)
{
	if (console_curses_on) {
		console_curses_on = false;
		endwin();
	}
}

static void console_on_stop_signal(int sig)
{
	console_stop_signal = sig;
}

#ifndef __SANITIZE_ADDRESS__
static void console_on_fatal_signal(int sig)
{
	/* Not async-signal-safe, but the process is dying anyway and a raw-mode terminal
	 * is worse (htop does the same). SA_RESETHAND makes the re-raise fatal. */
	console_restore();
	raise(sig);
}
#endif

static void console_signals_install(struct console_saved_signals *saved)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = console_on_stop_signal;
	sa.sa_flags = 0; /* no SA_RESTART: the signal must wake poll(2) */
	for (size_t i = 0; i < sizeof console_stop_signals / sizeof console_stop_signals[0]; i++)
		sigaction(console_stop_signals[i], &sa, &saved->stop[i]);
#ifndef __SANITIZE_ADDRESS__
	sa.sa_handler = console_on_fatal_signal;
	sa.sa_flags = (int)SA_RESETHAND;
	for (size_t i = 0; i < sizeof console_fatal_signals / sizeof console_fatal_signals[0]; i++)
		sigaction(console_fatal_signals[i], &sa, &saved->fatal[i]);
#endif
}

static void console_signals_restore(const struct console_saved_signals *saved)
{
	for (size_t i = 0; i < sizeof console_stop_signals / sizeof console_stop_signals[0]; i++)
		sigaction(console_stop_signals[i], &saved->stop[i], NULL);
#ifndef __SANITIZE_ADDRESS__
	for (size_t i = 0; i < sizeof console_fatal_signals / sizeof console_fatal_signals[0]; i++)
		sigaction(console_fatal_signals[i], &saved->fatal[i], NULL);
#endif
}

void console_flash(struct console *con, enum console_style st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(con->message, sizeof con->message, fmt, ap);
	va_end(ap);
	con->message_style = st;
	con->message_until_ms = console_now_ms() + CONSOLE_MESSAGE_MS;
	con->dirty = true;
}

void *console_screen_self(struct console *con, int id)
{
	return id >= 0 && id < CONSOLE_SCREEN_COUNT ? con->self[id] : NULL;
}

void console_switch(struct console *con, int id)
{
	if (id < 0 || id >= CONSOLE_SCREEN_COUNT)
		return;
	con->current = id;
	con->help = false;
	con->dirty = true;
	con->screens[id]->show(con->self[id], con);
}

/* The connection is gone: say so and start retrying. */
static void console_lost(struct console *con, const char *why)
{
	if (!con->connected)
		return;
	admin_client_disconnect(con->client);
	con->connected = false;
	con->attempts = 0;
	con->retry_ms = console_now_ms() + CONSOLE_RETRY_MIN_MS;
	hex_strlcpy(con->conn_error, why && *why ? why : "the connection was lost",
	            sizeof con->conn_error);
	console_flash(con, CONSOLE_BAD, "lost the connection to hexd (%s): reconnecting",
	              con->conn_error);
}

/* Protocol codes as statuses, so screens can tell "not found" from "refused". */
static const struct {
	const char *code;
	enum hex_status st;
} console_codes[] = {
    {"invalid_argument", HEX_INVALID},
    {"not_found", HEX_NOT_FOUND},
    {"conflict", HEX_CONFLICT},
    {"unavailable", HEX_UNAVAILABLE},
    {"unauthorized", HEX_UNAUTHENTICATED},
    {"busy", HEX_UNAVAILABLE},
};

static enum hex_status console_code_status(const char *code)
{
	for (size_t i = 0; i < sizeof console_codes / sizeof console_codes[0]; i++) {
		if (strcmp(code, console_codes[i].code) == 0)
			return console_codes[i].st;
	}
	return HEX_INTERNAL;
}

char *console_vformat(const char *fmt, va_list ap)
{
	va_list again;
	int len;
	char *s;

	va_copy(again, ap);
	len = vsnprintf(NULL, 0, fmt, again);
	va_end(again);
	s = xmalloc(len > 0 ? (size_t)len + 1 : 1);
	s[0] = '\0';
	if (len > 0)
		vsnprintf(s, (size_t)len + 1, fmt, ap);
	return s;
}

static enum hex_status console_vcall(struct console *con, bool quiet, int timeout_ms, json_t **data,
                                     const char *fmt, va_list ap)
{
	enum hex_status st;
	struct hex_err err = {0};
	json_t *reply = NULL;
	char *line = console_vformat(fmt, ap);

	if (data)
		*data = NULL;
	if (!con->connected) {
		st = HEX_UNAVAILABLE; /* the status line already says reconnecting */
		goto out;
	}
	st = admin_client_call(con->client, line, timeout_ms, &reply, &err);
	if (st != HEX_OK) {
		if (!admin_client_connected(con->client))
			console_lost(con, err.message);
		else if (!quiet)
			console_flash(con, CONSOLE_BAD, "%s",
			              err.message[0] ? err.message : hex_status_name(st));
		goto out;
	}
	con->dirty = true;
	if (json_is_true(json_object_get(reply, "ok"))) {
		if (data) {
			json_t *d = json_object_get(reply, "data");
			*data = d ? json_incref(d) : json_null();
		}
		goto out;
	}
	const char *code = console_fmt_str(reply, "code");
	const char *msg = console_fmt_str(reply, "error");
	st = console_code_status(code);
	if (!quiet)
		console_flash(con, CONSOLE_BAD, "%s", *msg ? msg : *code ? code : "hexd refused");
out:
	free(line);
	json_decref(reply);
	return st;
}

enum hex_status console_call(struct console *con, int timeout_ms, json_t **data, const char *fmt,
                             ...)
{
	va_list ap;
	enum hex_status st;

	va_start(ap, fmt);
	st = console_vcall(con, false, timeout_ms, data, fmt, ap);
	va_end(ap);
	return st;
}

static enum hex_status console_call_quiet(struct console *con, json_t **data, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum hex_status console_call_quiet(struct console *con, json_t **data, const char *fmt, ...)
{
	va_list ap;
	enum hex_status st;

	va_start(ap, fmt);
	st = console_vcall(con, true, CONSOLE_CALL_MS, data, fmt, ap);
	va_end(ap);
	return st;
}

/* STATS and EVENTS LAG for the status line; failures only leave it as it was. */
static void console_status_refresh(struct console *con)
{
	struct console_status *s = &con->status;
	json_t *d = NULL;

	s->next_ms = console_now_ms() + CONSOLE_STATUS_MS;
	if (console_call_quiet(con, &d, "STATS") == HEX_OK) {
		hex_strlcpy(s->version, console_fmt_str(d, "version"), sizeof s->version);
		s->uptime_s = console_fmt_int(d, "uptime_s", 0);
		s->uptime_at_ms = console_now_ms();
		s->have_stats = true;
	}
	json_decref(d);
	d = NULL;
	if (console_call_quiet(con, &d, "EVENTS LAG") == HEX_OK) {
		s->lag_s = console_fmt_int(d, "oldest_unpublished_s", 0);
		s->dead_open = console_fmt_int(d, "dead_letters_open", 0);
		s->outbox = console_fmt_int(d, "outbox_unpublished", 0);
		s->have_lag = true;
	}
	json_decref(d);
}

static void console_connect(struct console *con)
{
	struct hex_err err = {0};
	enum hex_status st = admin_client_connect(con->client, &err);

	if (st != HEX_OK) {
		int shift = con->attempts < 8 ? con->attempts : 8;
		int64_t delay = (int64_t)CONSOLE_RETRY_MIN_MS << shift;
		con->attempts++;
		con->retry_ms = console_now_ms() +
		                (delay < CONSOLE_RETRY_MAX_MS ? delay : CONSOLE_RETRY_MAX_MS);
		hex_strlcpy(con->conn_error, err.message[0] ? err.message : hex_status_name(st),
		            sizeof con->conn_error);
		con->dirty = true;
		return;
	}
	con->connected = true;
	con->attempts = 0;
	con->conn_error[0] = '\0';
	console_flash(con, CONSOLE_GOOD, "%s hexd at %s",
	              con->ever_connected ? "reconnected to" : "connected to",
	              admin_client_target(con->client));
	con->ever_connected = true;
	/* Subscribed from the start, so the sparklines have history when the latency
	 * screen opens. */
	if (console_call(con, CONSOLE_CALL_MS, NULL, "SUBSCRIBE LATENCY") != HEX_OK &&
	    !con->connected)
		return;
	console_status_refresh(con);
	if (con->connected)
		con->screens[con->current]->show(con->self[con->current], con);
}

static void console_drain_events(struct console *con)
{
	for (int i = 0; i < CONSOLE_EVENTS_MAX && con->connected; i++) {
		json_t *ev = NULL;
		enum hex_status st = admin_client_next_event(con->client, 0, &ev);
		if (st == HEX_NOT_FOUND)
			break;
		if (st != HEX_OK) {
			console_lost(con, "hexd closed the connection");
			break;
		}
		const char *name = console_fmt_str(ev, "event");
		const json_t *data = json_object_get(ev, "data");
		for (int s = 0; s < CONSOLE_SCREEN_COUNT; s++) {
			if (con->screens[s]->event)
				con->screens[s]->event(con->self[s], con, name, data);
		}
		json_decref(ev);
		con->dirty = true;
	}
}

static void console_tick(struct console *con)
{
	int64_t now = console_now_ms();

	if (con->connected && !admin_client_connected(con->client))
		console_lost(con, "hexd closed the connection");
	if (!con->connected && now >= con->retry_ms)
		console_connect(con);
	if (con->connected && now >= con->status.next_ms)
		console_status_refresh(con);
	for (int s = 0; s < CONSOLE_SCREEN_COUNT; s++) {
		if (con->screens[s]->tick)
			con->screens[s]->tick(con->self[s], con, s == con->current);
	}
	if (con->message[0] && now >= con->message_until_ms)
		con->message[0] = '\0';
	con->dirty = true; /* the status line's uptime moves */
}

/* -- keys every screen has */

static void console_key_help(void *self, struct console *con)
{
	con->help = true;
}

static void console_key_quit(void *self, struct console *con)
{
	con->quit = true;
}

static void console_key_reload(void *self, struct console *con)
{
	clearok(curscr, TRUE);
	if (!con->connected) {
		con->retry_ms = 0; /* try now rather than at the end of the backoff */
		return;
	}
	console_status_refresh(con);
	con->screens[con->current]->show(con->self[con->current], con);
}

static void console_key_next(void *self, struct console *con)
{
	console_switch(con, (con->current + 1) % CONSOLE_SCREEN_COUNT);
}

static void console_key_prev(void *self, struct console *con)
{
	console_switch(con, (con->current + CONSOLE_SCREEN_COUNT - 1) % CONSOLE_SCREEN_COUNT);
}

#define CONSOLE_GOTO(n)                                                                            \
	static void console_goto_##n(void *self, struct console *con)                              \
	{                                                                                          \
		console_switch(con, n);                                                            \
	}
CONSOLE_GOTO(0)
CONSOLE_GOTO(1)
CONSOLE_GOTO(2)
CONSOLE_GOTO(3)
CONSOLE_GOTO(4)
CONSOLE_GOTO(5)

/* keyname NULL: a second key for an entry above, not listed again. */
const struct console_action console_global_actions[] = {
    {'1', "1-6", "screens (F1-F6 too)", 0, false, console_goto_0},
    {'2', NULL, NULL, 0, false, console_goto_1},
    {'3', NULL, NULL, 0, false, console_goto_2},
    {'4', NULL, NULL, 0, false, console_goto_3},
    {'5', NULL, NULL, 0, false, console_goto_4},
    {'6', NULL, NULL, 0, false, console_goto_5},
    {CONSOLE_FN(KEY_F(1)), NULL, NULL, 0, false, console_goto_0},
    {CONSOLE_FN(KEY_F(2)), NULL, NULL, 0, false, console_goto_1},
    {CONSOLE_FN(KEY_F(3)), NULL, NULL, 0, false, console_goto_2},
    {CONSOLE_FN(KEY_F(4)), NULL, NULL, 0, false, console_goto_3},
    {CONSOLE_FN(KEY_F(5)), NULL, NULL, 0, false, console_goto_4},
    {CONSOLE_FN(KEY_F(6)), NULL, NULL, 0, false, console_goto_5},
    {'\t', "Tab", "next screen (S-Tab: back)", 0, false, console_key_next},
    {CONSOLE_FN(KEY_BTAB), NULL, NULL, 0, false, console_key_prev},
    {CONSOLE_CTRL('l'), "^L", "reload, redraw, reconnect now", 0, false, console_key_reload},
    {'?', "?", "help", 0, true, console_key_help},
    {'q', "q", "quit", 0, true, console_key_quit},
    {0, NULL, NULL, 0, false, NULL},
};

static bool console_action_applies(const struct console_action *a, int mode)
{
	return a->modes == 0 || (a->modes & (1u << mode)) != 0;
}

static bool console_run_action(const struct console_action *table, void *self, struct console *con,
                               int key, int mode)
{
	for (const struct console_action *a = table; a && a->key; a++) {
		if (a->key == key && console_action_applies(a, mode)) {
			a->run(self, con);
			return true;
		}
	}
	return false;
}

static int console_key_normal(int key)
{
	switch (key) {
	case '\r':
	case CONSOLE_FN(KEY_ENTER):
		return CONSOLE_KEY_ENTER;
	case 127:
	case 8:
		return CONSOLE_KEY_BACKSPACE;
	default:
		return key;
	}
}

static void console_key(struct console *con, int key)
{
	const struct console_screen *scr = con->screens[con->current];
	void *self = con->self[con->current];
	int mode = scr->mode ? scr->mode(self) : 0;

	if (key == CONSOLE_FN(KEY_RESIZE)) {
		clearok(curscr, TRUE);
		return;
	}
	if (con->prompt.active) {
		console_prompt_key(&con->prompt, con, key);
		return;
	}
	if (con->help) {
		con->help = false;
		return;
	}
	if (console_run_action(console_global_actions, NULL, con, key, 0))
		return;
	if (console_run_action(scr->actions, self, con, key, mode))
		return;
	scr->key(self, con, key);
}

static void console_read_keys(struct console *con)
{
	wint_t wch;
	int r;

	while (!con->quit && !console_stop_signal && (r = get_wch(&wch)) != ERR) {
		int key = r == KEY_CODE_YES ? CONSOLE_FN((int)wch) : (int)wch;
		console_key(con, console_key_normal(key));
		con->dirty = true;
	}
}

static void console_loop(struct console *con)
{
	int64_t next_tick = console_now_ms() + CONSOLE_TICK_MS;

	while (!con->quit && !console_stop_signal) {
		if (con->dirty) {
			con->dirty = false;
			console_frame_draw(con);
		}
		int64_t wait = next_tick - console_now_ms();
		struct pollfd p[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
		                      {.fd = admin_client_fd(con->client), .events = POLLIN}};
		int n = con->connected && p[1].fd >= 0 ? 2 : 1;
		int r = poll(p, (nfds_t)n,
		             wait < 0                 ? 0
		             : wait > CONSOLE_TICK_MS ? CONSOLE_TICK_MS
		                                      : (int)wait);
		if (r < 0 && errno != EINTR)
			break;
		if (r > 0 && (p[0].revents & (POLLHUP | POLLERR | POLLNVAL)))
			break; /* the terminal is gone: nothing will ever be typed again */
		console_read_keys(con);
		console_drain_events(con);
		if (console_now_ms() >= next_tick) {
			console_tick(con);
			next_tick = console_now_ms() + CONSOLE_TICK_MS;
		}
	}
}

int console_run(struct admin_client *c, const struct console_options *o)
{
	static bool atexit_done;
	struct console con;
	struct console_saved_signals saved;
	SCREEN *scr;
	int rc = 0;

	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		fprintf(stderr, "hexctl: the console needs a terminal; use `hexctl shell` or "
		                "`hexctl <verb> ...` instead\n");
		return 1;
	}
	memset(&con, 0, sizeof con);
	con.client = c;
	con.screens = console_screens;
	setlocale(LC_ALL, "");
	con.utf8 = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
	console_fmt_set_utf8(con.utf8);

	console_stop_signal = 0;
	console_signals_install(&saved);
	scr = newterm(NULL, stdout, stdin);
	if (scr == NULL) {
		console_signals_restore(&saved);
		fprintf(stderr, "hexctl: cannot drive this terminal (TERM=%s)\n",
		        getenv("TERM") ? getenv("TERM") : "");
		return 1;
	}
	console_curses_on = true;
	if (!atexit_done) {
		atexit(console_restore);
		atexit_done = true;
	}
	cbreak();
	noecho();
	nonl();
	intrflush(stdscr, FALSE);
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	set_escdelay(25);
	curs_set(0);
	console_draw_setup(!(o && o->no_color) && has_colors());

	for (int i = 0; i < CONSOLE_SCREEN_COUNT; i++)
		con.self[i] = console_screens[i]->create(&con);
	con.current = CONSOLE_USERS;
	con.dirty = true;
	console_connect(&con); /* shows the first screen once connected */
	console_loop(&con);
	for (int i = 0; i < CONSOLE_SCREEN_COUNT; i++)
		console_screens[i]->destroy(con.self[i]);

	/* A terminal without an alternate screen keeps what is drawn last: a blank one. */
	erase();
	refresh();
	console_restore();
	delscreen(scr);
	console_signals_restore(&saved);
	if (console_stop_signal)
		rc = 128 + console_stop_signal;
	console_stop_signal = 0;
	return rc;
}

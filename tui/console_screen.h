/*
 * console_screen: what the console's parts share. The console (console.c) owns the
 * admin connection, the prompt and the message row; each screen (console_users.c ...)
 * is a table entry of callbacks and key actions, so the tab bar, the legend, `?` help
 * and key dispatch are all generated from the same tables.
 */
#ifndef HEX_TUI_CONSOLE_SCREEN_H
#define HEX_TUI_CONSOLE_SCREEN_H

#include <curses.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/hex.h"
#include "tui/console_draw.h"
#include "tui/console_prompt.h"

struct admin_client;

/* Keys: a character (its code point), or a curses KEY_* code marked by CONSOLE_FN. */
#define CONSOLE_KEY_FNBIT     0x1000000
#define CONSOLE_FN(k)         ((k) | CONSOLE_KEY_FNBIT)
#define CONSOLE_CTRL(c)       ((c)&0x1f)
#define CONSOLE_KEY_ENTER     '\n'
#define CONSOLE_KEY_ESC       27
#define CONSOLE_KEY_BACKSPACE CONSOLE_FN(KEY_BACKSPACE)

/* Milliseconds an ordinary admin call may take before the connection counts as lost. */
#define CONSOLE_CALL_MS 5000
/* Items asked for per page. */
#define CONSOLE_PAGE 50

enum console_screen_id {
	CONSOLE_USERS = 0,
	CONSOLE_MESSAGES,
	CONSOLE_PAYMENTS,
	CONSOLE_LEDGER,
	CONSOLE_DLQ,
	CONSOLE_LATENCY,
	CONSOLE_SCREEN_COUNT
};

struct console;

/* One key of a screen: the legend and help list them in table order. */
struct console_action {
	int key;
	const char *keyname; /* as shown: "r", "Enter" */
	const char *what;    /* "replay" */
	unsigned modes;      /* bit (1 << mode) of the screen modes it works in; 0: all */
	bool legend;         /* also in the bottom legend (help shows every one) */
	void (*run)(void *self, struct console *con);
};

struct console_screen {
	const char *tab;                      /* "Users" */
	const struct console_action *actions; /* ends with a zero key */
	void *(*create)(struct console *con);
	void (*destroy)(void *self);
	/* Became visible, or the operator asked for a reload, or hexd came back. */
	void (*show)(void *self, struct console *con);
	/* Rows y .. y + rows - 1 (row y is the title), cols wide. */
	void (*draw)(void *self, struct console *con, int y, int rows, int cols);
	/* Keys no action took (movement); true if used. */
	bool (*key)(void *self, struct console *con, int key);
	/* Once a second; visible says whether it is on screen. NULL: none. */
	void (*tick)(void *self, struct console *con, bool visible);
	/* An event line from hexd (every screen gets every event). NULL: none. */
	void (*event)(void *self, struct console *con, const char *name, const json_t *data);
	/* The screen's current mode, for its actions' masks. NULL: always 0. */
	int (*mode)(const void *self);
};

/* Keys every screen has (console.c), ending with a zero key. */
extern const struct console_action console_global_actions[];

extern const struct console_screen console_users_screen;
extern const struct console_screen console_messages_screen;
extern const struct console_screen console_payments_screen;
extern const struct console_screen console_ledger_screen;
extern const struct console_screen console_dlq_screen;
extern const struct console_screen console_latency_screen;

/* The status line's facts, refreshed every few seconds. */
struct console_status {
	bool have_stats, have_lag;
	char version[32];
	long long uptime_s;
	int64_t uptime_at_ms; /* when uptime_s was read: the line counts on from there */
	long long lag_s;      /* age of the oldest unpublished event */
	long long dead_open;
	long long outbox;
	int64_t next_ms;
};

struct console {
	struct admin_client *client;
	const struct console_screen *const *screens;
	void *self[CONSOLE_SCREEN_COUNT];
	int current;
	bool utf8;
	bool quit;
	bool dirty; /* something changed: draw before waiting again */
	bool help;  /* the `?` overlay is open */
	struct console_prompt prompt;

	/* The message row. */
	char message[256];
	enum console_style message_style;
	int64_t message_until_ms;

	/* The connection. */
	bool connected;
	bool ever_connected;
	int attempts;     /* failed connects since the connection was lost */
	int64_t retry_ms; /* when the next connect is due */
	char conn_error[200];

	struct console_status status;
};

int64_t console_now_ms(void);

/*
 * Runs one admin command (fmt builds the line; quote user text with admin_client_quote).
 * HEX_OK: *data (if data is not NULL) is the reply's "data", a new reference. Otherwise
 * the reason is on the message row (hexd's error sentence, or the lost connection, which
 * the status line then shows as reconnecting) and the status says which kind:
 * HEX_NOT_FOUND, HEX_INVALID, HEX_CONFLICT, HEX_UNAVAILABLE ...
 */
enum hex_status console_call(struct console *con, int timeout_ms, json_t **data, const char *fmt,
                             ...) __attribute__((format(printf, 4, 5)));

/* fmt's text, malloc'ed (the caller frees it). */
char *console_vformat(const char *fmt, va_list ap);

/* Shows a sentence on the message row for a few seconds. */
void console_flash(struct console *con, enum console_style st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Makes screen id the visible one (and shows it). */
void console_switch(struct console *con, int id);
void *console_screen_self(struct console *con, int id);

/* Draws a screen's title row: title on the left, right (may be NULL) on the right. */
void console_frame_title(int y, int cols, const char *title, const char *right);
/* The whole frame: tabs, the current screen, message or prompt, status, legend, help. */
void console_frame_draw(struct console *con);

/* Cross-screen jumps: the messages or payments of one user (label: how to name them). */
void console_messages_show_user(struct console *con, const char *user_id, const char *label);
void console_payments_show_user(struct console *con, const char *user_id, const char *label);

#endif

/*
 * console: hexctl's full-screen ncurses console (no arguments). Six screens (users,
 * messages, payments, ledger, dead letters, latency) over one admin-port connection,
 * which it reconnects by itself when hexd goes away. The terminal is restored on every
 * way out: quit, error, SIGINT, SIGTERM, SIGHUP, exit().
 */
#ifndef HEX_TUI_CONSOLE_H
#define HEX_TUI_CONSOLE_H

#include <stdbool.h>

struct admin_client;

struct console_options {
	bool no_color; /* NO_COLOR set and non-empty: attributes only, never a color */
};

/*
 * Runs the console on the controlling terminal until the operator quits or a signal
 * stops it. c may be disconnected: the console connects (and reconnects) itself. c stays
 * the caller's. Returns the process exit code: 0 after `q`, 128 + signal number after
 * SIGINT/SIGTERM/SIGHUP, 1 when the terminal cannot be used.
 */
int console_run(struct admin_client *c, const struct console_options *o);

#endif

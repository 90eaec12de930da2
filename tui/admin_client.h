/*
 * admin_client: the admin-port protocol (docs/ADMIN.md) as hexctl speaks it. Every part of
 * hexctl (one-shot verbs, the shell, the console) goes through it. One client is one
 * connection used by one thread at a time; it blocks only inside the calls that take a
 * timeout, so a curses or readline loop can watch admin_client_fd() with poll(2) and
 * collect events with admin_client_next_event(c, 0, ...).
 *
 * Uses jansson and libc only; never libpq.
 */
#ifndef HEX_TUI_ADMIN_CLIENT_H
#define HEX_TUI_ADMIN_CLIENT_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>

#include "core/hex.h"

#define ADMIN_CLIENT_DEFAULT_TARGET "127.0.0.1:7070"

struct admin_client;

/*
 * A disconnected client. target: "host:port", "[v6addr]:port", or a unix socket path (any
 * target holding a '/'); NULL takes $HEX_ADMIN_SOCKET when set and non-empty, else
 * $HEX_ADMIN_LISTEN, else ADMIN_CLIENT_DEFAULT_TARGET. token: NULL takes $HEX_ADMIN_TOKEN.
 * operator_name: NULL takes $USER, else "unknown"; characters the protocol refuses are
 * replaced by '_' and it is cut to 63, so any login name works. The strings are copied.
 * The caller frees the client with admin_client_free.
 */
struct admin_client *admin_client_new(const char *target, const char *token,
                                      const char *operator_name);

/*
 * Connects (TCP or unix, waiting at most a few seconds) and authenticates. A client that
 * is already connected is disconnected first, so this is also "reconnect".
 * HEX_UNAUTHENTICATED: no token, or hexd refused it. HEX_UNAVAILABLE: hexd cannot be
 * reached, is busy, or closed the connection. err->message says which, for an operator.
 */
enum hex_status admin_client_connect(struct admin_client *c, struct hex_err *err) HEX_MUST_CHECK;

/*
 * Sends one command line (no newline; the server parses its quoting) and waits up to
 * timeout_ms (-1: forever) for its reply line. Event lines that arrive meanwhile are
 * queued for admin_client_next_event. HEX_OK means a reply arrived, be it
 * {"ok":true,...} or {"ok":false,...}: *reply is that object, owned by the caller
 * (json_decref). Failures leave *reply NULL:
 *   HEX_INVALID      the line holds a newline or NUL byte or is over 64 KiB (not sent);
 *   HEX_UNAVAILABLE  not connected (not sent), the connection was lost, or no reply came
 *                    in time; the client is then disconnected, because a late reply
 *                    would be taken for the next command's;
 *   HEX_INTERNAL     hexd sent something that is not a protocol line (disconnected).
 * A connection that hexd closed while the client was idle is noticed before sending:
 * then nothing was sent and admin_client_connected() is false, so the caller may
 * reconnect and send again without running the command twice.
 */
enum hex_status admin_client_call(struct admin_client *c, const char *line, int timeout_ms,
                                  json_t **reply, struct hex_err *err) HEX_MUST_CHECK;

/*
 * The oldest queued event line ({"event":...,"data":...}), else one that arrives within
 * timeout_ms (0: only what is already readable; -1: forever). *event is owned by the
 * caller. HEX_NOT_FOUND on timeout, HEX_UNAVAILABLE when disconnected or the
 * connection is lost (then disconnected).
 */
enum hex_status admin_client_next_event(struct admin_client *c, int timeout_ms,
                                        json_t **event) HEX_MUST_CHECK;

/* The socket to poll for readability; -1 when disconnected. */
int admin_client_fd(const struct admin_client *c);
bool admin_client_connected(const struct admin_client *c);
/* The target as resolved by admin_client_new; owned by the client. */
const char *admin_client_target(const struct admin_client *c);
/*
 * flag (or NULL): a signal handler's flag. When a wait for hexd is interrupted by a signal
 * and *flag is non-zero, the call gives up with HEX_UNAVAILABLE and disconnects, so Ctrl-C
 * can abandon a slow command. The flag is read, never cleared.
 */
void admin_client_set_interrupt(struct admin_client *c, volatile sig_atomic_t *flag);
/* Closes the connection, drops queued events; the client can connect again. */
void admin_client_disconnect(struct admin_client *c);
/* Accepts NULL. */
void admin_client_free(struct admin_client *c);

/*
 * word as one protocol word: unchanged when it is non-empty and holds no space, tab,
 * double quote or backslash, else double-quoted with \" and \\ escaped. malloc'ed; the
 * caller frees it. For building command lines from argv-like words.
 */
char *admin_client_quote(const char *word);

#endif

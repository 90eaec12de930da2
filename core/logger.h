/*
 * logger: one line per event, JSON (default) or text, to stderr. Thread-safe.
 * Lines about a request carry its request id and trace id, taken from the calling
 * thread's context. Never pass secrets, tokens or password material.
 */
#ifndef HEX_LOGGER_H
#define HEX_LOGGER_H

#include <stddef.h>
#include <stdint.h>

enum logger_level { LOGGER_DEBUG = 0, LOGGER_INFO, LOGGER_WARN, LOGGER_ERROR };
enum logger_format { LOGGER_JSON = 0, LOGGER_TEXT };

void logger_setup(enum logger_format fmt, enum logger_level min_level);
int logger_parse_level(const char *s); /* -1 if unknown */

/* The request this thread works on now; NULLs clear it. Strings must outlive the use. */
void logger_set_context(const char *request_id, const char *trace_id);

/* event: a short snake_case name ("redis_down"); msg: a human sentence. */
void logger_write(enum logger_level lvl, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Writes a line already formatted as key/value pairs: fields is a JSON object body
 * without braces (`"status":200,"route":"/v1/users/:id"`), escaped by the caller.
 * The text format prints it as is.
 */
void logger_write_fields(enum logger_level lvl, const char *event, const char *fields);

/*
 * As logger_write_fields, but into the calling thread's buffer: one write(2) for many
 * lines. The thread flushes it with logger_flush (a loop does every few ms and at exit);
 * a full buffer flushes itself. For per-request lines on hot threads.
 */
void logger_write_fields_buffered(enum logger_level lvl, const char *event, const char *fields);
void logger_flush(void);

/*
 * Taps: callbacks that receive every line written (JSON or text, as configured, without
 * its newline), on the thread that writes it, at the time it is written (buffered lines
 * too). A tap must return quickly, must not block and must not log. While no tap is
 * registered a line costs one atomic load more. At most LOGGER_TAPS_MAX at once.
 */
#define LOGGER_TAPS_MAX 4
typedef void (*logger_tap_fn)(const char *line, size_t len, void *arg);
/* Registers fn; returns its id, or -1 if every slot is taken. */
int logger_tap_add(logger_tap_fn fn, void *arg);
/* Unregisters a tap; when it returns, fn runs nowhere and will not run again. Must not
 * be called from a tap, nor while holding a lock a tap takes. id -1 is ignored. */
void logger_tap_remove(int id);

/* Appends s to buf (size n) as JSON string contents (escaped, no quotes). */
void logger_json_escape(char *buf, size_t n, const char *s);

/* True at most once per interval_s for *last_s (an atomic time stamp): rate-limited logs. */
int logger_every(int64_t *last_s, int interval_s);

#define log_debug(ev, ...) logger_write(LOGGER_DEBUG, ev, __VA_ARGS__)
#define log_info(ev, ...)  logger_write(LOGGER_INFO, ev, __VA_ARGS__)
#define log_warn(ev, ...)  logger_write(LOGGER_WARN, ev, __VA_ARGS__)
#define log_error(ev, ...) logger_write(LOGGER_ERROR, ev, __VA_ARGS__)

#endif

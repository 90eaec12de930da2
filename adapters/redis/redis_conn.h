/*
 * redis_conn: one synchronous hiredis connection, owned by one thread (not thread-safe;
 * hexd gives each worker thread its own).
 *
 * It connects lazily, on the first command. After any failure the connection is dropped
 * and not tried again before a backoff (100 ms, doubling up to 2 s, reset by the next
 * reply), so a dead Redis costs a caller a quick NULL instead of a timeout on every call.
 * Connect and command timeouts are both the timeout given at creation.
 *
 * hiredis writes with write(2): the process must ignore SIGPIPE (hexd does), or a write
 * to a connection Redis has just reset kills it.
 */
#ifndef HEX_REDIS_CONN_H
#define HEX_REDIS_CONN_H

#include <hiredis/hiredis.h>

#include "core/hex.h"

#define REDIS_CONN_BACKOFF_MIN_MS 100
#define REDIS_CONN_BACKOFF_MAX_MS 2000

struct redis_conn;

/*
 * url: `redis://[[user]:password@]host[:port][/db]`; timeout_ms > 0. NULL and err
 * (HEX_INVALID, field "redis_url" or "redis_timeout_ms") on bad arguments; a server
 * that is down is not an error here. The caller frees the result with redis_conn_free().
 */
struct redis_conn *redis_conn_new(const char *url, int timeout_ms, struct hex_err *err);
void redis_conn_free(struct redis_conn *c); /* NULL is fine */

/*
 * Runs one command (hiredis format: %s for a C string, %b for pointer + size_t length).
 * Returns the reply, which the caller frees with freeReplyObject(), or NULL on any
 * failure: no connection (or still backing off), a timeout, an I/O error (these drop the
 * connection), or an error reply from Redis (counted; the connection is kept).
 */
redisReply *redis_conn_command(struct redis_conn *c, const char *fmt, ...);
/* The same with binary-safe arguments. */
redisReply *redis_conn_command_argv(struct redis_conn *c, int argc, const char **argv,
                                    const size_t *argvlen);

struct redis_cmd {
	int argc;
	const char **argv;
	const size_t *argvlen;
};

/*
 * Sends n commands in one round trip. HEX_OK: replies[0..n) hold every reply (none an
 * error reply) and the caller frees each with freeReplyObject(). HEX_UNAVAILABLE on any
 * failure, as for redis_conn_command(); replies[] are then all NULL.
 */
enum hex_status redis_conn_pipeline(struct redis_conn *c, const struct redis_cmd *cmds, size_t n,
                                    redisReply **replies) HEX_MUST_CHECK;

/* HEX_OK if Redis answers PING now, else HEX_UNAVAILABLE (same backoff rules). */
enum hex_status redis_conn_ping(struct redis_conn *c) HEX_MUST_CHECK;

/* The URL with its password masked, for logs and status pages; owned by c. */
const char *redis_conn_safe_url(const struct redis_conn *c);

/* Process-wide counters over every connection since start. */
struct redis_conn_stats {
	uint64_t failures;      /* connects, timeouts and I/O errors that dropped a connection */
	uint64_t skipped;       /* calls refused without trying because of a backoff */
	uint64_t error_replies; /* error replies from Redis (the connection was kept) */
};
void redis_conn_stats(struct redis_conn_stats *out);

#endif

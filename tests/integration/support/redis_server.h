/*
 * redis_server: a private redis-server for one test (failure cases: kill, stall,
 * restart), on a free loopback port, in its own temporary folder, no persistence.
 */
#ifndef HEX_TEST_REDIS_SERVER_H
#define HEX_TEST_REDIS_SERVER_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <sys/types.h>

struct redis_server {
	pid_t pid; /* 0 when not running */
	int port;
	char dir[64];
	char url[64]; /* redis://127.0.0.1:<port>/0 */
	const char *const *extra_args;
};

/*
 * Starts redis-server with --enable-debug-command yes plus extra_args (NULL-terminated,
 * may be NULL; e.g. {"--requirepass", "secret", NULL}) and waits until it answers.
 * port 0 picks a free one. False (with a message on stderr) if it did not come up.
 */
bool redis_server_start(struct redis_server *s, int port, const char *const *extra_args);
/* Kills it with SIGKILL, as a crash would, and reaps it; the folder stays. */
void redis_server_kill(struct redis_server *s);
/* Starts it again on the same port with the same arguments. */
bool redis_server_restart(struct redis_server *s);
/* Kills it if running and removes its folder. */
void redis_server_stop(struct redis_server *s);

/*
 * A plain hiredis connection to url (AUTH and SELECT done), for a test to look behind
 * the adapter's back; NULL with a message on failure. Free with redisFree().
 */
redisContext *redis_server_connect(const char *url);

/* Writes a random UUID-shaped id, so that tests sharing one Redis never collide. */
void redis_server_unique_id(char out[37]);
/* Reads the env variable the test harness sets; prints why and returns NULL if unset. */
const char *redis_server_test_url(void);

#endif

/* redis_server.c: start, kill and restart a private redis-server for a test. */
#include "redis_server.h"

#include "adapters/redis/redis_url.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_WAIT_MS 5000
#define ARGS_MAX      40

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof a;
	int port = -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Any reply, even NOAUTH, means the server is accepting commands. */
static bool answers(int port)
{
	struct timeval tv = {0, 200000};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
	bool ok = false;
	if (c != NULL && c->err == 0) {
		redisReply *r = redisCommand(c, "PING");
		ok = r != NULL;
		if (r != NULL)
			freeReplyObject(r);
	}
	if (c != NULL)
		redisFree(c);
	return ok;
}

static pid_t spawn(struct redis_server *s)
{
	char port[16], log[128];
	snprintf(port, sizeof port, "%d", s->port);
	snprintf(log, sizeof log, "%s/redis.log", s->dir);
	const char *argv[ARGS_MAX] = {
	    "redis-server", "--port",      port,   "--bind",
	    "127.0.0.1",    "--save",      "",     "--appendonly",
	    "no",           "--dir",       s->dir, "--enable-debug-command",
	    "yes",          "--daemonize", "no"};
	int n = 15;
	for (int i = 0; s->extra_args != NULL && s->extra_args[i] != NULL && n < ARGS_MAX - 1; i++)
		argv[n++] = s->extra_args[i];
	argv[n] = NULL;

	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	/* A crashed test must not leave its server behind. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	execvp(argv[0], (char *const *)argv);
	_exit(127);
}

static bool wait_up(struct redis_server *s)
{
	for (int waited = 0; waited < START_WAIT_MS; waited += 10) {
		int status;
		if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
			fprintf(stderr,
			        "redis-server on port %d exited at start; see %s/redis.log\n",
			        s->port, s->dir);
			s->pid = 0;
			return false;
		}
		if (answers(s->port))
			return true;
		sleep_ms(10);
	}
	fprintf(stderr, "redis-server on port %d did not answer within %d ms\n", s->port,
	        START_WAIT_MS);
	redis_server_kill(s);
	return false;
}

bool redis_server_start(struct redis_server *s, int port, const char *const *extra_args)
{
	memset(s, 0, sizeof *s);
	s->extra_args = extra_args;
	snprintf(s->dir, sizeof s->dir, "/tmp/hex-redis-test-XXXXXX");
	if (mkdtemp(s->dir) == NULL) {
		fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
		return false;
	}
	s->port = port != 0 ? port : free_port();
	if (s->port <= 0) {
		fprintf(stderr, "no free port\n");
		return false;
	}
	snprintf(s->url, sizeof s->url, "redis://127.0.0.1:%d/0", s->port);
	return redis_server_restart(s);
}

bool redis_server_restart(struct redis_server *s)
{
	s->pid = spawn(s);
	if (s->pid < 0) {
		fprintf(stderr, "fork: %s\n", strerror(errno));
		s->pid = 0;
		return false;
	}
	return wait_up(s);
}

void redis_server_kill(struct redis_server *s)
{
	if (s->pid <= 0)
		return;
	kill(s->pid, SIGKILL);
	waitpid(s->pid, NULL, 0);
	s->pid = 0;
}

void redis_server_stop(struct redis_server *s)
{
	redis_server_kill(s);
	if (s->dir[0] == '\0')
		return;
	char path[128];
	static const char *const files[] = {"redis.log", "dump.rdb"};
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", s->dir, files[i]);
		unlink(path);
	}
	rmdir(s->dir);
	s->dir[0] = '\0';
}

void redis_server_unique_id(char out[37])
{
	unsigned char b[16];
	if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
		fprintf(stderr, "getrandom failed\n");
		abort();
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
	         b[13], b[14], b[15]);
}

const char *redis_server_test_url(void)
{
	const char *url = getenv("HEX_TEST_REDIS_URL");
	if (url == NULL || url[0] == '\0') {
		fprintf(stderr, "HEX_TEST_REDIS_URL is not set: run the tests through "
		                "scripts/test.sh, or export it (e.g. redis://127.0.0.1:56379/0)\n");
		return NULL;
	}
	return url;
}

static bool setup_ok(redisContext *c, int argc, const char **argv)
{
	redisReply *r = redisCommandArgv(c, argc, argv, NULL);
	bool ok = r != NULL && r->type == REDIS_REPLY_STATUS;
	if (!ok)
		fprintf(stderr, "%s failed: %s\n", argv[0],
		        r != NULL && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr);
	if (r != NULL)
		freeReplyObject(r);
	return ok;
}

redisContext *redis_server_connect(const char *url)
{
	struct redis_url u;
	struct hex_err err = {0};
	if (redis_url_parse(url, &u, &err) != HEX_OK) {
		fprintf(stderr, "%s\n", err.message);
		return NULL;
	}
	redisContext *c = redisConnect(u.host, u.port);
	if (c == NULL || c->err != 0) {
		fprintf(stderr, "cannot connect to redis at %s:%d: %s\n", u.host, u.port,
		        c != NULL ? c->errstr : "out of memory");
		goto fail;
	}
	char db[16];
	snprintf(db, sizeof db, "%d", u.db);
	const char *auth_user[] = {"AUTH", u.user, u.password};
	const char *auth[] = {"AUTH", u.password};
	const char *select[] = {"SELECT", db};
	if (u.has_password &&
	    !(u.user[0] != '\0' ? setup_ok(c, 3, auth_user) : setup_ok(c, 2, auth)))
		goto fail;
	if (!setup_ok(c, 2, select))
		goto fail;
	return c;
fail:
	if (c != NULL)
		redisFree(c);
	return NULL;
}

/* admin_client.c: the admin-port protocol client (docs/ADMIN.md) shared by all of hexctl. */
#include "tui/admin_client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/xmalloc.h"

#define CONNECT_TIMEOUT_MS 5000
#define AUTH_TIMEOUT_MS    5000
#define LINE_MAX_SEND      (64 * 1024) /* the server's own limit (ADMIN.md) */
#define LINE_MAX_RECV      (64 * 1024 * 1024)
#define EVENTS_MAX         4096 /* queued events beyond this drop the oldest */
#define OPERATOR_MAX       63

struct admin_client {
	char *target;
	char *token;
	char *operator_name;
	int fd;
	char *buf; /* received bytes not yet consumed as lines */
	size_t len, cap;
	json_t *events; /* FIFO of event objects not yet collected */
	volatile sig_atomic_t *interrupt;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left until deadline for poll(2): -1 forever, never below 0. */
static int remaining_ms(int64_t deadline)
{
	if (deadline < 0)
		return -1;
	int64_t left = deadline - now_ms();
	if (left <= 0)
		return 0;
	return left > INT32_MAX ? INT32_MAX : (int)left;
}

static int64_t deadline_after(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

static bool operator_char_ok(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '.' || ch == '_' || ch == '@' || ch == '-';
}

/* The protocol takes only [A-Za-z0-9._@-]{1,63}; any login name is mapped onto that. */
static char *operator_sanitized(const char *name)
{
	if (name == NULL || name[0] == '\0')
		return xstrdup("unknown");
	size_t n = strlen(name);
	if (n > OPERATOR_MAX)
		n = OPERATOR_MAX;
	char *out = xstrndup(name, n);
	for (size_t i = 0; i < n; i++)
		if (!operator_char_ok((unsigned char)out[i]))
			out[i] = '_';
	return out;
}

static const char *env_nonempty(const char *name)
{
	const char *v = getenv(name);
	return v != NULL && v[0] != '\0' ? v : NULL;
}

struct admin_client *admin_client_new(const char *target, const char *token,
                                      const char *operator_name)
{
	if (target == NULL)
		target = env_nonempty("HEX_ADMIN_SOCKET");
	if (target == NULL)
		target = env_nonempty("HEX_ADMIN_LISTEN");
	if (target == NULL)
		target = ADMIN_CLIENT_DEFAULT_TARGET;
	if (token == NULL)
		token = getenv("HEX_ADMIN_TOKEN");
	if (operator_name == NULL)
		operator_name = getenv("USER");

	struct admin_client *c = xcalloc(1, sizeof *c);
	c->target = xstrdup(target);
	c->token = xstrdup(token != NULL ? token : "");
	c->operator_name = operator_sanitized(operator_name);
	c->fd = -1;
	c->events = json_array();
	return c;
}

void admin_client_set_interrupt(struct admin_client *c, volatile sig_atomic_t *flag)
{
	c->interrupt = flag;
}

void admin_client_disconnect(struct admin_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->len = 0;
	json_array_clear(c->events);
}

void admin_client_free(struct admin_client *c)
{
	if (c == NULL)
		return;
	admin_client_disconnect(c);
	json_decref(c->events);
	if (c->token != NULL)
		explicit_bzero(c->token, strlen(c->token));
	free(c->token);
	free(c->target);
	free(c->operator_name);
	free(c->buf);
	free(c);
}

int admin_client_fd(const struct admin_client *c)
{
	return c->fd;
}

bool admin_client_connected(const struct admin_client *c)
{
	return c->fd >= 0;
}

const char *admin_client_target(const struct admin_client *c)
{
	return c->target;
}

/* ---- connecting */

static bool target_is_unix(const char *target)
{
	return strchr(target, '/') != NULL;
}

static int connect_unix(const char *path, struct hex_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (!hex_strlcpy(sa.sun_path, path, sizeof sa.sun_path)) {
		hex_fail(err, HEX_UNAVAILABLE, "target", "the socket path %s is too long", path);
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		hex_fail(err, HEX_UNAVAILABLE, NULL, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		hex_fail(err, HEX_UNAVAILABLE, NULL, "cannot connect to %s: %s", path,
		         strerror(errno));
		close(fd);
		return -1;
	}
	if (fcntl(fd, F_SETFL, O_NONBLOCK) != 0) {
		hex_fail(err, HEX_UNAVAILABLE, NULL, "fcntl: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Splits "host:port" or "[v6]:port" into copies; false when it has no port. */
static bool split_host_port(const char *target, char **host, char **port)
{
	const char *colon;
	const char *h = target;
	size_t hlen;
	if (target[0] == '[') {
		const char *close_br = strchr(target, ']');
		if (close_br == NULL || close_br[1] != ':')
			return false;
		h = target + 1;
		hlen = (size_t)(close_br - h);
		colon = close_br + 1;
	} else {
		colon = strrchr(target, ':');
		if (colon == NULL)
			return false;
		hlen = (size_t)(colon - target);
	}
	if (hlen == 0 || colon[1] == '\0')
		return false;
	*host = xstrndup(h, hlen);
	*port = xstrdup(colon + 1);
	return true;
}

/* One non-blocking connect bounded by the deadline; the fd stays non-blocking. */
static int connect_addr(const struct addrinfo *ai, int64_t deadline, int *saved_errno)
{
	int fd =
	    socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
	if (fd < 0) {
		*saved_errno = errno;
		return -1;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		*saved_errno = errno;
		close(fd);
		return -1;
	}
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	int n;
	do
		n = poll(&p, 1, remaining_ms(deadline));
	while (n < 0 && errno == EINTR);
	int soerr = 0;
	socklen_t len = sizeof soerr;
	if (n == 0)
		soerr = ETIMEDOUT;
	else if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
		soerr = errno;
	if (soerr != 0) {
		*saved_errno = soerr;
		close(fd);
		return -1;
	}
	return fd;
}

static int connect_tcp(const char *target, struct hex_err *err)
{
	char *host = NULL, *port = NULL;
	struct addrinfo *res = NULL;
	int fd = -1;
	if (!split_host_port(target, &host, &port)) {
		hex_fail(err, HEX_UNAVAILABLE, "target",
		         "the target %s is neither host:port nor a socket path", target);
		goto out;
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		hex_fail(err, HEX_UNAVAILABLE, "target", "cannot resolve %s: %s", target,
		         gai_strerror(rc));
		goto out;
	}
	int64_t deadline = deadline_after(CONNECT_TIMEOUT_MS);
	int last_errno = ECONNREFUSED;
	for (const struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next)
		fd = connect_addr(ai, deadline, &last_errno);
	if (fd < 0)
		hex_fail(err, HEX_UNAVAILABLE, NULL, "cannot connect to %s: %s", target,
		         strerror(last_errno));
out:
	if (res != NULL)
		freeaddrinfo(res);
	free(host);
	free(port);
	return fd;
}

/* ---- framing */

/* Lost connection: every later call must see it, so the client forgets the socket. */
static enum hex_status lost(struct admin_client *c, struct hex_err *err, const char *why)
{
	admin_client_disconnect(c);
	return hex_fail(err, HEX_UNAVAILABLE, NULL, "lost the connection to hexd at %s (%s)",
	                c->target, why);
}

/* After EINTR: true (and disconnected) when the caller asked to give up. */
static bool interrupted(struct admin_client *c, struct hex_err *err)
{
	if (c->interrupt == NULL || !*c->interrupt)
		return false;
	admin_client_disconnect(c);
	hex_fail(err, HEX_UNAVAILABLE, NULL,
	         "interrupted; disconnected from hexd at %s (the command may have run)", c->target);
	return true;
}

static enum hex_status send_all(struct admin_client *c, const char *data, size_t n,
                                int64_t deadline, struct hex_err *err)
{
	while (n > 0) {
		ssize_t w = send(c->fd, data, n, MSG_NOSIGNAL);
		if (w > 0) {
			data += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd p = {.fd = c->fd, .events = POLLOUT};
			int r = poll(&p, 1, remaining_ms(deadline));
			if (r == 0)
				return lost(c, err, "hexd does not read");
			if (r < 0 && errno == EINTR && interrupted(c, err))
				return HEX_UNAVAILABLE;
			if (r < 0 && errno != EINTR)
				return lost(c, err, strerror(errno));
			continue;
		}
		return lost(c, err, strerror(errno));
	}
	return HEX_OK;
}

/* Moves one complete line out of the buffer into *obj, parsed; HEX_NOT_FOUND: none yet. */
static enum hex_status take_line(struct admin_client *c, json_t **obj, struct hex_err *err)
{
	char *nl = c->len > 0 ? memchr(c->buf, '\n', c->len) : NULL;
	if (nl == NULL)
		return HEX_NOT_FOUND;
	size_t line_len = (size_t)(nl - c->buf);
	size_t parse_len = line_len;
	if (parse_len > 0 && c->buf[parse_len - 1] == '\r')
		parse_len--;
	json_error_t jerr;
	json_t *v = json_loadb(c->buf, parse_len, JSON_REJECT_DUPLICATES, &jerr);
	memmove(c->buf, nl + 1, c->len - line_len - 1);
	c->len -= line_len + 1;
	if (v == NULL || !json_is_object(v)) {
		json_decref(v);
		admin_client_disconnect(c);
		return hex_fail(err, HEX_INTERNAL, NULL,
		                "hexd at %s sent a line that is not a JSON object", c->target);
	}
	*obj = v;
	return HEX_OK;
}

/*
 * The next line as an object, waiting until deadline (-1 forever, a past deadline: only
 * what is readable now). HEX_NOT_FOUND on timeout; HEX_UNAVAILABLE / HEX_INTERNAL
 * disconnect.
 */
static enum hex_status read_line(struct admin_client *c, int64_t deadline, json_t **obj,
                                 struct hex_err *err)
{
	for (;;) {
		enum hex_status st = take_line(c, obj, err);
		if (st != HEX_NOT_FOUND)
			return st;
		if (c->len >= LINE_MAX_RECV) {
			admin_client_disconnect(c);
			return hex_fail(err, HEX_INTERNAL, NULL, "hexd sent a line over %d bytes",
			                LINE_MAX_RECV);
		}
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		int r = poll(&p, 1, remaining_ms(deadline));
		if (r < 0 && errno == EINTR && interrupted(c, err))
			return HEX_UNAVAILABLE;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return lost(c, err, strerror(errno));
		if (r == 0)
			return HEX_NOT_FOUND;
		if (c->cap - c->len < 4096) {
			c->cap = c->cap ? c->cap * 2 : 8192;
			c->buf = xrealloc(c->buf, c->cap);
		}
		ssize_t got = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		if (got > 0)
			c->len += (size_t)got;
		else if (got == 0)
			return lost(c, err, "hexd closed it");
		else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
			return lost(c, err, strerror(errno));
	}
}

static bool is_event(const json_t *obj)
{
	return json_object_get(obj, "event") != NULL;
}

static void queue_event(struct admin_client *c, json_t *ev)
{
	if (json_array_size(c->events) >= EVENTS_MAX)
		json_array_remove(c->events, 0);
	json_array_append_new(c->events, ev);
}

/* Queues whatever already arrived; notices a connection hexd closed while idle. */
static enum hex_status drain_readable(struct admin_client *c, struct hex_err *err)
{
	for (;;) {
		json_t *obj = NULL;
		enum hex_status st = read_line(c, 0, &obj, err);
		if (st == HEX_NOT_FOUND)
			return HEX_OK;
		if (st != HEX_OK)
			return st;
		if (is_event(obj))
			queue_event(c, obj);
		else
			json_decref(obj); /* a reply nobody waits for cannot be matched: dropped */
	}
}

/* ---- the public calls */

static enum hex_status auth_refused(const json_t *reply, const char *target, struct hex_err *err)
{
	const char *code = json_string_value(json_object_get(reply, "code"));
	const char *text = json_string_value(json_object_get(reply, "error"));
	if (code != NULL && strcmp(code, "unauthorized") == 0)
		return hex_fail(err, HEX_UNAUTHENTICATED, "token",
		                "hexd at %s refused the admin token", target);
	return hex_fail(err, HEX_UNAVAILABLE, NULL, "hexd at %s refused the connection: %s (%s)",
	                target, text != NULL ? text : "no reason given",
	                code != NULL ? code : "no code");
}

enum hex_status admin_client_connect(struct admin_client *c, struct hex_err *err)
{
	char *line = NULL, *qtoken = NULL;
	json_t *reply = NULL;
	enum hex_status st;
	admin_client_disconnect(c);
	if (c->token[0] == '\0') {
		st = hex_fail(err, HEX_UNAUTHENTICATED, "token",
		              "no admin token: set HEX_ADMIN_TOKEN or use --token-file");
		goto out;
	}
	c->fd =
	    target_is_unix(c->target) ? connect_unix(c->target, err) : connect_tcp(c->target, err);
	if (c->fd < 0) {
		st = HEX_UNAVAILABLE;
		goto out;
	}
	qtoken = admin_client_quote(c->token);
	line = xasprintf("AUTH %s %s\n", qtoken, c->operator_name);
	int64_t deadline = deadline_after(AUTH_TIMEOUT_MS);
	st = send_all(c, line, strlen(line), deadline, err);
	if (st != HEX_OK)
		goto out;
	/* Nothing but the AUTH reply can come first: no subscription exists yet. */
	st = read_line(c, deadline, &reply, err);
	if (st == HEX_NOT_FOUND)
		st = lost(c, err, "no answer to AUTH");
	if (st != HEX_OK)
		goto out;
	if (!json_is_true(json_object_get(reply, "ok"))) {
		st = auth_refused(reply, c->target, err);
		admin_client_disconnect(c);
	}
out:
	if (line != NULL)
		explicit_bzero(line, strlen(line));
	if (qtoken != NULL)
		explicit_bzero(qtoken, strlen(qtoken));
	free(line);
	free(qtoken);
	json_decref(reply);
	return st;
}

enum hex_status admin_client_call(struct admin_client *c, const char *line, int timeout_ms,
                                  json_t **reply, struct hex_err *err)
{
	char *framed = NULL;
	enum hex_status st;
	*reply = NULL;
	if (strchr(line, '\n') != NULL) {
		st = hex_fail(err, HEX_INVALID, "line", "a command cannot hold a line break");
		goto out;
	}
	if (strlen(line) >= LINE_MAX_SEND) {
		st = hex_fail(err, HEX_INVALID, "line", "a command is limited to %d bytes",
		              LINE_MAX_SEND - 1);
		goto out;
	}
	if (c->fd < 0) {
		st = hex_fail(err, HEX_UNAVAILABLE, NULL, "not connected to hexd at %s", c->target);
		goto out;
	}
	st = drain_readable(c, err);
	if (st != HEX_OK)
		goto out;
	framed = xasprintf("%s\n", line);
	int64_t deadline = deadline_after(timeout_ms);
	st = send_all(c, framed, strlen(framed), deadline, err);
	while (st == HEX_OK) {
		json_t *obj = NULL;
		st = read_line(c, deadline, &obj, err);
		if (st == HEX_NOT_FOUND) {
			admin_client_disconnect(c);
			st = hex_fail(err, HEX_UNAVAILABLE, NULL,
			              "no reply from hexd at %s within %d ms (disconnected)",
			              c->target, timeout_ms);
		} else if (st == HEX_OK && is_event(obj)) {
			queue_event(c, obj);
		} else if (st == HEX_OK) {
			*reply = obj;
			break;
		}
	}
out:
	free(framed);
	return st;
}

enum hex_status admin_client_next_event(struct admin_client *c, int timeout_ms, json_t **event)
{
	*event = NULL;
	int64_t deadline = deadline_after(timeout_ms);
	for (;;) {
		if (json_array_size(c->events) > 0) {
			*event = json_incref(json_array_get(c->events, 0));
			json_array_remove(c->events, 0);
			return HEX_OK;
		}
		if (c->fd < 0)
			return HEX_UNAVAILABLE;
		json_t *obj = NULL;
		enum hex_status st = read_line(c, deadline, &obj, NULL);
		if (st == HEX_NOT_FOUND)
			return HEX_NOT_FOUND;
		if (st != HEX_OK)
			return HEX_UNAVAILABLE;
		if (is_event(obj))
			queue_event(c, obj);
		else
			json_decref(obj);
	}
}

/* ---- quoting */

static bool needs_quotes(const char *word)
{
	return word[0] == '\0' || strpbrk(word, " \t\"\\") != NULL;
}

char *admin_client_quote(const char *word)
{
	if (!needs_quotes(word))
		return xstrdup(word);
	size_t n = strlen(word);
	char *out = xmalloc(2 * n + 3);
	char *p = out;
	*p++ = '"';
	for (const char *s = word; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			*p++ = '\\';
		*p++ = *s;
	}
	*p++ = '"';
	*p = '\0';
	return out;
}

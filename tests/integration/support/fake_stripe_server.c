/* fake_stripe_server.c: start, stop and steer the Python fake Stripe for a test. */
#include "fake_stripe_server.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
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

#define PORT_LOW           20000
#define PORT_HIGH          32000
#define START_TRIES        20
#define START_WAIT_MS      10000
#define STOP_WAIT_MS       3000
#define CONTROL_TIMEOUT_MS 5000
#define SCRIPT_SUFFIX      "integration/support/fake_stripe_server.c"

struct fake_stripe_buf {
	char *data;
	size_t len;
};

static int fake_stripe_random_port(void)
{
	unsigned int r = 0;
	if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
		r = (unsigned int)time(NULL) ^ (unsigned int)getpid();
	return PORT_LOW + (int)(r % (PORT_HIGH - PORT_LOW));
}

int fake_stripe_unused_port(void)
{
	for (int i = 0; i < 50; i++) {
		int port = fake_stripe_random_port();
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0)
			return -1;
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
		close(fd);
		if (ok)
			return port;
	}
	return -1;
}

/* The script sits in tests/fakes/, this file in tests/integration/support/. */
static bool fake_stripe_script(char *out, size_t n)
{
	const char *env = getenv("HEX_FAKE_STRIPE_PY");
	if (env != NULL && env[0] != '\0')
		return snprintf(out, n, "%s", env) < (int)n;
	const char *file = __FILE__;
	const char *tail = strstr(file, SCRIPT_SUFFIX);
	if (tail == NULL || file[0] != '/') {
		fprintf(stderr, "cannot find fake_stripe.py from %s: set HEX_FAKE_STRIPE_PY\n",
		        file);
		return false;
	}
	return snprintf(out, n, "%.*sfakes/fake_stripe.py", (int)(tail - file), file) < (int)n;
}

static pid_t fake_stripe_spawn(const char *script, int port, int *out_fd)
{
	int fds[2];
	if (pipe(fds) != 0)
		return -1;
	char port_text[16];
	snprintf(port_text, sizeof port_text, "%d", port);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		/* A crashed test must not leave its fake behind. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		execlp("python3", "python3", script, "--port", port_text, "--secret-key",
		       FAKE_STRIPE_SECRET_KEY, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	*out_fd = fds[0];
	return pid;
}

/* Reads the "fake_stripe port=N ..." line; false on EOF (it exited) or timeout. */
static bool fake_stripe_wait_ready(int fd)
{
	char line[256];
	size_t len = 0;
	for (int waited = 0; waited < START_WAIT_MS;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int rc = poll(&p, 1, 100);
		if (rc == 0) {
			waited += 100;
			continue;
		}
		if (rc < 0 && errno == EINTR)
			continue;
		ssize_t n = read(fd, line + len, sizeof line - 1 - len);
		if (n <= 0)
			return false;
		len += (size_t)n;
		line[len] = '\0';
		if (strchr(line, '\n') != NULL)
			return strncmp(line, "fake_stripe port=", 17) == 0;
		if (len == sizeof line - 1)
			return false;
	}
	fprintf(stderr, "fake_stripe did not start within %d ms\n", START_WAIT_MS);
	return false;
}

static void fake_stripe_reap(pid_t pid, int wait_ms)
{
	for (int waited = 0; waited < wait_ms; waited += 10) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return;
		struct timespec ts = {0, 10 * 1000000L};
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

bool fake_stripe_start(struct fake_stripe *f)
{
	memset(f, 0, sizeof *f);
	char script[1024];
	if (!fake_stripe_script(script, sizeof script))
		return false;
	/* A random port may be taken (by another test running in parallel): try again. */
	for (int i = 0; i < START_TRIES; i++) {
		int port = fake_stripe_random_port();
		int fd = -1;
		pid_t pid = fake_stripe_spawn(script, port, &fd);
		if (pid < 0) {
			fprintf(stderr, "fork: %s\n", strerror(errno));
			return false;
		}
		bool up = fake_stripe_wait_ready(fd);
		close(fd);
		if (up) {
			f->pid = pid;
			f->port = port;
			snprintf(f->base_url, sizeof f->base_url, "http://127.0.0.1:%d", port);
			return true;
		}
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	fprintf(stderr, "fake_stripe (%s) did not start after %d tries\n", script, START_TRIES);
	return false;
}

void fake_stripe_stop(struct fake_stripe *f)
{
	if (f->pid <= 0)
		return;
	kill(f->pid, SIGTERM);
	fake_stripe_reap(f->pid, STOP_WAIT_MS);
	f->pid = 0;
}

static size_t fake_stripe_on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct fake_stripe_buf *b = userdata;
	size_t n = size * nmemb;
	char *grown = realloc(b->data, b->len + n + 1);
	if (grown == NULL)
		return 0;
	b->data = grown;
	memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

/* One request to the fake's control side; the body (malloc'd) or NULL on failure. */
static char *fake_stripe_request(const struct fake_stripe *f, const char *path,
                                 const char *post_json, long *status)
{
	struct fake_stripe_buf b = {0};
	char url[128];
	snprintf(url, sizeof url, "%s%s", f->base_url, path);
	CURL *h = curl_easy_init();
	if (h == NULL)
		return NULL;
	struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)CONTROL_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fake_stripe_on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	if (post_json != NULL) {
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, post_json);
	}
	CURLcode rc = curl_easy_perform(h);
	*status = 0;
	if (rc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	else
		fprintf(stderr, "fake_stripe %s: %s\n", path, curl_easy_strerror(rc));
	curl_slist_free_all(headers);
	curl_easy_cleanup(h);
	if (rc != CURLE_OK) {
		free(b.data);
		return NULL;
	}
	return b.data != NULL ? b.data : strdup("");
}

bool fake_stripe_control(const struct fake_stripe *f, const char *json)
{
	long status = 0;
	char *body = fake_stripe_request(f, "/__control", json, &status);
	if (body != NULL && status != 200)
		fprintf(stderr, "fake_stripe control %s: %ld %s\n", json, status, body);
	free(body);
	return status == 200;
}

json_t *fake_stripe_stats(const struct fake_stripe *f)
{
	long status = 0;
	char *body = fake_stripe_request(f, "/__stats", NULL, &status);
	json_t *doc = NULL;
	if (body != NULL && status == 200)
		doc = json_loads(body, 0, NULL);
	if (doc == NULL)
		fprintf(stderr, "fake_stripe stats: %ld %s\n", status, body != NULL ? body : "");
	free(body);
	return doc;
}

long long fake_stripe_stat(const json_t *stats, const char *name)
{
	const json_t *v = json_object_get(stats, name);
	return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

long long fake_stripe_key_requests(const json_t *stats, const char *idempotency_key)
{
	const json_t *v = json_object_get(json_object_get(stats, "by_key"), idempotency_key);
	return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

/* http_listen.c: one listening socket per address; every loop accepts from it. */
#include "adapters/http/http_listen.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int http_listen_socket(const char *listen_addr, const char *field, bool shared, struct hex_err *err)
{
	char host[256];
	const char *colon = strrchr(listen_addr, ':');
	size_t hlen = colon != NULL ? (size_t)(colon - listen_addr) : 0;
	if (colon == NULL || hlen == 0 || hlen >= sizeof host) {
		hex_fail(err, HEX_INVALID, field, "bad listen address %s", listen_addr);
		return -1;
	}
	memcpy(host, listen_addr, hlen);
	host[hlen] = '\0';
	char *h = host;
	if (h[0] == '[' && hlen > 2 && h[hlen - 1] == ']') { /* [::1]:5000 */
		h[hlen - 1] = '\0';
		h++;
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	int rc = getaddrinfo(h, colon + 1, &hints, &ai);
	if (rc != 0) {
		hex_fail(err, HEX_INVALID, field, "cannot resolve %s: %s", listen_addr,
		         gai_strerror(rc));
		return -1;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    (shared && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
		hex_fail(err, HEX_UNAVAILABLE, field, "cannot listen on %s: %s", listen_addr,
		         strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

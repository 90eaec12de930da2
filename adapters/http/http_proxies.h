/*
 * http_proxies: the proxies whose X-Forwarded-For hexd believes (HEX_TRUSTED_PROXIES),
 * and the client address of a request seen through them.
 */
#ifndef HEX_HTTP_PROXIES_H
#define HEX_HTTP_PROXIES_H

#include "core/hex.h"

#include <netinet/in.h>

#define HTTP_PROXIES_MAX 16
#define HTTP_ADDR_MAX    64 /* an IPv6 address as text, with room to spare */

struct http_proxies {
	int n;
	struct in6_addr addrs[HTTP_PROXIES_MAX]; /* IPv4 as v4-mapped IPv6 */
};

/*
 * Parses a comma-separated list of IP addresses ("127.0.0.1, ::1"; empty = none).
 * HEX_INVALID (naming field) for anything that is not an address, or too many.
 */
enum hex_status http_proxies_parse(const char *list, const char *field, struct http_proxies *out,
                                   struct hex_err *err) HEX_MUST_CHECK;

/* Whether addr (text) is one of the proxies; false for text that is not an address. */
bool http_proxies_has(const struct http_proxies *p, const char *addr);

/*
 * The client behind peer: peer itself unless peer is a trusted proxy; then the right-most
 * X-Forwarded-For entry that is not a trusted proxy (each proxy appends the address it
 * saw), or the left-most when all are. A malformed entry ends the walk at the entry
 * before it. out gets HTTP_ADDR_MAX bytes at most.
 */
void http_proxies_client(const struct http_proxies *p, const char *peer, const char *xff, char *out,
                         size_t out_len);

#endif

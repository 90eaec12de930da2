/* http_proxies.c: trusted proxies, and the client address behind them. */
#include "adapters/http/http_proxies.h"

#include <arpa/inet.h>
#include <string.h>

/* The entry [*text, *text + *len) without the blanks around it. */
static void trim(const char **text, size_t *len)
{
	while (*len > 0 && (**text == ' ' || **text == '\t'))
		(*text)++, (*len)--;
	while (*len > 0 && ((*text)[*len - 1] == ' ' || (*text)[*len - 1] == '\t'))
		(*len)--;
}

/* Trimmed text -> IPv6 (IPv4 mapped), false if it is neither. */
static bool parse_addr(const char *text, size_t len, struct in6_addr *out)
{
	char buf[HTTP_ADDR_MAX];
	if (len == 0 || len >= sizeof buf)
		return false;
	memcpy(buf, text, len);
	buf[len] = '\0';
	struct in_addr v4;
	if (inet_pton(AF_INET, buf, &v4) == 1) {
		memset(out, 0, sizeof *out);
		out->s6_addr[10] = out->s6_addr[11] = 0xff;
		memcpy(&out->s6_addr[12], &v4, 4);
		return true;
	}
	return inet_pton(AF_INET6, buf, out) == 1;
}

static bool has_addr(const struct http_proxies *p, const struct in6_addr *a)
{
	for (int i = 0; i < p->n; i++)
		if (memcmp(&p->addrs[i], a, sizeof *a) == 0)
			return true;
	return false;
}

enum hex_status http_proxies_parse(const char *list, const char *field, struct http_proxies *out,
                                   struct hex_err *err)
{
	memset(out, 0, sizeof *out);
	for (const char *s = list; *s != '\0';) {
		const char *comma = strchr(s, ',');
		size_t len = comma != NULL ? (size_t)(comma - s) : strlen(s);
		if (out->n == HTTP_PROXIES_MAX)
			return hex_fail(err, HEX_INVALID, field, "at most %d addresses",
			                HTTP_PROXIES_MAX);
		const char *t = s;
		size_t tlen = len;
		trim(&t, &tlen);
		if (!parse_addr(t, tlen, &out->addrs[out->n]))
			return hex_fail(err, HEX_INVALID, field,
			                "\"%.*s\" is not an IP address (a comma-separated list of "
			                "addresses is expected)",
			                (int)(tlen > 64 ? 64 : tlen), t);
		out->n++;
		s += len + (comma != NULL);
	}
	return HEX_OK;
}

bool http_proxies_has(const struct http_proxies *p, const char *addr)
{
	struct in6_addr a;
	size_t len = strlen(addr);
	trim(&addr, &len);
	return p->n > 0 && parse_addr(addr, len, &a) && has_addr(p, &a);
}

void http_proxies_client(const struct http_proxies *p, const char *peer, const char *xff, char *out,
                         size_t out_len)
{
	hex_strlcpy(out, peer, out_len);
	if (xff == NULL || !http_proxies_has(p, peer))
		return;
	/* Right to left: the right-most entries were written by proxies we trust. */
	const char *end = xff + strlen(xff);
	for (;;) {
		const char *start = end;
		while (start > xff && start[-1] != ',')
			start--;
		const char *t = start;
		size_t len = (size_t)(end - start);
		trim(&t, &len);
		struct in6_addr a;
		if (!parse_addr(t, len, &a))
			return; /* garbage: keep the last address that was believable */
		if (len < out_len) {
			memcpy(out, t, len);
			out[len] = '\0';
		}
		if (!has_addr(p, &a) || start == xff)
			return;
		end = start - 1; /* the comma */
	}
}

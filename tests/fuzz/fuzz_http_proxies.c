/*
 * fuzz_http_proxies: HEX_TRUSTED_PROXIES parsing and the client address taken from
 * X-Forwarded-For (http_proxies_parse, http_proxies_client). The first input byte picks
 * the peer; the rest is "<proxy list>\n<X-Forwarded-For>".
 *
 * Properties: a refused list names its field; the client address is the peer itself
 * unless the peer is a trusted proxy, and otherwise the peer or an address that appears
 * in the header, never longer than the output allows.
 */
#include "support/fuzz_input.h"

#include "adapters/http/http_proxies.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

static const char *const peers[] = {"127.0.0.1", "10.0.0.1", "::1", "203.0.113.9"};

static bool is_address(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];
	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	const char *peer = peers[data[0] % (sizeof peers / sizeof peers[0])];
	const uint8_t *head, *tail;
	size_t head_len, tail_len;
	fuzz_input_split(data + 1, size - 1, '\n', &head, &head_len, &tail, &tail_len);
	char *list = fuzz_input_cstr(head, head_len);
	char *xff = fuzz_input_cstr(tail, tail_len);

	struct http_proxies p;
	struct hex_err err = {0};
	if (http_proxies_parse(list, "trusted_proxies", &p, &err) != HEX_OK) {
		FUZZ_CHECK(err.field != NULL && strcmp(err.field, "trusted_proxies") == 0);
		memset(&p, 0, sizeof p);
	}
	FUZZ_CHECK(p.n >= 0 && p.n <= HTTP_PROXIES_MAX);

	char out[HTTP_ADDR_MAX];
	memset(out, 'x', sizeof out);
	http_proxies_client(&p, peer, xff, out, sizeof out);
	FUZZ_CHECK(memchr(out, '\0', sizeof out) != NULL);
	if (!http_proxies_has(&p, peer))
		FUZZ_CHECK(strcmp(out, peer) == 0);
	else
		FUZZ_CHECK(strcmp(out, peer) == 0 || (is_address(out) && strstr(xff, out) != NULL));
	free(list);
	free(xff);
	return 0;
}

/* random_ids.c: UUIDv7 ids and getrandom() bytes. */
#include "adapters/crypto/random_ids.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

#include "adapters/crypto/hmac.h"
#include "core/logger.h"

void crypto_random_bytes(void *buf, size_t n)
{
	unsigned char *p = buf;
	while (n > 0) {
		ssize_t got = getrandom(p, n, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			/* Ids and salts from a weaker source would be guessable: stop instead. */
			log_error("getrandom_failed", "getrandom failed (errno %d)", errno);
			abort();
		}
		p += got;
		n -= (size_t)got;
	}
}

void crypto_random_hex(char *out, size_t nbytes)
{
	unsigned char chunk[32];
	out[0] = '\0';
	for (size_t done = 0; done < nbytes; done += sizeof chunk) {
		size_t n = nbytes - done < sizeof chunk ? nbytes - done : sizeof chunk;
		crypto_random_bytes(chunk, n);
		crypto_hmac_hex_encode(chunk, n, out + 2 * done);
	}
}

/*
 * The last time stamp handed out by this process. A clock stepped back does not make
 * new ids sort before older ones: RFC 9562 section 6.2 allows reusing the larger one.
 */
static _Atomic uint64_t last_ms;

static uint64_t random_ids_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
	uint64_t seen = atomic_load(&last_ms);
	while (now > seen && !atomic_compare_exchange_weak(&last_ms, &seen, now))
		;
	return now > seen ? now : seen;
}

void random_ids_new(char out[HEX_ID_LEN + 1])
{
	unsigned char b[16];
	uint64_t ms = random_ids_now_ms();
	crypto_random_bytes(b + 6, sizeof b - 6);
	for (int i = 0; i < 6; i++)
		b[i] = (unsigned char)(ms >> (40 - 8 * i));
	b[6] = (unsigned char)(0x70 | (b[6] & 0x0f)); /* version 7 */
	b[8] = (unsigned char)(0x80 | (b[8] & 0x3f)); /* variant 10 (RFC 9562) */

	char hex[33];
	crypto_hmac_hex_encode(b, sizeof b, hex);
	/* Canonical 8-4-4-4-12 grouping. */
	static const int group_end[] = {8, 12, 16, 20, 32};
	int h = 0, o = 0;
	for (size_t g = 0; g < sizeof group_end / sizeof group_end[0]; g++) {
		if (g > 0)
			out[o++] = '-';
		while (h < group_end[g])
			out[o++] = hex[h++];
	}
	out[o] = '\0';
}

static void random_ids_port_new_id(void *self, char out[HEX_ID_LEN + 1])
{
	random_ids_new(out);
}

static const struct id_source_ops random_ids_ops = {
    .new_id = random_ids_port_new_id,
};

struct id_source random_ids_port(void)
{
	return (struct id_source){.ops = &random_ids_ops, .self = NULL};
}

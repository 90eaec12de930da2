/* base64url.c: strict, unpadded base64url. */
#include "adapters/crypto/base64url.h"

#include <stdint.h>

static const char alphabet[64] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Character -> 6-bit value, -1 outside the alphabet. */
static int base64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

size_t base64url_encoded_len(size_t n)
{
	return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

size_t base64url_decoded_len(size_t len)
{
	return len / 4 * 3 + len % 4 * 3 / 4;
}

bool base64url_encode(const void *in, size_t n, char *out, size_t out_len)
{
	const unsigned char *p = in;
	if (out_len < base64url_encoded_len(n) + 1) {
		if (out_len > 0)
			out[0] = '\0';
		return false;
	}
	size_t o = 0;
	size_t i = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[o++] = alphabet[v >> 18 & 63];
		out[o++] = alphabet[v >> 12 & 63];
		out[o++] = alphabet[v >> 6 & 63];
		out[o++] = alphabet[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;
		out[o++] = alphabet[v >> 18 & 63];
		out[o++] = alphabet[v >> 12 & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		out[o++] = alphabet[v >> 18 & 63];
		out[o++] = alphabet[v >> 12 & 63];
		out[o++] = alphabet[v >> 6 & 63];
	}
	out[o] = '\0';
	return true;
}

bool base64url_decode(const char *in, size_t len, void *out, size_t out_len, size_t *out_n)
{
	unsigned char *q = out;
	if (len % 4 == 1 || out_len < base64url_decoded_len(len))
		return false;
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		int v = base64url_value((unsigned char)in[i]);
		if (v < 0)
			return false;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			q[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* Leftover bits are padding of the last character; an encoder leaves them zero. */
	if (acc != 0)
		return false;
	*out_n = o;
	return true;
}

/*
 * base64url: RFC 4648 section 5 alphabet, without padding, as JWT (RFC 7515) and the
 * HTTP adapter's opaque cursors use it. Decoding is strict so that every byte string
 * has exactly one text form: a token or cursor cannot be varied without changing it.
 */
#ifndef HEX_BASE64URL_H
#define HEX_BASE64URL_H

#include <stdbool.h>
#include <stddef.h>

/* Characters that n bytes encode to, without the NUL. */
size_t base64url_encoded_len(size_t n);

/* Bytes that a valid text of len characters decodes to. */
size_t base64url_decoded_len(size_t len);

/*
 * Writes the text of in[0..n) and a NUL to out (size out_len). False, with out set to
 * "" when out_len > 0, if out_len < base64url_encoded_len(n) + 1.
 */
bool base64url_encode(const void *in, size_t n, char *out, size_t out_len);

/*
 * Decodes the len characters at in into out (size out_len); *out_n gets the byte count.
 * False on a character outside the alphabet (padding '=' and NUL included), a length
 * that no byte string encodes to (len % 4 == 1), non-zero unused bits in the last
 * character, or an out too small. out is scratch on failure.
 */
bool base64url_decode(const char *in, size_t len, void *out, size_t out_len, size_t *out_n);

#endif

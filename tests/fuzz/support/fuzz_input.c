/* fuzz_input.c: exact-size copies of fuzz inputs and the failure path of properties. */
#include "fuzz_input.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *fuzz_input_copy(const uint8_t *data, size_t size)
{
	/* Not xmalloc: it rounds 0 up to 1 byte, and a read of that byte must be caught. */
	char *p = malloc(size);
	if (p == NULL && size != 0)
		abort();
	if (p == NULL)
		p = malloc(1);
	if (size > 0)
		memcpy(p, data, size);
	return p;
}

char *fuzz_input_cstr(const uint8_t *data, size_t size)
{
	const uint8_t *nul = size > 0 ? memchr(data, '\0', size) : NULL;
	size_t n = nul != NULL ? (size_t)(nul - data) : size;
	char *p = malloc(n + 1);
	if (p == NULL)
		abort();
	if (n > 0)
		memcpy(p, data, n);
	p[n] = '\0';
	return p;
}

void fuzz_input_split(const uint8_t *data, size_t size, uint8_t sep, const uint8_t **head,
                      size_t *head_len, const uint8_t **tail, size_t *tail_len)
{
	const uint8_t *at = size > 0 ? memchr(data, sep, size) : NULL;
	*head = data;
	*head_len = at != NULL ? (size_t)(at - data) : size;
	*tail = at != NULL ? at + 1 : data + size;
	*tail_len = at != NULL ? size - *head_len - 1 : 0;
}

void fuzz_input_fail(const char *where, const char *what)
{
	fprintf(stderr, "%s: %s\n", where, what);
	fflush(stderr);
	abort();
}

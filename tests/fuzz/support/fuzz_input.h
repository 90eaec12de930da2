/*
 * fuzz_input: what the libFuzzer targets of tests/fuzz share. libFuzzer hands a target
 * bytes that live in a buffer larger than size; these copies make any read past the
 * end an AddressSanitizer report instead of a silent success.
 */
#ifndef HEX_FUZZ_INPUT_H
#define HEX_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

/* libFuzzer's entry points, declared for -Wmissing-prototypes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/*
 * A malloc'ed copy of data[0..size) with no NUL after it, for APIs that take a length;
 * never NULL (size 0 gives a block of no bytes). The caller frees it.
 */
char *fuzz_input_copy(const uint8_t *data, size_t size);

/*
 * A malloc'ed NUL-terminated copy for APIs that take a C string, as they get it from
 * libevent: it ends at the first NUL of data, if any. The caller frees it.
 */
char *fuzz_input_cstr(const uint8_t *data, size_t size);

/*
 * Splits data at its first byte equal to sep: the head before it, the tail after it
 * (no sep: all of it is the head, the tail is empty). Pointers into data.
 */
void fuzz_input_split(const uint8_t *data, size_t size, uint8_t sep, const uint8_t **head,
                      size_t *head_len, const uint8_t **tail, size_t *tail_len);

/* Aborts with a message on stderr, so that libFuzzer records the input as a crash. */
void fuzz_input_fail(const char *where, const char *what) __attribute__((noreturn));

/* FUZZ_CHECK(cond): a property of the target; on failure libFuzzer saves the input. */
#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond))                                                                       \
			fuzz_input_fail(__FILE__, "property failed: " #cond);                      \
	} while (0)

#endif

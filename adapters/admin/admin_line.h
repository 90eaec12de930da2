/*
 * admin_line: the words of one admin-port command line (docs/ADMIN.md "Lines").
 * Words are separated by spaces or tabs; double quotes hold spaces, with \" and \\
 * inside them. A quoted part joins the word it touches (`a"b c"` is one word `ab c`),
 * and `""` is an empty word.
 */
#ifndef HEX_ADMIN_LINE_H
#define HEX_ADMIN_LINE_H

#include "adapters/admin/admin_call.h"

/*
 * Splits line (len bytes, without its newline) into argv[0..*argc-1], each a malloc'ed
 * string the caller frees (admin_line_free). HEX_INVALID + err for an unterminated
 * quote, more than ADMIN_ARGS_MAX words, a NUL byte or text that is not UTF-8; nothing
 * is left allocated then and *argc is 0. A blank line is HEX_OK with *argc 0.
 */
enum hex_status admin_line_split(const char *line, size_t len, int *argc,
                                 char *argv[ADMIN_ARGS_MAX], struct hex_err *err) HEX_MUST_CHECK;

/* Frees argv[0..argc-1] and sets them to NULL. */
void admin_line_free(int argc, char *argv[]);

#endif

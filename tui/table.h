/*
 * table: admin replies rendered for people. Lists become aligned columns fitted to the
 * terminal (cells cut with an ellipsis), objects become "key: value" lines with nested
 * objects and lists indented under their key, a list's next_cursor becomes a hint line.
 * Numbers print as JSON has them (money stays an integer of minor units), null as "-".
 * Control characters in strings (a message body may hold escape sequences) are shown as
 * '?' so nothing a user stored can drive the operator's terminal.
 */
#ifndef HEX_TUI_TABLE_H
#define HEX_TUI_TABLE_H

#include <jansson.h>
#include <stdio.h>

/* Prints data (the "data" of an ok reply) on out; width: columns to fit, 0: no limit. */
void table_print(FILE *out, const json_t *data, int width);

/*
 * The width to fit output on out to: the terminal's when out is one, else $COLUMNS when
 * it is a positive number, else 0 (no limit: a pipe gets whole cells).
 */
int table_width(FILE *out);

#endif

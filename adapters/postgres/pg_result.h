/* pg_result: typed reads of text-format result fields, strict so that drift is noticed. */
#ifndef HEX_PG_RESULT_H
#define HEX_PG_RESULT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* False if the field is NULL or not a whole decimal int64. */
bool pg_result_int64(const PGresult *r, int row, int col, int64_t *out);

/* Copies the field into dst (size n); false if it is NULL or does not fit. */
bool pg_result_text(const PGresult *r, int row, int col, char *dst, size_t n);

/* False if the field is NULL or not a boolean ("t" / "f"). */
bool pg_result_bool(const PGresult *r, int row, int col, bool *out);

/* The row count of an INSERT/UPDATE/DELETE result, 0 if none. */
long pg_result_affected(const PGresult *r);

#endif

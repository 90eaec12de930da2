/* pg_result.c: typed reads of text-format result fields. */
#include "adapters/postgres/pg_result.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/hex.h"

bool pg_result_int64(const PGresult *r, int row, int col, int64_t *out)
{
	if (PQgetisnull(r, row, col))
		return false;
	const char *s = PQgetvalue(r, row, col);
	char *end = NULL;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return false;
	*out = (int64_t)v;
	return true;
}

bool pg_result_text(const PGresult *r, int row, int col, char *dst, size_t n)
{
	if (PQgetisnull(r, row, col))
		return false;
	return hex_strlcpy(dst, PQgetvalue(r, row, col), n);
}

bool pg_result_bool(const PGresult *r, int row, int col, bool *out)
{
	if (PQgetisnull(r, row, col))
		return false;
	const char *s = PQgetvalue(r, row, col);
	if (strcmp(s, "t") != 0 && strcmp(s, "f") != 0)
		return false;
	*out = s[0] == 't';
	return true;
}

long pg_result_affected(const PGresult *r)
{
	const char *s = PQcmdTuples((PGresult *)r);
	return s[0] != '\0' ? strtol(s, NULL, 10) : 0;
}

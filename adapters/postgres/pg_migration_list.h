/*
 * pg_migration_list: the SQL migrations embedded into the binary at build time, from
 * sql/NNNN_name.sql (see pg_migration_embed.cmake), sorted by version.
 */
#ifndef HEX_PG_MIGRATION_LIST_H
#define HEX_PG_MIGRATION_LIST_H

#include <stddef.h>

struct pg_migration {
	int version;      /* NNNN of the file name, > 0, unique */
	const char *name; /* the file name after NNNN_, without .sql ("init") */
	const char *stem; /* the whole file name without .sql ("0001_init") */
	const char *sql;  /* the file's text, run as one simple query in a transaction */
};

extern const struct pg_migration pg_migration_list[];
extern const size_t pg_migration_list_count;

#endif

/*
 * pg_sql: SQL fragments shared by the repositories' statement tables.
 *
 * Timestamps cross the boundary as int64 microseconds since the epoch, exactly in both
 * directions: extract() returns numeric (not float) since PostgreSQL 14, and an interval
 * of whole microseconds has nothing to round below 2^53 us (the year 2255).
 */
#ifndef HEX_PG_SQL_H
#define HEX_PG_SQL_H

/* A timestamptz column as bigint microseconds. */
#define PG_SQL_US(col) "(extract(epoch from " col ") * 1000000)::bigint"

/* A bigint microseconds parameter as timestamptz. */
#define PG_SQL_TS(param) "('epoch'::timestamptz + " param "::bigint * interval '1 microsecond')"

#endif

/* json_time: timestamps as RFC 3339 UTC text with microseconds. */
#ifndef HEX_JSON_TIME_H
#define HEX_JSON_TIME_H

#include <stdint.h>

#define JSON_TIME_LEN 32

/* "2026-11-29T18:00:00.123456Z" for us microseconds since the epoch. */
void json_time_format(int64_t us, char out[JSON_TIME_LEN]);

#endif

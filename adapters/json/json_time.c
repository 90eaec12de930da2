/* json_time.c: RFC 3339 formatting. */
#include "adapters/json/json_time.h"

#include <stdio.h>
#include <time.h>

void json_time_format(int64_t us, char out[JSON_TIME_LEN])
{
	int64_t sec = us / 1000000, frac = us % 1000000;
	if (frac < 0) {
		frac += 1000000;
		sec--;
	}
	time_t t = (time_t)sec;
	struct tm tm;
	gmtime_r(&t, &tm);
	size_t n = strftime(out, JSON_TIME_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, JSON_TIME_LEN - n, ".%06dZ", (int)frac);
}

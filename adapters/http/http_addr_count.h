/*
 * http_addr_count: open connections per client address, shared by every loop thread of
 * a process (so the cap is per process, whichever loop accepted).
 */
#ifndef HEX_HTTP_ADDR_COUNT_H
#define HEX_HTTP_ADDR_COUNT_H

#include <stdbool.h>

struct http_addr_count;

struct http_addr_count *http_addr_count_new(void);
/* Counts one more connection from addr; returns how many addr now has open. */
int http_addr_count_add(struct http_addr_count *c, const char *addr);
/* One connection from addr closed (after a matching add). */
void http_addr_count_remove(struct http_addr_count *c, const char *addr);
void http_addr_count_free(struct http_addr_count *c);

#endif

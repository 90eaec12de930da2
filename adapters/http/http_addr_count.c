/* http_addr_count.c: a locked hash of address -> open connections. */
#include "adapters/http/http_addr_count.h"

#include "adapters/http/http_proxies.h"
#include "core/hex.h"
#include "core/xmalloc.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 1024 /* a power of two */

struct entry {
	char addr[HTTP_ADDR_MAX];
	int open;
	struct entry *next;
};

struct http_addr_count {
	pthread_mutex_t mu;
	struct entry *buckets[BUCKETS];
};

static uint32_t hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h & (BUCKETS - 1);
}

struct http_addr_count *http_addr_count_new(void)
{
	struct http_addr_count *c = xcalloc(1, sizeof *c);
	pthread_mutex_init(&c->mu, NULL);
	return c;
}

int http_addr_count_add(struct http_addr_count *c, const char *addr)
{
	struct entry **head = &c->buckets[hash(addr)];
	pthread_mutex_lock(&c->mu);
	struct entry *e = *head;
	while (e != NULL && strcmp(e->addr, addr) != 0)
		e = e->next;
	if (e == NULL) {
		e = xcalloc(1, sizeof *e);
		hex_strlcpy(e->addr, addr, sizeof e->addr);
		e->next = *head;
		*head = e;
	}
	int open = ++e->open;
	pthread_mutex_unlock(&c->mu);
	return open;
}

void http_addr_count_remove(struct http_addr_count *c, const char *addr)
{
	pthread_mutex_lock(&c->mu);
	for (struct entry **p = &c->buckets[hash(addr)]; *p != NULL; p = &(*p)->next) {
		struct entry *e = *p;
		if (strcmp(e->addr, addr) != 0)
			continue;
		if (--e->open == 0) { /* the table holds open addresses only */
			*p = e->next;
			free(e);
		}
		break;
	}
	pthread_mutex_unlock(&c->mu);
}

void http_addr_count_free(struct http_addr_count *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < BUCKETS; i++)
		for (struct entry *e = c->buckets[i], *next; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	pthread_mutex_destroy(&c->mu);
	free(c);
}

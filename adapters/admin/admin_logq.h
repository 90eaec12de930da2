/*
 * admin_logq: the bounded queue that carries finished log lines from any thread that
 * logs to the admin loop, which hands them to its `SUBSCRIBE LOG` connections. A
 * writer never waits for the reader and never queues more than `capacity` lines: a
 * line that finds the queue full is dropped and counted.
 */
#ifndef HEX_ADMIN_LOGQ_H
#define HEX_ADMIN_LOGQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct admin_log_line {
	struct admin_log_line *next;
	size_t len;
	char text[]; /* len bytes plus a NUL */
};

struct admin_logq;

/* capacity >= 1. Free with admin_logq_free. */
struct admin_logq *admin_logq_new(int capacity);
/* Frees the queue and any line still in it. NULL ok. */
void admin_logq_free(struct admin_logq *q);

/*
 * Any thread: queues a copy of line (len bytes). True when the queue was empty before,
 * i.e. the reader has to be woken; false when it already was (or the line was dropped).
 */
bool admin_logq_push(struct admin_logq *q, const char *line, size_t len);

/*
 * The reader: takes every queued line, oldest first (a list the caller frees with
 * admin_logq_lines_free), and the number of lines dropped since the last take.
 */
struct admin_log_line *admin_logq_take(struct admin_logq *q, uint64_t *dropped);
void admin_logq_lines_free(struct admin_log_line *lines);

#endif

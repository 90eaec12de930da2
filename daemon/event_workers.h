/*
 * event_workers: the worker role of hexd (HEX_ROLES contains "worker"): one outbox relay
 * thread and one thread per consumer of payment events, each with its own PostgreSQL and
 * Redis connections. Any number of processes may run them at once against the same
 * database and Redis (competing relays and consumer group members).
 */
#ifndef HEX_EVENT_WORKERS_H
#define HEX_EVENT_WORKERS_H

#include "daemon/app.h"

struct event_workers;

/* Starts the threads and registers the event metrics; NULL (logged) on failure. */
struct event_workers *event_workers_start(struct app *app);
/* Stops and joins every thread (a consumer may finish its current event first). NULL ok. */
void event_workers_stop(struct event_workers *w);

#endif

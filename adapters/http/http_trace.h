/*
 * http_trace: W3C Trace Context. An incoming `traceparent` is honoured (its trace id is
 * kept, its span becomes our parent); without one a new trace starts. Every reply
 * carries the traceparent of our server span, and later outgoing calls continue it.
 */
#ifndef HEX_HTTP_TRACE_H
#define HEX_HTTP_TRACE_H

#include <stdbool.h>

#define HTTP_TRACEPARENT_LEN 55

struct http_trace {
	char trace_id[33];  /* 32 lower-case hex */
	char span_id[17];   /* ours: 16 lower-case hex */
	char parent_id[17]; /* the caller's span, "" when we started the trace */
	unsigned flags;
};

/* Writes 16 * nwords random lower-case hex digits and a NUL: unique, not secret. */
void http_trace_random_hex(char *out, int nwords);
/* Fills t from header (may be NULL); a missing or invalid header starts a new trace. */
void http_trace_begin(struct http_trace *t, const char *header);
/* Writes "00-<trace>-<span>-<flags>" (HTTP_TRACEPARENT_LEN + 1 bytes). */
void http_trace_format(const struct http_trace *t, char out[HTTP_TRACEPARENT_LEN + 1]);
/* Parses a traceparent of version 00 (or a later version, read as 00 allows). */
bool http_trace_parse(const char *header, struct http_trace *t);

#endif

/* http_listen: the listening socket of an address, shared by every loop thread. */
#ifndef HEX_HTTP_LISTEN_H
#define HEX_HTTP_LISTEN_H

#include "core/hex.h"

/*
 * Binds and listens on "host:port" ("[::1]:5000" for IPv6); returns a non-blocking fd
 * the caller closes, or -1 with err naming why (address in use, bad address). With
 * shared, the socket has SO_REUSEPORT so that each loop can have its own and the kernel
 * spreads connections over them; call once without it first, so that an address some
 * other program holds is still refused.
 */
int http_listen_socket(const char *listen, const char *field, bool shared, struct hex_err *err);

#endif

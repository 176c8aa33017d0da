/*
 * A tiny HTTP/1.1 server on loopback or a unix socket, for the host.http
 * tests. Keep-alive, one thread per connection. Routes:
 *   GET  /hello          200 "hello"
 *   POST|PUT /sum        200 "len=<n> sum=<fnv1a32 hex>" of the request body
 *   GET  /headers        200, the request's header block as the body
 *   GET  /big/<n>        200, n bytes of mini_byte(0..n-1)
 *   GET  /slow           waits up to 5 s for the client to leave, then 200 "late"
 *   GET  /status/<code>  <code> "status"
 */
#ifndef CI_MINI_HTTPD_H
#define CI_MINI_HTTPD_H

#include <stddef.h>
#include <stdint.h>

struct mini_httpd;

/* Listen on 127.0.0.1 (ephemeral port) when unix_path is NULL. */
struct mini_httpd *mini_httpd_start(const char *unix_path);
int mini_httpd_port(const struct mini_httpd *s);
/* Connections accepted so far. */
int mini_httpd_accepted(const struct mini_httpd *s);
void mini_httpd_stop(struct mini_httpd *s);

unsigned char mini_byte(int64_t off);
uint32_t mini_fnv(uint32_t h, const void *p, size_t n);
#define MINI_FNV_INIT 2166136261u

#endif

/* For http*.c only: the libmicrohttpd connection behind a request. */
#ifndef CI_CORE_HTTP_PRIV_H
#define CI_CORE_HTTP_PRIV_H

struct MHD_Connection;
struct ci_req;

struct MHD_Connection *ci_req_connection(struct ci_req *req);

#endif /* CI_CORE_HTTP_PRIV_H */

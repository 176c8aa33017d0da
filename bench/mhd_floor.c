/*
 * The floor for bench/health.sh: the smallest libmicrohttpd server that
 * answers every request with a fixed JSON body, using the same daemon mode
 * ci-server uses (one internal epoll thread). Built by the bench script.
 */
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char body[] = "{\"status\":\"ok\"}";

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
				 const char *method, const char *version, const char *upload,
				 size_t *upload_size, void **ptr)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	(void)cls, (void)url, (void)method, (void)version, (void)upload, (void)upload_size;
	if (!*ptr) {
		*ptr = c;
		return MHD_YES;
	}
	r = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(r, "Content-Type", "application/json");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

int main(int argc, char **argv)
{
	struct MHD_Daemon *d;
	sigset_t s;
	int sig;

	if (argc < 2)
		return 2;
	sigemptyset(&s);
	sigaddset(&s, SIGTERM);
	sigaddset(&s, SIGINT);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL,
			     (uint16_t)atoi(argv[1]), NULL, NULL, on_access, NULL,
			     MHD_OPTION_CONNECTION_LIMIT, 512u, MHD_OPTION_END);
	if (!d)
		return 1;
	sigwait(&s, &sig);
	MHD_stop_daemon(d);
	return 0;
}

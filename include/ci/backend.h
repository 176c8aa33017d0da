/*
 * ci-server backend plugin ABI.
 *
 * This is the only header a backend plugin includes. A plugin is a shared
 * object named ci-backend-<name>.so exporting exactly one symbol,
 * ci_backend_v1, that returns a descriptor (struct ci_backend) whose
 * operations the host calls. Read docs/backend-abi.md first.
 *
 * Compatibility rule (Varnish style):
 *   - MAJOR changes when a member changes type, order or meaning, or is
 *     removed. The entry symbol is then renamed (ci_backend_v2), so an old
 *     plugin fails dlsym() with a clear message instead of misbehaving.
 *   - MINOR changes when a member is appended to a struct, or a ci_rc value
 *     or CI_CAP_* bit is added. The host accepts a plugin whose major equals
 *     its own and whose minor is <= its own. Structs only grow at the end and
 *     carry struct_size so either side can tell what the other knows.
 *
 * Ownership rules, applying everywhere unless a member says otherwise:
 *   1. Inputs (specs, ids, paths, strings) are borrowed for the duration of
 *      the call. Copy what you keep.
 *   2. Nothing allocated on one side is freed on the other. Outputs go into
 *      caller-owned storage (id buffers, call->err, result structs) or are
 *      pushed through host callbacks (ci_sink, ci_entry_cb).
 *   3. The ci_host table and the strings it hands out are lent from init()
 *      until fini() returns.
 *
 * Threading: init() and fini() are called once, single-threaded. All other
 * operations may be called concurrently from host worker threads, but never
 * concurrently for the same sandbox id (the host serialises per sandbox)
 * unless noted. A plugin that cannot cope sets CI_CAP_SERIAL and the host
 * then takes one global lock around every call.
 *
 * History:
 *   1.0  first release.
 *   1.1  ci_host.http_connect and struct ci_stream: a raw byte stream over a
 *        TCP/TLS (or unix socket) connection the host opens, for protocols
 *        the request/response http service cannot carry (HTTP Upgrade to
 *        WebSocket: Kubernetes pods/exec).
 */
#ifndef CI_BACKEND_H
#define CI_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CI_ABI_MAJOR	1
#define CI_ABI_MINOR	1
#define CI_ABI_VERSION	((uint32_t)CI_ABI_MAJOR << 16 | CI_ABI_MINOR)
#define CI_ABI_STRING	"1.1" /* CI_ABI_MAJOR.CI_ABI_MINOR, for messages */
#define CI_ENTRY_SYMBOL "ci_backend_v1"
#define CI_EXPORT	__attribute__((visibility("default")))

#define CI_ID_MAX  128 /* sandbox id buffer size, NUL included */
#define CI_ERR_MAX 256 /* error text buffer size, NUL included */

/*
 * Return codes of every operation. Append only; never renumber. Detail text
 * goes into call->err. The host maps each code to one HTTP status.
 */
typedef enum ci_rc {
	CI_OK = 0,
	CI_E_INVAL,	  /* bad argument: path escapes the sandbox, empty argv ... */
	CI_E_NOTFOUND,	  /* unknown sandbox id or path */
	CI_E_EXISTS,	  /* already exists */
	CI_E_NOMEM,	  /* out of memory */
	CI_E_LIMIT,	  /* a size/count/quota limit was hit */
	CI_E_TIMEOUT,	  /* the call's deadline passed (not the program's timeout) */
	CI_E_UNAVAIL,	  /* backend unreachable (daemon down, API 5xx) */
	CI_E_UNSUPPORTED, /* operation or option not supported by this backend */
	CI_E_BACKEND,	  /* the backend answered with an error */
	CI_E_INTERNAL,	  /* bug or unexpected state */
	CI_RC_COUNT	  /* not a code: one past the last */
} ci_rc;

/* Capability bits in ci_backend.caps. */
#define CI_CAP_SERIAL	 (1u << 0) /* host must serialise every call */
#define CI_CAP_STDIN	 (1u << 1) /* exec honours ci_exec_spec.stdin_* */
#define CI_CAP_NETWORK	 (1u << 2) /* create can honour ci_create_spec.network = 1 */
#define CI_CAP_SELFLIMIT (1u << 3) /* exec enforces mem/pids limits itself */

/* Log levels for ci_host.log. */
enum { CI_LOG_ERROR = 0, CI_LOG_WARN, CI_LOG_INFO, CI_LOG_DEBUG };

/* Streams delivered through a ci_sink. */
enum { CI_STREAM_STDOUT = 1, CI_STREAM_STDERR = 2, CI_STREAM_DATA = 3 };

typedef struct ci_be ci_be; /* opaque: each plugin defines struct ci_be */

/*
 * Per-call context, host-owned, valid for one operation.
 */
typedef struct ci_call {
	uint32_t struct_size;	/* sizeof(ci_call) in the host build */
	int64_t deadline_ms;	/* absolute, on host->now_ms(); the call must return by it */
	const char *request_id; /* for log correlation; never NULL */
	char err[CI_ERR_MAX];	/* plugin writes a NUL-terminated message on failure */
} ci_call;

/*
 * A byte sink owned by the caller of the operation that receives it.
 * write() returns 0 to continue, non-zero to say "no more wanted": the
 * plugin then stops delivering to this sink (for exec output: it keeps the
 * program running and discards the rest of that stream).
 */
typedef struct ci_sink {
	int (*write)(void *ctx, int stream, const void *buf, size_t len);
	void *ctx;
} ci_sink;

/*
 * A byte source owned by the caller. size is exact and known up front
 * (archive formats need it). read() fills up to cap bytes and returns the
 * count, 0 at end, or -1 on error. fd, when >= 0, is a readable regular file
 * positioned at offset 0 holding the same bytes: a plugin may copy from it
 * directly (copy_file_range, sendfile) instead of calling read(). Never
 * close it.
 */
typedef struct ci_source {
	ssize_t (*read)(void *ctx, void *buf, size_t cap);
	void *ctx;
	int64_t size;
	int fd;
} ci_source;

/* HTTP service (ci_host.http). */
typedef struct ci_http_req {
	const char *method;	    /* "GET", "POST", ... */
	const char *url;	    /* full URL; with unix_socket the host part is ignored */
	const char *unix_socket;    /* path of a unix socket, or NULL for TCP/TLS */
	const char *const *headers; /* NULL-terminated "Name: value" strings, may be NULL */
	const void *body;	    /* request body bytes, or NULL */
	size_t body_len;
	const ci_source *body_src; /* streamed request body instead of body; may be NULL */
	const char *ca_file;	   /* PEM CA bundle for TLS, or NULL for the system store */
	const char *bearer;	   /* adds "Authorization: Bearer <bearer>" when non-NULL */
} ci_http_req;

/*
 * ABI 1.1: a raw, bidirectional byte stream opened by ci_host.http_connect.
 * The host owns it from http_connect() until close(); the plugin calls its
 * members, always passing the stream itself. After the HTTP request head
 * (if any) the bytes are the caller's protocol: the host neither parses nor
 * frames them.
 *
 * Threading: one thread at a time per stream (any thread); different streams
 * are independent. Deadlines are absolute, on host->now_ms(); 0 means "do
 * not wait" (a poll). send/recv/wait never block past their deadline; a
 * stream has no deadline of its own, so a caller that stops calling just
 * holds an idle connection until close().
 */
typedef struct ci_stream ci_stream;

enum { CI_WAIT_READ = 1, CI_WAIT_WRITE = 2 }; /* ci_stream.wait events */

struct ci_stream {
	uint32_t struct_size; /* sizeof(struct ci_stream) in the host build */

	/*
	 * Wait until one of events (CI_WAIT_*) is possible: READ when recv
	 * would return bytes or end of stream, WRITE when send would take a
	 * byte. *ready gets the events that are; CI_OK with *ready == 0 at the
	 * deadline (no error: a tick for the caller's loop).
	 */
	int (*wait)(ci_stream *s, int events, int64_t deadline_ms, int *ready, ci_call *call);

	/*
	 * Send up to len bytes; *sent gets how many went (at least 1 when
	 * len > 0, unless it fails). Borrowed buf. CI_E_TIMEOUT when nothing
	 * could go by the deadline, CI_E_UNAVAIL when the connection broke.
	 */
	int (*send)(ci_stream *s, const void *buf, size_t len, size_t *sent, int64_t deadline_ms,
		    ci_call *call);

	/*
	 * Receive up to cap bytes into the caller's buf. CI_OK with *got > 0:
	 * bytes; CI_OK with *got == 0: the peer closed (end of stream).
	 * CI_E_TIMEOUT when nothing arrived by the deadline, CI_E_UNAVAIL when
	 * the connection broke.
	 */
	int (*recv)(ci_stream *s, void *buf, size_t cap, size_t *got, int64_t deadline_ms,
		    ci_call *call);

	/* Close the connection and free the stream; call exactly once. */
	void (*close)(ci_stream *s);
};

/*
 * Services lent to the plugin by the host at init(). Check for members
 * newer than the plugin's minor with CI_HOST_HAS().
 */
typedef struct ci_host {
	uint32_t struct_size; /* sizeof(ci_host) in the host build */
	uint32_t abi_version; /* CI_ABI_VERSION of the host */
	void *hctx;	      /* pass back as the first argument of every service */

	/* One log line; the host adds time, level, backend name. Thread-safe. */
	void (*log)(void *hctx, int level, const char *fmt, ...)
		__attribute__((format(printf, 3, 4)));

	/*
	 * Configuration of this backend's own section (backends.<name>.<key>,
	 * nested keys with '.'). Return CI_OK, or CI_E_NOTFOUND when the key is
	 * absent, or CI_E_INVAL when it has another type. Strings are lent
	 * until fini().
	 */
	int (*cfg_str)(void *hctx, const char *key, const char **out);
	int (*cfg_int)(void *hctx, const char *key, int64_t *out);
	int (*cfg_bool)(void *hctx, const char *key, int *out);

	/* Memory the host accounts for; free only with mem_free. */
	void *(*mem_alloc)(void *hctx, size_t n);
	void (*mem_free)(void *hctx, void *p);

	/* Monotonic milliseconds (deadlines) and wall-clock seconds (labels). */
	int64_t (*now_ms)(void *hctx);
	int64_t (*wall_unix)(void *hctx);

	/*
	 * One HTTP exchange through libcurl, bounded by call->deadline_ms.
	 * The response body is streamed to body (stream CI_STREAM_DATA) when
	 * non-NULL. Returns CI_OK with *status set for any HTTP answer,
	 * CI_E_UNAVAIL when the peer cannot be reached, CI_E_TIMEOUT at the
	 * deadline; call->err says why.
	 */
	int (*http)(void *hctx, const ci_http_req *req, int *status, const ci_sink *body,
		    ci_call *call);

	/*
	 * ABI 1.1. Open a connection to req->url's host and port (TCP; TLS
	 * for https with req->ca_file, or the system store; req->unix_socket
	 * instead when set) through libcurl, bounded by call->deadline_ms,
	 * HTTP/1.1 only (no HTTP/2 through ALPN). When req->method is set,
	 * the host then writes the request head -- "<method> <path?query>
	 * HTTP/1.1", Host, req->headers, "Authorization: Bearer <bearer>" --
	 * and returns with the answer unread: the caller reads and parses it
	 * (an Upgrade answers 101 and then speaks the new protocol). A body
	 * (body, body_src) is refused with CI_E_INVAL. With method NULL
	 * nothing is sent.
	 * On CI_OK *out is a stream the caller must close() before fini();
	 * otherwise *out is NULL and call->err says why: CI_E_UNAVAIL when
	 * the peer cannot be reached or TLS fails, CI_E_TIMEOUT at the
	 * deadline, CI_E_INVAL for a bad URL or header.
	 */
	int (*http_connect)(void *hctx, const ci_http_req *req, ci_stream **out, ci_call *call);

	/* ABI 1.2+: append members here only. */
} ci_host;

#define CI_HOST_HAS(h, member) \
	((h)->struct_size >= offsetof(ci_host, member) + sizeof((h)->member) && (h)->member)

/* What a new sandbox should be. */
typedef struct ci_create_spec {
	uint32_t struct_size;
	const char *runtime;	/* language runtime profile, e.g. "python"; may be NULL */
	const char *image;	/* image/snapshot for the runtime; NULL where not applicable */
	const char *owner;	/* label of this server instance: sweep() matches it */
	const char *session;	/* label of the host's session, for operators */
	const char *const *env; /* "K=V" strings for every exec, NULL-terminated; may be NULL */
	int64_t mem_bytes;	/* memory limit, 0 = backend default */
	int64_t cpu_millis;	/* CPU quota in 1/1000 CPUs, 0 = backend default */
	int64_t pids;		/* max processes/threads, 0 = backend default */
	int64_t disk_bytes;	/* size cap of /mnt/data, 0 = backend default */
	int network;		/* 0 = no network (always the default) */
} ci_create_spec;

/* One program run in a sandbox. */
typedef struct ci_exec_spec {
	uint32_t struct_size;
	const char *const *argv; /* NULL-terminated, argv[0] looked up in PATH */
	const char *const *env;	 /* extra "K=V", NULL-terminated; may be NULL */
	const char *cwd;	 /* absolute path inside the sandbox; NULL = /mnt/data */
	const void *stdin_buf;	 /* bytes fed to stdin, then EOF; NULL = empty stdin */
	size_t stdin_len;
	int64_t timeout_ms; /* program wall-clock limit; the whole process tree is
			     * killed when it passes and exec returns by then */
	const ci_sink *out; /* receives CI_STREAM_STDOUT and CI_STREAM_STDERR */
} ci_exec_spec;

typedef struct ci_exec_result {
	uint32_t struct_size;
	int exit_code;	 /* exit status, or -1 when killed by a signal */
	int signal;	 /* terminating signal, 0 if none */
	int timed_out;	 /* 1 when the program was killed at timeout_ms */
	int64_t wall_ms; /* how long the program ran */
} ci_exec_result;

enum { CI_ENTRY_FILE = 1, CI_ENTRY_DIR = 2, CI_ENTRY_SYMLINK = 3, CI_ENTRY_OTHER = 4 };

/* One entry reported by list(); valid only during the callback. */
typedef struct ci_entry {
	const char *path; /* relative to the listed directory, '/'-separated */
	int type;	  /* CI_ENTRY_* ; symlinks are reported, never followed */
	int64_t size;	  /* bytes for files, 0 otherwise */
	int64_t mtime_ns; /* modification time, nanoseconds since the epoch */
	uint32_t mode;	  /* permission bits */
} ci_entry;

typedef int (*ci_entry_cb)(void *ctx, const ci_entry *entry); /* non-zero stops */

/*
 * The descriptor a plugin returns from ci_backend_v1(). The host copies it
 * (zero-extended to its own sizeof), so it may be static const data.
 *
 * Paths given to put/get/list are absolute paths inside the sandbox
 * (normally under /mnt/data). A plugin must refuse (CI_E_INVAL) any path
 * that would resolve outside the sandbox's writable data area and must never
 * follow a symlink created by sandboxed code.
 */
typedef struct ci_backend {
	uint32_t abi_version; /* CI_ABI_VERSION the plugin was built with */
	uint32_t struct_size; /* sizeof(ci_backend) in the plugin build */
	const char *name;     /* must equal the file stem: "bwrap" for ci-backend-bwrap.so */
	const char *version;  /* the plugin's own release, e.g. "1.3.0" */
	uint64_t caps;	      /* CI_CAP_* bits */

	/*
	 * Read configuration, check the backend is usable, allocate state.
	 * On failure return non-zero with a message in call->err; the host
	 * then unloads the plugin without calling fini().
	 */
	int (*init)(const ci_host *host, ci_be **out, ci_call *call);
	/* Release everything init() made. Sandboxes are not destroyed here. */
	void (*fini)(ci_be *be);

	/* Make a sandbox; write its id (NUL-terminated, < CI_ID_MAX) to id. */
	int (*create)(ci_be *be, const ci_create_spec *spec, char id[CI_ID_MAX], ci_call *call);

	/*
	 * Run a program to completion, streaming its output into spec->out.
	 * A program that fails or times out is CI_OK: that is told through
	 * *res. Non-zero only when the program could not be run.
	 */
	int (*exec)(ci_be *be, const char *id, const ci_exec_spec *spec, ci_exec_result *res,
		    ci_call *call);

	/* Write a file (parents created, existing file replaced) from src. */
	int (*put)(ci_be *be, const char *id, const char *path, const ci_source *src, uint32_t mode,
		   ci_call *call);

	/* Stream a regular file's bytes into out (stream CI_STREAM_DATA). */
	int (*get)(ci_be *be, const char *id, const char *path, const ci_sink *out, ci_call *call);

	/* Report every entry below dir, recursively, without following links. */
	int (*list)(ci_be *be, const char *id, const char *dir, ci_entry_cb cb, void *ctx,
		    ci_call *call);

	/* Remove a sandbox and its data. Unknown id: CI_E_NOTFOUND. */
	int (*destroy)(ci_be *be, const char *id, ci_call *call);

	/*
	 * Remove every sandbox labelled with owner and created before
	 * older_than_unix, including ones the host no longer knows about
	 * (crash, restart). Never touches another owner's sandboxes.
	 */
	int (*sweep)(ci_be *be, const char *owner, int64_t older_than_unix, unsigned *n_removed,
		     ci_call *call);

	/* ABI 1.1+: append members here only. */
} ci_backend;

#define CI_BACKEND_MIN_SIZE (offsetof(ci_backend, sweep) + sizeof(void (*)(void)))

/* The single export: returns the descriptor, or NULL to refuse the host. */
typedef const ci_backend *ci_entry_fn(uint32_t host_abi_version);

#endif /* CI_BACKEND_H */

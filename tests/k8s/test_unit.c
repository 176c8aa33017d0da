/*
 * Unit tests of the k8s plugin's pure parts: the pod JSON, pod states from
 * pod objects, metav1.Status texts and exit statuses, the channel demux,
 * the exec query, the HTTP answer head and Sec-WebSocket-Accept, the find
 * record parser, both tar directions, configuration maps and names.
 */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs the headers above */
#include <cmocka.h>

#include "k8s.h"

static struct k8s_conf conf(void)
{
	static char team[] = "team", ml[] = "ml", note[] = "example.com/note", abc[] = "a, b; c";
	static char fmt[] = "ci-sandbox-%s", pull[] = "IfNotPresent", medium[] = "";
	static struct k8s_kv labels[] = {{team, ml}};
	static struct k8s_kv ann[] = {{note, abc}};

	return (struct k8s_conf){
		.image_fmt = fmt,
		.pull_policy = pull,
		.data_medium = medium,
		.uid = 1000,
		.gid = 1000,
		.mem_bytes = 512 << 20,
		.mem_request_bytes = 128 << 20,
		.cpu_millis = 1000,
		.cpu_request_millis = 100,
		.disk_bytes = 256 << 20,
		.tmp_bytes = 64 << 20,
		.active_deadline_s = 3600,
		.labels = labels,
		.n_labels = 1,
		.annotations = ann,
		.n_annotations = 1,
	};
}

static json_t *path(json_t *j, const char *p)
{
	char key[64];

	while (j && *p) {
		size_t n = strcspn(p, "/");

		snprintf(key, sizeof(key), "%.*s", (int)n, p);
		if (json_is_array(j))
			j = json_array_get(j, (size_t)atoi(key));
		else
			j = json_object_get(j, key);
		p += n + (p[n] == '/');
	}
	return j;
}

static const char *str(json_t *j, const char *p)
{
	return json_string_value(path(j, p));
}

static void test_pod_json(void **state)
{
	static const char *const env[] = {"A=1", "EMPTY=", "EQ=x=y", NULL};
	struct k8s_conf c = conf();
	struct k8s_limits l = {.mem_bytes = 256 << 20, .cpu_millis = 500, .disk_bytes = 100 << 20};
	char err[256] = "";
	char *s;
	json_t *j;

	(void)state;
	static char gvisor[] = "gvisor";

	c.runtime_class = gvisor;
	s = k8s_pod_json(&c, "ci-0123456789abcdef", "reg/img:1", "python", "owner one", "sess_-1",
			 env, &l, 1700000000, err, sizeof(err));
	assert_non_null(s);
	j = json_loads(s, 0, NULL);
	assert_non_null(j);
	assert_string_equal(str(j, "kind"), "Pod");
	assert_string_equal(str(j, "metadata/name"), "ci-0123456789abcdef");
	assert_string_equal(str(j, "metadata/labels/ci.sandbox"), "1");
	/* "owner one" is no label value: hashed, exact value in an annotation */
	assert_non_null(strstr(s, "\"ci.owner\":\"h-"));
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(json_object_get(j, "metadata"), "annotations"),
				    "ci.owner")),
			    "owner one");
	assert_string_equal(
		json_string_value(json_object_get(
			json_object_get(json_object_get(j, "metadata"), "labels"), "ci.created")),
		"1700000000");
	assert_string_equal(
		json_string_value(json_object_get(
			json_object_get(json_object_get(j, "metadata"), "labels"), "team")),
		"ml");
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(json_object_get(j, "metadata"), "annotations"),
				    "example.com/note")),
			    "a, b; c");
	assert_string_equal(str(j, "spec/restartPolicy"), "Never");
	assert_true(json_is_false(path(j, "spec/automountServiceAccountToken")));
	assert_true(json_is_false(path(j, "spec/enableServiceLinks")));
	assert_int_equal(json_integer_value(path(j, "spec/activeDeadlineSeconds")), 3600);
	assert_string_equal(str(j, "spec/runtimeClassName"), "gvisor");
	assert_true(json_is_true(path(j, "spec/securityContext/runAsNonRoot")));
	assert_int_equal(json_integer_value(path(j, "spec/securityContext/runAsUser")), 1000);
	assert_string_equal(str(j, "spec/securityContext/seccompProfile/type"), "RuntimeDefault");
	assert_string_equal(str(j, "spec/containers/0/image"), "reg/img:1");
	assert_true(json_is_false(
		path(j, "spec/containers/0/securityContext/allowPrivilegeEscalation")));
	assert_true(
		json_is_true(path(j, "spec/containers/0/securityContext/readOnlyRootFilesystem")));
	assert_string_equal(str(j, "spec/containers/0/securityContext/capabilities/drop/0"), "ALL");
	assert_string_equal(str(j, "spec/containers/0/resources/limits/memory"), "256Mi");
	assert_string_equal(str(j, "spec/containers/0/resources/limits/cpu"), "500m");
	assert_string_equal(str(j, "spec/containers/0/resources/requests/memory"), "128Mi");
	assert_string_equal(str(j, "spec/containers/0/volumeMounts/0/mountPath"), "/mnt/data");
	assert_string_equal(str(j, "spec/containers/0/volumeMounts/1/mountPath"), "/tmp");
	assert_string_equal(str(j, "spec/volumes/0/emptyDir/sizeLimit"), "100Mi");
	assert_string_equal(str(j, "spec/volumes/1/emptyDir/sizeLimit"), "64Mi");
	assert_null(path(j, "spec/volumes/0/emptyDir/medium"));
	assert_string_equal(str(j, "spec/containers/0/env/2/name"), "EQ");
	assert_string_equal(str(j, "spec/containers/0/env/2/value"), "x=y");
	assert_string_equal(str(j, "spec/containers/0/env/1/value"), "");
	json_decref(j);
	free(s);

	static const char *const bad_env[] = {"NOEQUALS", NULL};

	assert_null(k8s_pod_json(&c, "ci-x", "img", "python", "o", "s", bad_env, &l, 1, err,
				 sizeof(err)));
	assert_non_null(strstr(err, "NOEQUALS"));
}

static const char running[] =
	"{\"metadata\":{\"name\":\"p\",\"resourceVersion\":\"5\"},\"status\":{\"phase\":"
	"\"Running\","
	"\"containerStatuses\":[{\"name\":\"sandbox\",\"state\":{\"running\":{\"startedAt\":"
	"\"2026-01-01T00:00:00Z\"}}}]}}";

static void test_pod_state(void **state)
{
	static const char pending[] = "{\"status\":{\"phase\":\"Pending\"}}";
	char why[256];

	(void)state;
	assert_int_equal(k8s_pod_state_of(running, strlen(running), why, sizeof(why)),
			 K8S_POD_RUNNING);
	assert_int_equal(k8s_pod_state_of(pending, strlen(pending), why, sizeof(why)),
			 K8S_POD_PENDING);
	/* Running phase but the container still waiting: not yet */
	{
		const char *s = "{\"status\":{\"phase\":\"Running\",\"containerStatuses\":[{"
				"\"state\":{\"waiting\":{\"reason\":\"ContainerCreating\"}}}]}}";

		assert_int_equal(k8s_pod_state_of(s, strlen(s), why, sizeof(why)), K8S_POD_PENDING);
	}
	{
		const char *s =
			"{\"status\":{\"phase\":\"Pending\",\"containerStatuses\":[{\"image\":"
			"\"x/no-such\",\"state\":{\"waiting\":{\"reason\":\"ImagePullBackOff\","
			"\"message\":\"Back-off pulling image\"}}}]}}";

		assert_int_equal(k8s_pod_state_of(s, strlen(s), why, sizeof(why)), K8S_POD_BROKEN);
		assert_non_null(strstr(why, "ImagePullBackOff for image x/no-such"));
	}
	{
		const char *s =
			"{\"status\":{\"phase\":\"Failed\",\"reason\":\"Evicted\",\"message\":"
			"\"low on memory\"}}";

		assert_int_equal(k8s_pod_state_of(s, strlen(s), why, sizeof(why)), K8S_POD_BROKEN);
		assert_string_equal(why, "pod Failed (Evicted): low on memory");
	}
	{
		const char *s = "{\"metadata\":{\"deletionTimestamp\":\"2026-01-01T00:00:00Z\"},"
				"\"status\":{\"phase\":\"Running\"}}";

		assert_int_equal(k8s_pod_state_of(s, strlen(s), why, sizeof(why)), K8S_POD_GONE);
	}
	assert_int_equal(k8s_pod_state_of("not json", 8, why, sizeof(why)), K8S_POD_GONE);
	assert_int_equal(k8s_parse_time("1970-01-01T00:01:40Z"), 100);
	assert_int_equal(k8s_parse_time("2026-11-21T10:00:00Z"), 1795255200);
	assert_int_equal(k8s_parse_time("yesterday"), -1);
}

static void test_status_text(void **state)
{
	static const char st[] =
		"{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
		"\"message\":\"pods \\\"x\\\" not found\",\"reason\":\"NotFound\",\"code\":404}";
	struct k8s_resp r = {.status = 404};
	char msg[128], reason[32];
	ci_call call = {0};

	(void)state;
	k8s_status_text(st, strlen(st), msg, sizeof(msg), reason, sizeof(reason));
	assert_string_equal(msg, "pods \"x\" not found");
	assert_string_equal(reason, "NotFound");
	k8s_status_text("plain text\n", 11, msg, sizeof(msg), reason, sizeof(reason));
	assert_string_equal(msg, "plain text");
	assert_string_equal(reason, "");

	k8s_buf_add(&r.body, st, strlen(st));
	assert_int_equal(k8s_fail_status(&r, &call, "op"), CI_E_NOTFOUND);
	assert_string_equal(call.err, "op: HTTP 404 NotFound: pods \"x\" not found");
	r.status = 409;
	assert_int_equal(k8s_fail_status(&r, &call, "op"), CI_E_EXISTS);
	r.status = 422;
	assert_int_equal(k8s_fail_status(&r, &call, "op"), CI_E_BACKEND);
	r.status = 401;
	assert_int_equal(k8s_fail_status(&r, &call, "op"), CI_E_UNAVAIL);
	assert_non_null(strstr(call.err, "rejected the token"));
	r.status = 403;
	assert_int_equal(k8s_fail_status(&r, &call, "op"), CI_E_BACKEND);
	r.status = 503;
	assert_int_equal(k8s_fail_status(&r, &call, "op"), CI_E_UNAVAIL);
	r.status = 429;
	assert_int_equal(k8s_fail_status(&r, &call, "op"), CI_E_UNAVAIL);
	k8s_resp_release(&r);
}

static void test_exit_status(void **state)
{
	char err[256];
	int code;

	(void)state;
	assert_int_equal(k8s_exit_status("{\"metadata\":{},\"status\":\"Success\"}", 34, &code, err,
					 sizeof(err)),
			 CI_OK);
	assert_int_equal(code, 0);
	{
		const char *s =
			"{\"metadata\":{},\"status\":\"Failure\",\"message\":\"command "
			"terminated with non-zero exit code\",\"reason\":\"NonZeroExitCode\","
			"\"details\":{\"causes\":[{\"reason\":\"ExitCode\",\"message\":\"137\"}]}}";

		assert_int_equal(k8s_exit_status(s, strlen(s), &code, err, sizeof(err)), CI_OK);
		assert_int_equal(code, 137);
	}
	{
		const char *s = "{\"status\":\"Failure\",\"reason\":\"InternalError\",\"message\":"
				"\"exec: \\\"nope\\\": executable file not found\"}";

		assert_int_equal(k8s_exit_status(s, strlen(s), &code, err, sizeof(err)),
				 CI_E_BACKEND);
		assert_non_null(strstr(err, "InternalError: exec: \"nope\""));
	}
	{
		const char *s =
			"{\"status\":\"Failure\",\"reason\":\"NonZeroExitCode\",\"details\":"
			"{\"causes\":[{\"reason\":\"ExitCode\",\"message\":\"x\"}]}}";

		assert_int_equal(k8s_exit_status(s, strlen(s), &code, err, sizeof(err)),
				 CI_E_BACKEND);
	}
	assert_int_equal(k8s_exit_status("", 0, &code, err, sizeof(err)), CI_E_BACKEND);
}

struct cap {
	char out[256], err[256];
	size_t no, ne;
	int stop_out_after; /* chunks */
	int out_calls;
};

static int cap_write(void *ctx, int stream, const void *buf, size_t len)
{
	struct cap *c = ctx;

	if (stream == CI_STREAM_STDOUT) {
		memcpy(c->out + c->no, buf, len);
		c->no += len;
		return ++c->out_calls == c->stop_out_after;
	}
	memcpy(c->err + c->ne, buf, len);
	c->ne += len;
	return 0;
}

static void msg(struct k8s_chan *ch, const char *parts[], int n)
{
	k8s_chan_msg_start(ch);
	for (int i = 0; i < n; i++)
		k8s_chan_data(ch, parts[i], strlen(parts[i]));
	k8s_chan_msg_end(ch);
}

static void test_chan(void **state)
{
	struct cap c = {0};
	ci_sink sink = {cap_write, &c};
	struct k8s_chan ch;

	(void)state;
	k8s_chan_init(&ch, &sink);
	/* greetings: an empty message on each channel */
	msg(&ch, (const char *[]){"\001"}, 1);
	msg(&ch, (const char *[]){"\002"}, 1);
	msg(&ch, (const char *[]){"\003"}, 1);
	assert_false(ch.have_status);
	/* a message split over frames, the channel byte alone in the first */
	msg(&ch, (const char *[]){"\001", "hel", "lo"}, 3);
	msg(&ch, (const char *[]){"\002oops"}, 1);
	msg(&ch, (const char *[]){"\001 world"}, 1);
	assert_false(ch.bad);
	assert_int_equal(c.no, 11);
	assert_memory_equal(c.out, "hello world", 11);
	assert_memory_equal(c.err, "oops", 4);
	assert_int_equal(ch.bytes[1], 11);
	msg(&ch, (const char *[]){"\003{\"status\":", "\"Success\"}"}, 2);
	assert_true(ch.have_status);
	assert_string_equal(k8s_buf_str(&ch.status), "{\"status\":\"Success\"}");
	msg(&ch, (const char *[]){"\011junk"}, 1);
	assert_true(ch.bad);
	k8s_chan_release(&ch);

	/* a sink that says stop gets no more stdout; stderr goes on */
	memset(&c, 0, sizeof(c));
	c.stop_out_after = 1;
	k8s_chan_init(&ch, &sink);
	msg(&ch, (const char *[]){"\001a"}, 1);
	msg(&ch, (const char *[]){"\001b"}, 1);
	msg(&ch, (const char *[]){"\002e"}, 1);
	assert_int_equal(c.no, 1);
	assert_int_equal(c.ne, 1);
	assert_int_equal(ch.bytes[1], 2);
	k8s_chan_release(&ch);
}

static void test_exec_query(void **state)
{
	static const char *const argv[] = {"printf", "%s|", "a b&c=d", NULL};
	static const char *const env[] = {"K=v w", NULL};
	struct k8s_mem m = {(const unsigned char *)"xyz", 3};
	ci_source in = {.read = k8s_mem_read, .ctx = &m, .size = 3, .fd = -1};
	struct k8s_exec x = {.argv = argv, .env = env, .cwd = "/mnt/data/sub"};
	struct k8s_buf q = {0};
	const char *s;

	(void)state;
	assert_int_equal(k8s_exec_query(&q, &x, 1500), 0);
	s = k8s_buf_str(&q);
	assert_non_null(strstr(s, "command=%2Fbin%2Fsh&command=-c&command="));
	assert_non_null(strstr(s,
			       "&command=ci-exec&command=1.500&command=-&command=%2Fmnt%2Fdata%2F"
			       "sub&command=1&command=K%3Dv%20w&command=printf&command=%25s%7C&"
			       "command=a%20b%26c%3Dd&container=sandbox&stdin=false&stdout=true&"
			       "stderr=true&tty=false"));
	q.len = 0;
	x.in = &in;
	x.stdin_kind = K8S_STDIN_COUNTED;
	x.env = NULL;
	x.cwd = NULL;
	assert_int_equal(k8s_exec_query(&q, &x, 0), 0);
	s = k8s_buf_str(&q);
	assert_non_null(strstr(s, "&command=ci-exec&command=0&command=3&command=%2Fmnt%2Fdata&"
				  "command=0&command=printf"));
	assert_non_null(strstr(s, "&stdin=true&"));
	q.len = 0;
	x.stdin_kind = K8S_STDIN_RAW;
	assert_int_equal(k8s_exec_query(&q, &x, 0), 0);
	assert_non_null(strstr(k8s_buf_str(&q), "&command=ci-exec&command=0&command=r&"));
	k8s_buf_release(&q);

	ci_exec_result res;

	k8s_status_to_result(3, false, &res);
	assert_int_equal(res.exit_code, 3);
	k8s_status_to_result(137, false, &res);
	assert_int_equal(res.exit_code, -1);
	assert_int_equal(res.signal, 9);
	k8s_status_to_result(137, true, &res);
	assert_int_equal(res.timed_out, 1);
}

static void test_http_head(void **state)
{
	static const char ok[] =
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		"Connection: Upgrade\r\nsec-websocket-accept:  s3pPLMBiTxaQ9kYGzzhZRbK"
		"+xOo= \r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n";
	static const char no[] = "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
				 "Content-Length: 42\r\n\r\n";
	char proto[64], accept[64], want[32];
	int64_t clen;
	int st;

	(void)state;
	assert_int_equal(k8s_http_head(ok, sizeof(ok) - 1, &st, proto, sizeof(proto), accept,
				       sizeof(accept), &clen),
			 0);
	assert_int_equal(st, 101);
	assert_string_equal(proto, "v5.channel.k8s.io");
	assert_string_equal(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	assert_int_equal(clen, -1);
	/* RFC 6455's example key */
	k8s_ws_accept("dGhlIHNhbXBsZSBub25jZQ==", want);
	assert_string_equal(want, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	assert_int_equal(k8s_http_head(no, sizeof(no) - 1, &st, proto, sizeof(proto), accept,
				       sizeof(accept), &clen),
			 0);
	assert_int_equal(st, 403);
	assert_int_equal(clen, 42);
	/* 101 without Upgrade: websocket is refused */
	assert_int_equal(k8s_http_head("HTTP/1.1 101 OK\r\n\r\n", 19, &st, proto, sizeof(proto),
				       accept, sizeof(accept), &clen),
			 -1);
	assert_int_equal(k8s_http_head("SSH-2.0-x\r\n\r\n", 13, &st, proto, sizeof(proto), accept,
				       sizeof(accept), &clen),
			 -1);
}

struct seen {
	char paths[8][64];
	int types[8];
	int64_t sizes[8], mtimes[8];
	uint32_t modes[8];
	int n, stop_at;
};

static int seen_cb(void *ctx, const ci_entry *e)
{
	struct seen *s = ctx;

	snprintf(s->paths[s->n], sizeof(s->paths[0]), "%s", e->path);
	s->types[s->n] = e->type;
	s->sizes[s->n] = e->size;
	s->mtimes[s->n] = e->mtime_ns;
	s->modes[s->n] = e->mode;
	s->n++;
	return s->n == s->stop_at;
}

static void test_listp(void **state)
{
	static const char recs[] = "f 12 1700000000.5 644 a b.txt\0d 4096 1700000001 755 dir\0"
				   "l 4 1700000002.123456789123 777 dir/link\0";
	struct seen s = {0};
	struct k8s_listp p = {.cb = seen_cb, .ctx = &s};

	(void)state;
	/* fed in 5-byte pieces: records straddle the chunks */
	for (size_t i = 0; i < sizeof(recs) - 1; i += 5)
		assert_int_equal(
			k8s_listp_feed(&p, recs + i,
				       sizeof(recs) - 1 - i < 5 ? sizeof(recs) - 1 - i : 5),
			0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.paths[0], "a b.txt");
	assert_int_equal(s.types[0], CI_ENTRY_FILE);
	assert_int_equal(s.sizes[0], 12);
	assert_int_equal(s.mtimes[0], 1700000000500000000ll);
	assert_int_equal(s.modes[0], 0644);
	assert_int_equal(s.types[1], CI_ENTRY_DIR);
	assert_int_equal(s.sizes[1], 0);
	assert_int_equal(s.types[2], CI_ENTRY_SYMLINK);
	assert_int_equal(s.mtimes[2], 1700000002123456789ll);
	assert_int_equal(p.rec.len, 0);
	k8s_buf_release(&p.rec);

	memset(&s, 0, sizeof(s));
	p = (struct k8s_listp){.cb = seen_cb, .ctx = &s};
	assert_int_equal(k8s_listp_feed(&p, "garbage\0", 8), -1);
	assert_true(p.bad);
	k8s_buf_release(&p.rec);

	memset(&s, 0, sizeof(s));
	s.stop_at = 1;
	p = (struct k8s_listp){.cb = seen_cb, .ctx = &s};
	k8s_listp_feed(&p, recs, sizeof(recs) - 1);
	assert_int_equal(s.n, 1);
	assert_true(p.stopped);
	k8s_buf_release(&p.rec);
}

struct bytes {
	unsigned char *p;
	size_t n;
};

static int bytes_write(void *ctx, int stream, const void *buf, size_t len)
{
	struct bytes *b = ctx;

	assert_int_equal(stream, CI_STREAM_DATA);
	b->p = realloc(b->p, b->n + len);
	memcpy(b->p + b->n, buf, len);
	b->n += len;
	return 0;
}

/* Write a tar with k8s_tar_out, read it back with k8s_tar_in in odd chunks. */
static void tar_round_trip(const char *name, size_t size)
{
	unsigned char *data = malloc(size + 1), *tar;
	struct k8s_mem m = {data, size};
	ci_source src = {.read = k8s_mem_read, .ctx = &m, .size = (int64_t)size, .fd = -1}, tsrc;
	struct k8s_tar_out *t;
	struct bytes got = {0};
	ci_sink sink = {bytes_write, &got};
	struct k8s_tar_in in;
	ci_call call = {0};
	size_t n = 0;
	ssize_t r;

	for (size_t i = 0; i < size; i++)
		data[i] = (unsigned char)(i * 7 + (i >> 9));
	assert_int_equal(k8s_tar_out_new(name, 0640, 1700000000, &src, &t, &tsrc, &call), CI_OK);
	assert_int_equal(tsrc.size % 10240, 0); /* whole records: tar -x stops by itself */
	tar = malloc((size_t)tsrc.size);
	while ((r = tsrc.read(tsrc.ctx, tar + n, 777)) > 0)
		n += (size_t)r;
	assert_int_equal(r, 0);
	assert_int_equal(n, (size_t)tsrc.size);
	assert_int_equal(k8s_tar_out_status(t, &call), CI_OK);
	k8s_tar_out_free(t);

	k8s_tar_in_init(&in, name, &sink);
	for (size_t i = 0; i < n; i += 333)
		assert_int_equal(k8s_tar_in_feed(&in, tar + i, n - i < 333 ? n - i : 333), 0);
	assert_int_equal(in.rc, CI_OK);
	assert_true(in.done);
	assert_int_equal(got.n, size);
	assert_true(size == 0 || memcmp(got.p, data, size) == 0);
	k8s_tar_in_release(&in);
	free(got.p);
	free(tar);
	free(data);
}

static void test_tar(void **state)
{
	char longname[201];

	(void)state;
	tar_round_trip("empty.txt", 0);
	tar_round_trip("one.bin", 1);
	tar_round_trip("block.bin", 512);
	tar_round_trip("big.bin", 100000);
	memset(longname, 'n', 200);
	longname[200] = 0;
	tar_round_trip(longname, 1234); /* pax path record */
}

/* A header block as GNU tar writes it. */
static void hdr(unsigned char *h, const char *name, char type, unsigned size)
{
	unsigned sum = 0;

	memset(h, 0, 512);
	snprintf((char *)h, 100, "%s", name);
	snprintf((char *)h + 100, 8, "%07o", 0644);
	snprintf((char *)h + 124, 12, "%011o", size);
	memset(h + 148, ' ', 8);
	h[156] = (unsigned char)type;
	memcpy(h + 257, "ustar  ", 8);
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
}

static void test_tar_refusals(void **state)
{
	unsigned char blk[1536] = {0};
	struct bytes got = {0};
	ci_sink sink = {bytes_write, &got};
	struct k8s_tar_in in;

	(void)state;
	hdr(blk, "x", '2', 0); /* a symlink */
	k8s_tar_in_init(&in, "x", &sink);
	assert_int_equal(k8s_tar_in_feed(&in, blk, 512), -1);
	assert_int_equal(in.rc, CI_E_INVAL);
	assert_string_equal(in.err, "is a link (not followed)");
	k8s_tar_in_release(&in);

	hdr(blk, "x/", '5', 0);
	k8s_tar_in_init(&in, "x/", &sink);
	assert_int_equal(k8s_tar_in_feed(&in, blk, 512), -1);
	assert_int_equal(in.rc, CI_E_INVAL);
	k8s_tar_in_release(&in);

	hdr(blk, "other", '0', 0);
	k8s_tar_in_init(&in, "x", &sink);
	assert_int_equal(k8s_tar_in_feed(&in, blk, 512), -1);
	assert_int_equal(in.rc, CI_E_BACKEND);
	k8s_tar_in_release(&in);

	hdr(blk, "x", '0', 3);
	blk[148] ^= 1; /* checksum */
	k8s_tar_in_init(&in, "x", &sink);
	assert_int_equal(k8s_tar_in_feed(&in, blk, 512), -1);
	assert_non_null(strstr(in.err, "checksum"));
	k8s_tar_in_release(&in);

	/* GNU long name: an 'L' member, then the file under ././@LongLink */
	{
		char name[150];

		memset(name, 'q', 149);
		name[149] = 0;
		hdr(blk, "././@LongLink", 'L', 150);
		memcpy(blk + 512, name, 150);
		hdr(blk + 1024, "qqqq", '0', 2);
		k8s_tar_in_init(&in, name, &sink);
		assert_int_equal(k8s_tar_in_feed(&in, blk, 1536), 0);
		assert_int_equal(k8s_tar_in_feed(&in, "hi", 2), 0);
		assert_true(in.done);
		assert_int_equal(got.n, 2);
		k8s_tar_in_release(&in);
		free(got.p);
	}
	/* an empty archive: no file */
	memset(blk, 0, 1024);
	k8s_tar_in_init(&in, "x", &sink);
	assert_int_equal(k8s_tar_in_feed(&in, blk, 1024), -1);
	assert_int_equal(in.rc, CI_E_BACKEND);
	k8s_tar_in_release(&in);
}

static void test_kv_and_names(void **state)
{
	struct k8s_kv *kv;
	size_t n;
	char err[128], lv[64];

	(void)state;
	assert_int_equal(k8s_kv_parse("team=ml, app.kubernetes.io/part-of=ci,empty=", ',', true,
				      &kv, &n, err, sizeof(err)),
			 CI_OK);
	assert_int_equal(n, 3);
	assert_string_equal(kv[1].key, "app.kubernetes.io/part-of");
	assert_string_equal(kv[1].value, "ci");
	assert_string_equal(kv[2].value, "");
	k8s_kv_free(kv, n);
	assert_int_equal(k8s_kv_parse("a=has space", ',', true, &kv, &n, err, sizeof(err)),
			 CI_E_INVAL);
	assert_int_equal(k8s_kv_parse("novalue", ',', true, &kv, &n, err, sizeof(err)), CI_E_INVAL);
	assert_int_equal(k8s_kv_parse("ci.owner=me", ',', true, &kv, &n, err, sizeof(err)),
			 CI_E_INVAL);
	assert_int_equal(
		k8s_kv_parse("note=a, b; c\nother=x=y", '\n', false, &kv, &n, err, sizeof(err)),
		CI_OK);
	assert_int_equal(n, 2);
	assert_string_equal(kv[0].value, "a, b; c");
	assert_string_equal(kv[1].value, "x=y");
	k8s_kv_free(kv, n);

	assert_true(k8s_label_value_ok("ci-conformance-12-1700000000-a"));
	assert_true(k8s_label_value_ok(""));
	assert_false(k8s_label_value_ok("_x"));
	assert_false(k8s_label_value_ok("a b"));
	k8s_label_value("a b", lv);
	assert_int_equal(strlen(lv), 18);
	assert_true(k8s_label_value_ok(lv));
	k8s_label_value("ok", lv);
	assert_string_equal(lv, "ok");
	assert_true(k8s_name_ok("ci-0123456789abcdef"));
	assert_false(k8s_name_ok("Ci"));
	assert_false(k8s_name_ok("../etc"));
	assert_false(k8s_name_ok("-x"));
	assert_false(k8s_name_ok(""));

	char out[64];
	ci_call call = {0};

	assert_int_equal(k8s_path_check("/mnt/data//a/./b/", out, sizeof(out), &call), CI_OK);
	assert_string_equal(out, "/mnt/data/a/b");
	assert_int_equal(k8s_path_check("/mnt/data/../etc", out, sizeof(out), &call), CI_E_INVAL);
	assert_int_equal(k8s_path_check("/mnt/database", out, sizeof(out), &call), CI_E_INVAL);
	assert_int_equal(k8s_path_check("/mnt/data/a\nb", out, sizeof(out), &call), CI_E_INVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pod_json),     cmocka_unit_test(test_pod_state),
		cmocka_unit_test(test_status_text),  cmocka_unit_test(test_exit_status),
		cmocka_unit_test(test_chan),	     cmocka_unit_test(test_exec_query),
		cmocka_unit_test(test_http_head),    cmocka_unit_test(test_listp),
		cmocka_unit_test(test_tar),	     cmocka_unit_test(test_tar_refusals),
		cmocka_unit_test(test_kv_and_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

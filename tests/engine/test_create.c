/* The hardened container create body, per engine kind, and its inputs. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine.h"

static char user[] = "1000:1000", keepalive[] = "65534:65534", fmt[] = "ci-sandbox-%s";
static struct eng_conf conf = {
	.user = user,
	.keepalive_user = keepalive,
	.image_fmt = fmt,
	.mem_bytes = 512 << 20,
	.cpu_millis = 1000,
	.pids = 256,
	.disk_bytes = 256 << 20,
	.tmp_bytes = 64 << 20,
	.nofile = 1024,
	.nproc = 4096,
	.init = true,
	.layout = "auto",
};

static json_t *body_for(enum eng_kind kind, bool pooled)
{
	const char *env[] = {"A=1", "B=two words", NULL};
	struct eng_limits l = {256 << 20, 1500, 64, 32 << 20};
	char *s = eng_create_body(&conf, kind, "docker", "ci-sandbox-python", "python", "owner-1",
				  pooled ? NULL : "sess-9", env, &l, 1700000000, pooled);
	json_t *j;

	assert_non_null(s);
	j = json_loads(s, 0, NULL);
	free(s);
	assert_non_null(j);
	return j;
}

static const char *str(json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));

	assert_non_null(v);
	return v;
}

static void check_common(json_t *b)
{
	json_t *hc = json_object_get(b, "HostConfig"), *lab = json_object_get(b, "Labels");
	json_t *ul = json_object_get(hc, "Ulimits");

	assert_string_equal(str(b, "Image"), "ci-sandbox-python");
	assert_string_equal(str(b, "User"), "65534:65534");
	assert_true(json_is_true(json_object_get(b, "NetworkDisabled")));
	assert_string_equal(json_string_value(json_array_get(json_object_get(b, "Env"), 1)),
			    "B=two words");
	assert_string_equal(str(lab, "ci.sandbox"), "1");
	assert_string_equal(str(lab, "ci.owner"), "owner-1");
	assert_string_equal(str(lab, "ci.runtime"), "python");
	assert_string_equal(str(lab, "ci.created"), "1700000000");
	assert_string_equal(str(lab, "ci.backend"), "docker");

	assert_string_equal(str(hc, "NetworkMode"), "none");
	assert_true(json_is_true(json_object_get(hc, "ReadonlyRootfs")));
	assert_true(json_is_true(json_object_get(hc, "Init")));
	assert_string_equal(json_string_value(json_array_get(json_object_get(hc, "CapDrop"), 0)),
			    "ALL");
	assert_string_equal(
		json_string_value(json_array_get(json_object_get(hc, "SecurityOpt"), 0)),
		"no-new-privileges");
	assert_int_equal(json_integer_value(json_object_get(hc, "Memory")), 256 << 20);
	assert_int_equal(json_integer_value(json_object_get(hc, "MemorySwap")), 256 << 20);
	assert_int_equal(json_integer_value(json_object_get(hc, "NanoCpus")), 1500000000LL);
	assert_int_equal(json_integer_value(json_object_get(hc, "PidsLimit")), 64);
	assert_int_equal(json_array_size(ul), 2);
	assert_string_equal(str(json_array_get(ul, 0), "Name"), "nofile");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(ul, 0), "Soft")), 1024);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(ul, 0), "Hard")), 1024);
	assert_string_equal(str(json_array_get(ul, 1), "Name"), "nproc");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(ul, 1), "Hard")), 4096);
	assert_string_equal(str(json_object_get(hc, "Tmpfs"), "/tmp"),
			    "rw,exec,nosuid,nodev,size=67108864");
}

static void test_docker_layout(void **state)
{
	json_t *b = body_for(ENG_KIND_DOCKER, false), *hc = json_object_get(b, "HostConfig");
	json_t *m = json_array_get(json_object_get(hc, "Mounts"), 0), *vo, *opt;

	(void)state;
	check_common(b);
	assert_string_equal(str(json_object_get(b, "Labels"), "ci.session"), "sess-9");
	assert_null(json_object_get(json_object_get(b, "Labels"), "ci.pool"));
	/* /mnt/data: a labelled anonymous volume backed by a capped tmpfs (archive API). */
	assert_null(json_object_get(json_object_get(hc, "Tmpfs"), "/mnt/data"));
	assert_string_equal(str(m, "Type"), "volume");
	assert_string_equal(str(m, "Target"), "/mnt/data");
	vo = json_object_get(m, "VolumeOptions");
	assert_string_equal(str(json_object_get(vo, "Labels"), "ci.owner"), "owner-1");
	opt = json_object_get(json_object_get(vo, "DriverConfig"), "Options");
	assert_string_equal(str(opt, "type"), "tmpfs");
	assert_string_equal(str(opt, "o"), "size=33554432,uid=1000,gid=1000,nosuid,nodev");
	json_decref(b);
}

static void test_podman_layout(void **state)
{
	json_t *b = body_for(ENG_KIND_PODMAN, true), *hc = json_object_get(b, "HostConfig");

	(void)state;
	check_common(b);
	/* /mnt/data: a capped tmpfs, no uid= (podman rejects it), no volume. */
	assert_string_equal(str(json_object_get(hc, "Tmpfs"), "/mnt/data"),
			    "rw,exec,nosuid,nodev,size=33554432");
	assert_int_equal(json_array_size(json_object_get(hc, "Mounts")), 0);
	assert_string_equal(str(json_object_get(b, "Labels"), "ci.pool"), "1");
	assert_string_equal(str(json_object_get(b, "Labels"), "ci.session"), "pool");
	json_decref(b);

	/* The layout can be forced. */
	conf.layout = "tmpfs";
	b = body_for(ENG_KIND_DOCKER, false);
	assert_non_null(json_object_get(json_object_get(json_object_get(b, "HostConfig"), "Tmpfs"),
					"/mnt/data"));
	json_decref(b);
	conf.layout = "auto";
}

static void test_limits(void **state)
{
	ci_create_spec spec = {.struct_size = sizeof(spec), .mem_bytes = 1 << 30, .pids = 32};
	struct eng_limits l;

	(void)state;
	eng_limits_from_spec(&conf, NULL, &l);
	assert_int_equal(l.mem_bytes, 512 << 20);
	assert_int_equal(l.cpu_millis, 1000);
	assert_int_equal(l.pids, 256);
	assert_int_equal(l.disk_bytes, 256 << 20);
	eng_limits_from_spec(&conf, &spec, &l);
	assert_int_equal(l.mem_bytes, 1 << 30);
	assert_int_equal(l.pids, 32);
	assert_int_equal(l.cpu_millis, 1000);
}

static void test_ids(void **state)
{
	ci_call c = {.struct_size = sizeof(c)};

	(void)state;
	assert_int_equal(eng_id_check("0123456789abcdef0123", &c), CI_OK);
	assert_int_equal(eng_id_check("0123456789ab/../x", &c), CI_E_NOTFOUND);
	assert_int_equal(eng_id_check("abc", &c), CI_E_NOTFOUND);
	assert_int_equal(eng_id_check("0123456789ABCDEF", &c), CI_E_NOTFOUND);
	assert_int_equal(eng_id_check(NULL, &c), CI_E_INVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_docker_layout),
		cmocka_unit_test(test_podman_layout),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_ids),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

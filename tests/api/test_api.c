/*
 * The LibreChat API handlers in-process with the fake backend plugin loaded
 * through the real loader: uploads, listings, downloads, ownership, every
 * 4xx path, atomicity of refused uploads, restart recovery.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <curl/curl.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "fixture.h"
#include "log.h"

/* Files under the store's data tree (temp files included). */
static int count_data_files(const char *dir)
{
	char sub[512];
	struct dirent *e;
	int n = 0;
	DIR *d = opendir(dir);

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
		if (stat(sub, &st))
			continue;
		n += S_ISDIR(st.st_mode) ? count_data_files(sub) : 1;
	}
	closedir(d);
	return n;
}

static void test_upload_download_roundtrip(void **state)
{
	const char *names[] = {"docs/two.md", NULL}, *datas[] = {"# two\nnaïve ✓\n", NULL};
	json_t *up, *meta, *list;
	char path[256], disp[256], sid[32], fid[32];
	struct tresp rs;

	(void)state;
	up = fx_upload(KEY_A, "/upload", names, datas, "kind", "user", 200);
	assert_string_equal(fx_str(up, "message"), "success");
	snprintf(sid, sizeof(sid), "%s", fx_str(up, "storage_session_id"));
	snprintf(fid, sizeof(fid), "%s", fx_str(up, "files.0.fileId"));
	assert_string_equal(fx_str(up, "session_id"), sid);
	assert_int_equal(strlen(sid), 21);
	assert_int_equal(strlen(fid), 21);
	/* Nested names are preserved, not basenamed. */
	assert_string_equal(fx_str(up, "files.0.filename"), "docs/two.md");
	json_decref(up);

	snprintf(path, sizeof(path), "/v1/download/%s/%s?kind=user&id=6650a1b2c3d4e5f6a7b8c9d0",
		 sid, fid);
	json_decref(fx_call("GET", KEY_A, path, 200, &rs));
	assert_string_equal(rs.body, datas[0]);
	assert_int_equal(tresp_header(&rs, "Content-Disposition", disp, sizeof(disp)), 0);
	assert_string_equal(disp, "attachment; filename=\"two.md\"; filename*=UTF-8''two.md");
	tresp_free(&rs);

	snprintf(path, sizeof(path), "/sessions/%s/objects/%s", sid, fid);
	meta = fx_call("GET", KEY_A, path, 200, NULL);
	assert_non_null(fx_str(meta, "lastModified"));
	assert_int_equal(json_integer_value(json_object_get(meta, "size")), strlen(datas[0]));
	json_decref(meta);

	snprintf(path, sizeof(path), "/files/%s?detail=full", sid);
	list = fx_call("GET", KEY_A, path, 200, NULL);
	assert_int_equal(json_array_size(list), 1);
	snprintf(path, sizeof(path), "%s/%s.md", sid, fid);
	/* Legacy clients find files with name.startsWith("<sid>/<fid>"). */
	assert_string_equal(fx_str(list, "0.name"), path);
	assert_string_equal(fx_str(list, "0.metadata.original-filename"), "docs/two.md");
	json_decref(list);
	snprintf(path, sizeof(path), "/files/%s", sid);
	list = fx_call("GET", KEY_A, path, 200, NULL);
	assert_true(json_is_string(json_array_get(list, 0)));
	json_decref(list);
	snprintf(path, sizeof(path), "/files/%s?detail=summary", sid);
	list = fx_call("GET", KEY_A, path, 200, NULL);
	assert_string_equal(fx_str(list, "0.fileId"), fid);
	json_decref(list);
}

static void test_other_principal_sees_nothing(void **state)
{
	const char *names[] = {"secret.txt", NULL}, *datas[] = {"alice only", NULL};
	char path[256], sid[32], fid[32];
	json_t *up, *j;

	(void)state;
	up = fx_upload(KEY_A, "/upload", names, datas, NULL, NULL, 200);
	snprintf(sid, sizeof(sid), "%s", fx_str(up, "session_id"));
	snprintf(fid, sizeof(fid), "%s", fx_str(up, "files.0.fileId"));
	json_decref(up);
	snprintf(path, sizeof(path), "/download/%s/%s", sid, fid);
	j = fx_call("GET", KEY_B, path, 404, NULL);
	assert_string_equal(fx_str(j, "error"), "File not found");
	json_decref(j);
	snprintf(path, sizeof(path), "/sessions/%s/objects/%s", sid, fid);
	json_decref(fx_call("GET", KEY_B, path, 404, NULL));
	snprintf(path, sizeof(path), "/files/%s?detail=full", sid);
	j = fx_call("GET", KEY_B, path, 200, NULL);
	assert_int_equal(json_array_size(j), 0);
	json_decref(j);
	snprintf(path, sizeof(path), "/files/%s/%s", sid, fid);
	json_decref(fx_call("DELETE", KEY_B, path, 404, NULL));
	/* ... and cannot mount it into a run either. */
	snprintf(path, sizeof(path),
		 "{\"lang\":\"py\",\"code\":\"print(1)\",\"files\":[{\"id\":\"%s\","
		 "\"session_id\":\"%s\",\"name\":\"secret.txt\"}]}",
		 fid, sid);
	j = fx_post_json(KEY_B, "/exec", path, 400);
	assert_non_null(strstr(fx_str(j, "error"), "not found"));
	json_decref(j);
	/* The owner still can delete it; then it is gone. */
	snprintf(path, sizeof(path), "/files/%s/%s", sid, fid);
	j = fx_call("DELETE", KEY_A, path, 200, NULL);
	assert_string_equal(fx_str(j, "message"), "File deleted successfully");
	json_decref(j);
	snprintf(path, sizeof(path), "/download/%s/%s", sid, fid);
	json_decref(fx_call("GET", KEY_A, path, 404, NULL));
}

static void test_refused_uploads_leave_nothing(void **state)
{
	static char big[2000];
	const char *names[] = {"big.bin", NULL}, *datas[] = {big, NULL};
	const char *two_n[] = {"ok.txt", "big.bin", NULL}, *two_d[] = {"fine", big, NULL};
	char dir[128];
	json_t *j;

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	snprintf(dir, sizeof(dir), "%s/files", fx_root);
	j = fx_upload(KEY_A, "/upload", names, datas, NULL, NULL, 413);
	assert_string_equal(fx_str(j, "error"), "File size limit exceeded");
	json_decref(j);
	/* All or nothing: the good file of a refused single upload is not kept. */
	j = fx_upload(KEY_A, "/upload", two_n, two_d, NULL, NULL, 413);
	json_decref(j);
	assert_int_equal(count_data_files(dir), 0);
	/* A batch keeps what succeeded and says what did not. */
	j = fx_upload(KEY_A, "/upload/batch", two_n, two_d, "kind", "agent", 200);
	assert_string_equal(fx_str(j, "message"), "partial_success");
	assert_string_equal(fx_str(j, "files.0.status"), "success");
	assert_string_equal(fx_str(j, "files.1.status"), "error");
	assert_string_equal(fx_str(j, "files.1.error"), "File size limit exceeded");
	assert_int_equal(json_integer_value(json_object_get(j, "succeeded")), 1);
	json_decref(j);
	assert_int_equal(count_data_files(dir), 2); /* one .data + one .json */
}

static void test_upload_errors(void **state)
{
	const char *names[] = {"a.txt", NULL}, *datas[] = {"a", NULL};
	const char *bad[] = {"../escape.txt", NULL};
	json_t *j;

	(void)state;
	j = fx_post_json(KEY_A, "/upload", "{}", 400);
	assert_string_equal(fx_str(j, "error"),
			    "Invalid content type. Must be multipart/form-data.");
	json_decref(j);
	j = fx_upload(KEY_A, "/upload", names, datas, "kind", "nope", 400);
	assert_string_equal(fx_str(j, "error"), "kind must be one of: skill, agent, user");
	json_decref(j);
	j = fx_upload(KEY_A, "/upload", names, datas, "kind", "skill", 400);
	assert_string_equal(fx_str(j, "error"), "version is required for kind: 'skill'");
	json_decref(j);
	j = fx_upload(KEY_A, "/upload", bad, datas, NULL, NULL, 400);
	assert_non_null(strstr(fx_str(j, "error"), "Invalid filename"));
	json_decref(j);
	j = fx_upload(KEY_A, "/upload", (const char *[]){NULL}, datas, "kind", "user", 400);
	assert_non_null(strstr(fx_str(j, "error"), "No file"));
	json_decref(j);
}

static void test_exec_errors(void **state)
{
	json_t *j;

	(void)state;
	j = fx_post_json(KEY_A, "/exec", "{\"lang\":\"cobol\",\"code\":\"x\"}", 400);
	assert_string_equal(fx_str(j, "error"), "Unsupported language: cobol");
	json_decref(j);
	j = fx_post_json(KEY_A, "/exec", "{\"code\":\"x\"}", 400);
	assert_string_equal(fx_str(j, "error"), "lang is required");
	json_decref(j);
	j = fx_post_json(KEY_A, "/exec", "{\"lang\":\"py\"}", 400);
	assert_non_null(strstr(fx_str(j, "error"), "code is required"));
	json_decref(j);
	j = fx_post_json(KEY_A, "/exec", "{\"lang\":", 400);
	assert_non_null(strstr(fx_str(j, "error"), "not valid JSON"));
	json_decref(j);
	j = fx_post_json(KEY_A, "/exec", "[1]", 400);
	json_decref(j);
	j = fx_post_json(KEY_A, "/exec", "{\"lang\":\"py\",\"code\":\"1\",\"args\":[1]}", 400);
	assert_string_equal(fx_str(j, "error"), "args[0] must be a string");
	json_decref(j);
	j = fx_post_json(
		KEY_A, "/exec",
		"{\"lang\":\"py\",\"code\":\"1\",\"files\":[{\"id\":\"short\",\"name\":\"a\"}]}",
		400);
	assert_non_null(strstr(fx_str(j, "error"), "21-character"));
	json_decref(j);
	j = fx_post_json(
		KEY_A, "/exec",
		"{\"lang\":\"py\",\"code\":\"1\",\"files\":[{\"id\":\"aaaaaaaaaaaaaaaaaaaaa\","
		"\"name\":\"../x\"}]}",
		400);
	assert_non_null(strstr(fx_str(j, "error"), "invalid name"));
	json_decref(j);
	j = fx_post_json(
		KEY_A, "/exec",
		"{\"lang\":\"py\",\"code\":\"1\",\"files\":[{\"id\":\"aaaaaaaaaaaaaaaaaaaaa\","
		"\"name\":\".ci/x\"}]}",
		400);
	assert_non_null(strstr(fx_str(j, "error"), "reserved"));
	json_decref(j);
	j = fx_post_json(
		KEY_A, "/exec",
		"{\"lang\":\"py\",\"code\":\"1\",\"files\":[{\"id\":\"aaaaaaaaaaaaaaaaaaaaa\","
		"\"name\":\"a\"},{\"id\":\"aaaaaaaaaaaaaaaaaaaab\",\"name\":\"b\"},{\"id\":"
		"\"aaaaaaaaaaaaaaaaaaaac\",\"name\":\"c\"},{\"id\":\"aaaaaaaaaaaaaaaaaaaad\","
		"\"name\":\"d\"}]}",
		413);
	assert_non_null(strstr(fx_str(j, "error"), "too many files"));
	json_decref(j);
}

static void test_ids_and_routes(void **state)
{
	json_t *j;

	(void)state;
	j = fx_call("GET", KEY_A, "/download/not-a-nanoid/alsonot", 400, NULL);
	assert_string_equal(fx_str(j, "error"), "Bad request");
	json_decref(j);
	j = fx_call("GET", KEY_A, "/files/aaaaaaaaaaaaaaaaaaaaa?detail=summary", 200, NULL);
	assert_int_equal(json_array_size(j), 0);
	json_decref(j);
	json_decref(fx_call("GET", KEY_A, "/files/aaaaaaaaaaaaaaaaaaaaa?detail=bogus", 400, NULL));
	j = fx_call("GET", KEY_A, "/download/aaaaaaaaaaaaaaaaaaaaa/aaaaaaaaaaaaaaaaaaaaa", 404,
		    NULL);
	assert_string_equal(fx_str(j, "details"), "The file may have expired or does not exist");
	json_decref(j);
	j = fx_call("GET", KEY_A, "/v1/languages", 200, NULL);
	assert_int_equal(json_array_size(json_object_get(j, "languages")), 13);
	json_decref(j);
	j = fx_call("GET", KEY_A, "/v1/backends", 200, NULL);
	assert_string_equal(fx_str(j, "backends.0.name"), "fake");
	json_decref(j);
	j = fx_call("GET", NULL, "/health", 200, NULL);
	assert_string_equal(fx_str(j, "status"), "ok");
	json_decref(j);
	json_decref(fx_call("GET", NULL, "/v1/librechat/sessions", 401, NULL));
}

static void test_restart_keeps_files(void **state)
{
	const char *names[] = {"keep.csv", NULL}, *datas[] = {"a,b\n1,2\n", NULL};
	char path[256];
	struct tresp rs;
	json_t *up;

	(void)state;
	up = fx_upload(KEY_A, "/upload", names, datas, NULL, NULL, 200);
	snprintf(path, sizeof(path), "/download/%s/%s", fx_str(up, "session_id"),
		 fx_str(up, "files.0.fileId"));
	json_decref(up);
	fx_stop();
	fx_start();
	json_decref(fx_call("GET", KEY_A, path, 200, &rs));
	assert_string_equal(rs.body, datas[0]);
	tresp_free(&rs);
}

/* Upload as alice with a User-Id (and optional kind); returns "sid/fid". */
static void upload_as(const char *user, const char *kind, char *sid, char *fid)
{
	char url[128], hdr[96], uid[64];
	struct treq rq = {.method = "POST", .url = url, .chunked = 1};
	struct tresp rs;
	json_t *j;
	int n = 0;

	snprintf(url, sizeof(url), "%s/upload", fx_base());
	snprintf(hdr, sizeof(hdr), "X-API-Key: %s", KEY_A);
	snprintf(uid, sizeof(uid), "User-Id: %s", user);
	rq.headers[0] = hdr;
	rq.headers[1] = uid;
	if (kind) {
		rq.form_names[n] = "kind";
		rq.form_values[n++] = kind;
		rq.form_names[n] = "id";
		rq.form_values[n++] = "agent_abc";
	}
	rq.form_names[n] = "file";
	rq.form_values[n] = "secret of someone";
	rq.form_lens[n] = 17;
	rq.form_filenames[n] = "s.txt";
	assert_int_equal(tclient_do(&rq, &rs), 0);
	assert_int_equal(rs.status, 200);
	j = json_loads(rs.body, 0, NULL);
	strcpy(sid, fx_str(j, "session_id"));
	strcpy(fid, fx_str(j, "files.0.fileId"));
	json_decref(j);
	tresp_free(&rs);
}

static void test_users_of_one_key_are_kept_apart(void **state)
{
	char sid[32], fid[32], path[200], body[400];
	json_t *j;

	(void)state;
	upload_as("user1", NULL, sid, fid);
	/* Current LibreChat names the user in the query; legacy names nobody. */
	snprintf(path, sizeof(path), "/download/%s/%s?kind=user&id=user2", sid, fid);
	json_decref(fx_call("GET", KEY_A, path, 404, NULL));
	snprintf(path, sizeof(path), "/download/%s/%s?kind=user&id=user1", sid, fid);
	json_decref(fx_call("GET", KEY_A, path, 200, NULL));
	snprintf(path, sizeof(path), "/download/%s/%s", sid, fid);
	json_decref(fx_call("GET", KEY_A, path, 200, NULL));
	snprintf(path, sizeof(path), "/files/%s?detail=full&kind=user&id=user2", sid);
	j = fx_call("GET", KEY_A, path, 200, NULL);
	assert_int_equal(json_array_size(j), 0);
	json_decref(j);
	/* Another user cannot mount it into a run; its owner can. */
	snprintf(body, sizeof(body),
		 "{\"lang\":\"py\",\"code\":\"print(1)\",\"user_id\":\"user2\",\"files\":[{\"id\":"
		 "\"%s\",\"session_id\":\"%s\",\"name\":\"s.txt\"}]}",
		 fid, sid);
	json_decref(fx_post_json(KEY_A, "/exec", body, 400));
	/* An agent's files are shared by every user of the key. */
	upload_as("user1", "agent", sid, fid);
	snprintf(path, sizeof(path), "/download/%s/%s?kind=user&id=user2", sid, fid);
	json_decref(fx_call("GET", KEY_A, path, 200, NULL));
}

static void tune_quota(struct ci_conf *c)
{
	c->principal_stored_bytes = 1500;
}

static int setup_quota(void **state)
{
	(void)state;
	fx_setup(NULL, tune_quota);
	return 0;
}

static void test_stored_bytes_quota(void **state)
{
	static char half[801];
	const char *names[] = {"a.txt", NULL}, *datas[] = {half, NULL};
	json_t *j;

	(void)state;
	memset(half, 'q', 800);
	json_decref(fx_upload(KEY_A, "/upload", names, datas, NULL, NULL, 200));
	/* 800 + 800 > 1500: refused, and nothing of it kept. */
	j = fx_upload(KEY_A, "/upload", names, datas, NULL, NULL, 413);
	assert_string_equal(fx_str(j, "error"), "Storage quota exceeded");
	json_decref(j);
	/* The quota is per principal: Bob still has his. */
	json_decref(fx_upload(KEY_B, "/upload", names, datas, NULL, NULL, 200));
}

static int setup(void **state)
{
	(void)state;
	fx_setup(NULL, NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fx_teardown();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_upload_download_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_principal_sees_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_uploads_leave_nothing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_upload_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ids_and_routes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_keeps_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stored_bytes_quota, setup_quota, teardown),
		cmocka_unit_test_setup_teardown(test_users_of_one_key_are_kept_apart, setup,
						teardown),
	};

	curl_global_init(CURL_GLOBAL_ALL);
	ci_log_set_level(CI_LL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

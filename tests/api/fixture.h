/*
 * A ci-server app in-process (fake backend through the real loader) and
 * HTTP helpers for the API tests. Failures abort the current cmocka test.
 */
#ifndef CI_TESTS_API_FIXTURE_H
#define CI_TESTS_API_FIXTURE_H

#include <jansson.h>

#include "tclient.h"

#define KEY_A "alice-key-0123456789"
#define KEY_B "bob-key-01234567890"

struct ci_conf;

extern char fx_root[64]; /* temp dir of this test: storage, sandboxes, config */
extern struct ci_conf fx_conf;

/*
 * Make fx_root, write extra_conf (libconfig text, may be NULL) to a config
 * file there and start the app on a free port. tune (may be NULL) adjusts
 * the loaded configuration before start.
 */
void fx_setup(const char *extra_conf, void (*tune)(struct ci_conf *conf));
void fx_start(void);
void fx_stop(void);
void fx_teardown(void);

/* GET/DELETE a path; key NULL sends none. keep (may be NULL) receives the raw response. */
json_t *fx_call(const char *method, const char *key, const char *path, long want,
		struct tresp *keep);
json_t *fx_post_json(const char *key, const char *path, const char *body, long want);
/* Multipart upload of NULL-terminated names/datas, plus one optional field. */
json_t *fx_upload(const char *key, const char *path, const char *const *names,
		  const char *const *datas, const char *field, const char *value, long want);
/* "http://127.0.0.1:PORT" of the running app. */
const char *fx_base(void);

/* A string at a dotted path ("files.0.id"), or NULL. */
const char *fx_str(json_t *o, const char *path);

#endif /* CI_TESTS_API_FIXTURE_H */

/*
 * Test helpers around the fake Kubernetes API server (tests/fakes/k8s),
 * for programs run by with-fake.sh: its control endpoint, and the k8s
 * plugin loaded through the server's own loader with the generated config.
 */
#ifndef CI_TESTS_K8S_FAKE_CTL_H
#define CI_TESTS_K8S_FAKE_CTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "loader.h"

struct fk {
	struct ci_conf conf;
	struct ci_plugin *p;
	char err[1024];
};

/* POST body (JSON text) to the control path ("/fault", "/reset"); aborts on failure. */
void fk_control(const char *path, const char *json);
/* GET /state, parsed (json_decref it). */
json_t *fk_state(void);
/* Number of pods the fake holds (all namespaces). */
int fk_pod_count(void);
/* stats.<key> of /state (an integer). */
int64_t fk_stat(const char *key);
/* The fake's state directory, and a file in it. */
const char *fk_dir(void);
/* Load the plugin with $CI_K8S_CONF; NULL with fk->err on refusal. */
struct ci_plugin *fk_load(struct fk *f, const char *plugin_path);
void fk_unload(struct fk *f);

#endif

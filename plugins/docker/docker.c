/*
 * ci-backend-docker: sandboxes are hardened Docker containers, driven
 * through the Docker Engine API on a unix socket. All of the work is in the
 * engine client (plugins/engine/), compiled into this .so; this file only
 * names the plugin. See docs/backends/docker.md.
 */
#include "ci/backend.h"
#include "engine.h"

static const struct eng_profile docker_profile = {
	.name = "docker",
	.default_socket = "/var/run/docker.sock",
	.rootless_socket = "docker.sock", /* rootless dockerd: $XDG_RUNTIME_DIR/docker.sock */
};

static int docker_init(const ci_host *host, ci_be **out, ci_call *call)
{
	return eng_be_init(&docker_profile, host, out, call);
}

static const ci_backend docker_backend = {
	.abi_version = CI_ABI_VERSION,
	.struct_size = sizeof(ci_backend),
	.name = "docker",
	.version = CI_BACKEND_VERSION,
	.caps = CI_CAP_STDIN,
	.init = docker_init,
	.fini = eng_be_fini,
	.create = eng_be_create,
	.exec = eng_be_exec,
	.put = eng_be_put,
	.get = eng_be_get,
	.list = eng_be_list,
	.destroy = eng_be_destroy,
	.sweep = eng_be_sweep,
};

CI_EXPORT ci_entry_fn ci_backend_v1;

const ci_backend *ci_backend_v1(uint32_t host_abi_version)
{
	if (host_abi_version >> 16 != CI_ABI_MAJOR)
		return NULL;
	return &docker_backend;
}

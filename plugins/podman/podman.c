/*
 * ci-backend-podman: sandboxes are hardened podman containers, driven
 * through the Docker-compatible API of `podman system service`. The engine
 * client (plugins/engine/, compiled into this .so) detects podman from
 * GET /version and handles its differences; this file only names the
 * plugin. See docs/backends/podman.md.
 */
#include "ci/backend.h"
#include "engine.h"

static const struct eng_profile podman_profile = {
	.name = "podman",
	.default_socket = "/run/podman/podman.sock",
	.rootless_socket = "podman/podman.sock", /* rootless: $XDG_RUNTIME_DIR/podman/podman.sock */
};

static int podman_init(const ci_host *host, ci_be **out, ci_call *call)
{
	return eng_be_init(&podman_profile, host, out, call);
}

static const ci_backend podman_backend = {
	.abi_version = CI_ABI_VERSION,
	.struct_size = sizeof(ci_backend),
	.name = "podman",
	.version = CI_BACKEND_VERSION,
	.caps = CI_CAP_STDIN,
	.init = podman_init,
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
	return &podman_backend;
}

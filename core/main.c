/* ci-server: command line, signals, lifecycle. */
#include <dirent.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "ci/backend.h"
#include "conf.h"
#include "host.h"
#include "loader.h"
#include "log.h"

#define SHUTDOWN_GRACE_MS 10000

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: ci-server [-c FILE] [--check-config] [--version] [--help]\n"
		"\n"
		"A LibreChat Code Interpreter API server running code in sandbox backends.\n"
		"\n"
		"  -c, --config FILE   configuration file (default: $CI_CONFIG, else none:\n"
		"                      built-in defaults plus environment overrides)\n"
		"      --check-config  validate the configuration and exit (0 = valid)\n"
		"  -V, --version       print versions (server, plugin ABI) and exit\n"
		"  -h, --help          this text\n"
		"\n"
		"Environment overrides: CI_API_KEY CI_AUTH_MODE CI_BACKEND CI_PLUGIN_DIR\n"
		"CI_FILE_STORAGE_PATH CI_HOST CI_PORT CI_SESSION_TTL_MINUTES CI_MAX_MEMORY_MB\n"
		"CI_MAX_RUN_TIMEOUT_SECONDS CI_DEFAULT_RUN_TIMEOUT_SECONDS CI_MAX_FILE_SIZE_BYTES\n"
		"CI_MAX_FILES_PER_SESSION CI_MAX_FILES_PER_RUN CI_SANDBOX_SWEEP_ON_STARTUP\n"
		"CI_SANDBOX_LABEL CI_LOG_LEVEL\n"
		"See conf/ci.conf for every setting and its default.\n");
}

/* Server and ABI versions, then every backend plugin found and its own version. */
static void print_versions(const char *configured_dir)
{
	char *dir = ci_plugin_dir(configured_dir);
	char path[4096], desc[300];
	struct dirent *e;
	DIR *d;

	printf("ci-server %s (plugin ABI %s)\n", CI_VERSION, CI_ABI_STRING);
	d = dir ? opendir(dir) : NULL;
	if (!d) {
		printf("plugins: none found in %s\n", dir ? dir : "?");
		free(dir);
		return;
	}
	printf("plugins in %s:\n", dir);
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);

		if (strncmp(e->d_name, "ci-backend-", 11) || n < 14 ||
		    strcmp(e->d_name + n - 3, ".so"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		ci_plugin_probe(path, desc, sizeof(desc));
		printf("  %s\n", desc);
	}
	closedir(d);
	free(dir);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
					     {"check-config", no_argument, NULL, 'k'},
					     {"version", no_argument, NULL, 'V'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	const char *path = getenv("CI_CONFIG");
	bool check_only = false;
	struct ci_conf conf;
	struct ci_app app;
	char err[512];
	sigset_t sigs;
	int c, sig;

	while ((c = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'k':
			check_only = true;
			break;
		case 'V':
			print_versions(getenv("CI_PLUGIN_DIR"));
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ci-server: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (path && !*path)
		path = NULL;
	if (ci_conf_load(&conf, path, err, sizeof(err))) {
		fprintf(stderr, "ci-server: %s\n", err);
		ci_conf_release(&conf);
		return 1;
	}
	if (check_only) {
		printf("%s: ok\n", path ? path : "built-in defaults");
		if (ci_conf_check_runnable(&conf, err, sizeof(err)))
			printf("note: %s\n", err);
		ci_conf_release(&conf);
		return 0;
	}
	ci_log_set_level((enum ci_log_level)ci_log_parse_level(conf.log_level));
	if (ci_conf_check_runnable(&conf, err, sizeof(err))) {
		fprintf(stderr, "ci-server: %s\n", err);
		ci_conf_release(&conf);
		return 1;
	}
	if (conf.auth_mode == CI_AUTH_NONE && strcmp(conf.host, "127.0.0.1") &&
	    strcmp(conf.host, "::1"))
		ci_log(CI_LL_WARN, "auth.disabled",
		       "host=%s msg=\"auth.mode is none on a "
		       "non-loopback address: anyone who can reach it runs code\"",
		       conf.host);

	/* Block the shutdown signals in every thread; main waits for them. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	if (ci_app_start(&app, &conf, err, sizeof(err))) {
		ci_log(CI_LL_ERROR, "server.start_failed", "msg=\"%s\"", err);
		ci_conf_release(&conf);
		return 1;
	}
	sigwait(&sigs, &sig);
	ci_log(CI_LL_INFO, "server.stopping", "signal=%s", sig == SIGTERM ? "TERM" : "INT");
	ci_app_stop(&app, SHUTDOWN_GRACE_MS);
	ci_log(CI_LL_INFO, "server.stopped", NULL);
	ci_host_http_cleanup();
	ci_conf_release(&conf);
	return 0;
}

#define _GNU_SOURCE
#include "testutil.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include "conf.h"
#include "log.h"

static FILE *log_mem;
static char *log_buf;
static size_t log_len;

void log_start(void)
{
	log_stop();
	log_mem = open_memstream(&log_buf, &log_len);
	assert_non_null(log_mem);
	ci_log_set_stream(log_mem);
	ci_log_set_level(CI_LL_DEBUG);
}

void log_stop(void)
{
	ci_log_set_stream(NULL);
	ci_log_set_level(CI_LL_INFO);
	if (log_mem)
		fclose(log_mem);
	free(log_buf);
	log_mem = NULL;
	log_buf = NULL;
	log_len = 0;
}

const char *log_text(void)
{
	if (!log_mem)
		return "";
	fflush(log_mem);
	return log_buf ? log_buf : "";
}

bool log_line_has(const char *first, ...)
{
	const char *text = log_text(), *end;
	char line[4096];
	bool all;
	va_list ap;

	for (; *text; text = *end ? end + 1 : end) {
		end = strchrnul(text, '\n');
		snprintf(line, sizeof(line), "%.*s", (int)(end - text), text);
		all = true;
		va_start(ap, first);
		for (const char *s = first; s && all; s = va_arg(ap, const char *))
			all = strstr(line, s) != NULL;
		va_end(ap);
		if (all)
			return true;
	}
	return false;
}

void make_temp_dir(char *buf, size_t len, const char *tag)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(buf, len, "%s/ci-test-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", tag);
	assert_non_null(mkdtemp(buf));
}

void remove_tree(const char *path)
{
	char cmd[4200];

	if (!path || !*path || !strcmp(path, "/"))
		return;
	snprintf(cmd, sizeof(cmd), "chmod -R u+rwx '%s' 2>/dev/null; rm -rf '%s'", path, path);
	if (system(cmd) != 0)
		fprintf(stderr, "warning: cannot remove %s\n", path);
}

void copy_file(const char *src, const char *dst, unsigned mode)
{
	char buf[65536];
	ssize_t n;
	int in = open(src, O_RDONLY | O_CLOEXEC), out;

	assert_true(in >= 0);
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	assert_int_equal(n, 0);
	assert_int_equal(fchmod(out, mode), 0);
	close(in);
	close(out);
}

void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

char *read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;
	FILE *mem;
	int c;

	if (!f)
		return NULL;
	mem = open_memstream(&buf, &len);
	assert_non_null(mem);
	while ((c = fgetc(f)) != EOF)
		fputc(c, mem);
	fclose(f);
	fclose(mem);
	return buf;
}

void conf_from_text(struct ci_conf *conf, const char *text)
{
	char path[] = "/tmp/ci-test-conf-XXXXXX", err[512] = "";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	write_text(path, text);
	if (ci_conf_load(conf, path, err, sizeof(err)))
		fail_msg("conf: %s", err);
	unlink(path);
}

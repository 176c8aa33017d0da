#include "log.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum ci_log_level log_level = CI_LL_INFO;
static FILE *log_stream;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

void ci_log_set_level(enum ci_log_level level)
{
	log_level = level;
}

enum ci_log_level ci_log_get_level(void)
{
	return log_level;
}

int ci_log_parse_level(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (!strcmp(name, level_names[i]))
			return i;
	return -1;
}

void ci_log_set_stream(FILE *stream)
{
	pthread_mutex_lock(&log_lock);
	log_stream = stream;
	pthread_mutex_unlock(&log_lock);
}

void ci_logv(enum ci_log_level level, const char *event, const char *fmt, va_list ap)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t n;

	if (level > log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += snprintf(line + n, sizeof(line) - n, ".%03ldZ %s %s", ts.tv_nsec / 1000000,
		      level_names[level], event);
	if (fmt && *fmt && n < sizeof(line) - 1) {
		line[n++] = ' ';
		vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	}
	/* One line per event, whatever the message held. */
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	pthread_mutex_lock(&log_lock);
	fprintf(log_stream ? log_stream : stderr, "%s\n", line);
	fflush(log_stream ? log_stream : stderr);
	pthread_mutex_unlock(&log_lock);
}

void ci_log(enum ci_log_level level, const char *event, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ci_logv(level, event, fmt, ap);
	va_end(ap);
}

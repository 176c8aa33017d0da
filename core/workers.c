#include "workers.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct job {
	ci_job_fn fn;
	void *arg;
};

struct ci_workers {
	pthread_mutex_t lock;
	pthread_cond_t more; /* a job was queued, or stopping */
	pthread_cond_t idle; /* busy dropped to zero */
	struct job *ring;
	int depth, head, count, running;
	bool stopping;
	int n_threads;
	pthread_t *threads;
};

static void *worker_main(void *arg)
{
	struct ci_workers *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct job j;

		while (!w->count && !w->stopping)
			pthread_cond_wait(&w->more, &w->lock);
		if (!w->count)
			break;
		j = w->ring[w->head];
		w->head = (w->head + 1) % w->depth;
		w->count--;
		w->running++;
		pthread_mutex_unlock(&w->lock);
		j.fn(j.arg);
		pthread_mutex_lock(&w->lock);
		w->running--;
		if (!w->running && !w->count)
			pthread_cond_broadcast(&w->idle);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

struct ci_workers *ci_workers_new(int n, int depth)
{
	struct ci_workers *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->ring = calloc((size_t)depth, sizeof(*w->ring));
	w->threads = calloc((size_t)n, sizeof(*w->threads));
	if (!w->ring || !w->threads)
		goto out_free;
	w->depth = depth;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->more, NULL);
	pthread_cond_init(&w->idle, NULL);
	for (; w->n_threads < n; w->n_threads++)
		if (pthread_create(&w->threads[w->n_threads], NULL, worker_main, w))
			break;
	if (w->n_threads == n)
		return w;
	ci_workers_free(w);
	return NULL;
out_free:
	free(w->ring);
	free(w->threads);
	free(w);
	return NULL;
}

bool ci_workers_submit(struct ci_workers *w, ci_job_fn fn, void *arg)
{
	bool ok = false;

	pthread_mutex_lock(&w->lock);
	if (!w->stopping && w->count < w->depth) {
		w->ring[(w->head + w->count) % w->depth] = (struct job){fn, arg};
		w->count++;
		pthread_cond_signal(&w->more);
		ok = true;
	}
	pthread_mutex_unlock(&w->lock);
	return ok;
}

int ci_workers_busy(struct ci_workers *w)
{
	int n;

	pthread_mutex_lock(&w->lock);
	n = w->count + w->running;
	pthread_mutex_unlock(&w->lock);
	return n;
}

bool ci_workers_drain(struct ci_workers *w, int timeout_ms)
{
	struct timespec until;
	bool idle;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->lock);
	while (w->count + w->running > 0)
		if (pthread_cond_timedwait(&w->idle, &w->lock, &until) == ETIMEDOUT)
			break;
	idle = w->count + w->running == 0;
	pthread_mutex_unlock(&w->lock);
	return idle;
}

void ci_workers_free(struct ci_workers *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_broadcast(&w->more);
	pthread_mutex_unlock(&w->lock);
	for (int i = 0; i < w->n_threads; i++)
		pthread_join(w->threads[i], NULL);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->more);
	pthread_cond_destroy(&w->idle);
	free(w->ring);
	free(w->threads);
	free(w);
}

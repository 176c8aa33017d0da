/* The verified-token cache inside a key set: hits, hold time, eviction, threads. */
/* cmocka.h needs these first; keep the order. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jwt_test.h"

static struct ci_jwt_policy pol;

static struct ci_jwt_cache_stats stats(const struct ci_jwt_keys *k)
{
	struct ci_jwt_cache_stats st;

	ci_jwt_keys_cache_stats(k, &st);
	return st;
}

static double seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_hit(void **state)
{
	struct ci_jwt_keys *k = tj_pem_keys(64), *plain = tj_pem_keys(0);
	char *tok = tj_read("librechat-rs256.tok", NULL);
	struct ci_jwt_claims first, second;
	double t0, fresh, cached;

	(void)state;
	first = tj_expect(k, &pol, tok, tj_now, CI_JWT_OK, NULL);
	assert_int_equal(stats(k).misses, 1);
	assert_int_equal(stats(k).hits, 0);
	assert_int_equal(stats(k).entries, 1);
	second = tj_expect(k, &pol, tok, tj_now, CI_JWT_OK, NULL);
	assert_int_equal(stats(k).hits, 1);
	assert_memory_equal(&first, &second, sizeof(first));
	assert_string_equal(second.sub, "665f1c0a9b1e8a0012345678");
	assert_int_equal(second.alg, CI_JWT_RS256);
	/* For the record only; timings on a shared machine are not asserted. */
	t0 = seconds();
	for (int i = 0; i < 50; i++)
		tj_expect(plain, &pol, tok, tj_now, CI_JWT_OK, NULL);
	fresh = (seconds() - t0) / 50;
	t0 = seconds();
	for (int i = 0; i < 50; i++)
		tj_expect(k, &pol, tok, tj_now, CI_JWT_OK, NULL);
	cached = (seconds() - t0) / 50;
	assert_int_equal(stats(k).hits, 51);
	print_message("RS256 verify: %.1f us fresh, %.1f us from cache\n", fresh * 1e6,
		      cached * 1e6);
	free(tok);
	ci_jwt_keys_free(plain);
	ci_jwt_keys_free(k);
}

static void test_hit_rechecks_times(void **state)
{
	struct ci_jwt_keys *k = tj_pem_keys(64);
	char *tok = tj_read("librechat-eddsa.tok", NULL);

	(void)state;
	tj_expect(k, &pol, tok, tj_now, CI_JWT_OK, NULL); /* held until now + 60 */
	/* A hit still answers for the time asked about. */
	tj_expect(k, &pol, tok, tj_now - 61, CI_JWT_E_NOT_YET, "nbf");
	assert_int_equal(stats(k).hits, 1);
	tj_expect(k, &pol, tok, tj_now + 59, CI_JWT_OK, NULL);
	assert_int_equal(stats(k).hits, 2);
	/* Hold time over: verified afresh (still valid), held again. */
	tj_expect(k, &pol, tok, tj_now + 60, CI_JWT_OK, NULL);
	assert_int_equal(stats(k).hits, 2);
	assert_int_equal(stats(k).misses, 2);
	tj_expect(k, &pol, tok, tj_now + 100, CI_JWT_OK, NULL);
	assert_int_equal(stats(k).hits, 3);
	/* Past exp + skew it is refused, cached or not. */
	tj_expect(k, &pol, tok, tj_now + 360, CI_JWT_E_EXPIRED, "expired");
	tj_expect(k, &pol, tok, tj_now + 360, CI_JWT_E_EXPIRED, "expired");
	free(tok);
	ci_jwt_keys_free(k);
}

static void test_hold_capped_by_exp(void **state)
{
	struct ci_jwt_keys *k = tj_pem_keys(64);
	json_t *c = tj_claims(tj_now);
	struct ci_jwt_policy strict = pol;
	char *tok;

	(void)state;
	strict.clock_skew_s = 0;
	json_object_set_new(c, "exp", json_integer(tj_now + 10));
	tok = tj_mint(TJ_SIGN_ED25519, "ed.key", "EdDSA", TJ_KID_ED, c);
	tj_expect(k, &strict, tok, tj_now, CI_JWT_OK, NULL);
	tj_expect(k, &strict, tok, tj_now + 9, CI_JWT_OK, NULL);
	assert_int_equal(stats(k).hits, 1);
	tj_expect(k, &strict, tok, tj_now + 10, CI_JWT_E_EXPIRED, "expired");
	assert_int_equal(stats(k).hits, 1);
	free(tok);
	ci_jwt_keys_free(k);
}

static void test_policy_is_part_of_key(void **state)
{
	struct ci_jwt_keys *k = tj_pem_keys(64);
	char *tok = tj_read("librechat-eddsa.tok", NULL);
	struct ci_jwt_policy other = pol;

	(void)state;
	tj_expect(k, &pol, tok, tj_now, CI_JWT_OK, NULL);
	other.audience = "elsewhere";
	tj_expect(k, &other, tok, tj_now, CI_JWT_E_AUDIENCE, "audience");
	other = pol;
	other.max_lifetime_s = 299;
	tj_expect(k, &other, tok, tj_now, CI_JWT_E_LIFETIME, "lifetime");
	assert_int_equal(stats(k).hits, 0);
	tj_expect(k, &pol, tok, tj_now, CI_JWT_OK, NULL);
	assert_int_equal(stats(k).hits, 1);
	free(tok);
	ci_jwt_keys_free(k);
}

static void test_failures_not_cached(void **state)
{
	struct ci_jwt_keys *k = tj_pem_keys(64);
	char *tok = tj_read("librechat-eddsa.tok", NULL);

	(void)state;
	tok[strlen(tok) - 5] = tok[strlen(tok) - 5] == 'x' ? 'y' : 'x';
	for (int i = 0; i < 3; i++)
		tj_expect(k, &pol, tok, tj_now, CI_JWT_E_SIGNATURE, "signature");
	assert_int_equal(stats(k).hits, 0);
	assert_int_equal(stats(k).misses, 3);
	assert_int_equal(stats(k).entries, 0);
	free(tok);
	ci_jwt_keys_free(k);
}

static void test_eviction(void **state)
{
	struct ci_jwt_keys *k = tj_pem_keys(4);
	char *tok[12];

	(void)state;
	assert_int_equal(stats(k).capacity, 4);
	for (int i = 0; i < 12; i++) {
		tok[i] = tj_mint(TJ_SIGN_ED25519, "ed.key", "EdDSA", TJ_KID_ED, tj_claims(tj_now));
		tj_expect(k, &pol, tok[i], tj_now, CI_JWT_OK, NULL);
	}
	assert_int_equal(stats(k).entries, 4);
	assert_int_equal(stats(k).evictions, 8);
	/* Evicted or not, every token still verifies. */
	for (int i = 0; i < 12; i++) {
		tj_expect(k, &pol, tok[i], tj_now, CI_JWT_OK, NULL);
		free(tok[i]);
	}
	assert_int_equal(stats(k).entries, 4);
	ci_jwt_keys_free(k);
}

static void test_sizes(void **state)
{
	struct ci_jwt_keys *off = tj_pem_keys(0), *five = tj_pem_keys(5);
	char *tok = tj_read("librechat-eddsa.tok", NULL);

	(void)state;
	tj_expect(off, &pol, tok, tj_now, CI_JWT_OK, NULL);
	tj_expect(off, &pol, tok, tj_now, CI_JWT_OK, NULL);
	assert_int_equal(stats(off).capacity, 0);
	assert_int_equal(stats(off).hits + stats(off).misses, 0);
	assert_int_equal(stats(five).capacity, 8);
	free(tok);
	ci_jwt_keys_free(off);
	ci_jwt_keys_free(five);
}

#define N_TOKENS  16
#define N_THREADS 4

struct shared {
	struct ci_jwt_keys *keys;
	char *tok[N_TOKENS]; /* even: valid, odd: tampered */
	int wrong;
	pthread_mutex_t lock;
};

static void *worker(void *arg)
{
	struct shared *sh = arg;
	uint32_t rnd = (uint32_t)(uintptr_t)&rnd;
	struct ci_jwt_claims c;
	char why[256];

	for (int i = 0; i < 300; i++) {
		int n, rc;

		rnd = rnd * 1103515245u + 12345u;
		n = (int)((rnd >> 8) % N_TOKENS);
		rc = ci_jwt_verify(sh->keys, &pol, sh->tok[n], strlen(sh->tok[n]), tj_now, &c, why,
				   sizeof(why));
		if ((n % 2 == 0) != (rc == CI_JWT_OK) || (rc == 0 && strcmp(c.sub, "u1"))) {
			pthread_mutex_lock(&sh->lock);
			sh->wrong++;
			pthread_mutex_unlock(&sh->lock);
		}
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct shared sh = {.keys = tj_pem_keys(8), .lock = PTHREAD_MUTEX_INITIALIZER};
	pthread_t th[N_THREADS];

	(void)state;
	for (int i = 0; i < N_TOKENS; i++) {
		sh.tok[i] = tj_mint(i % 4 < 2 ? TJ_SIGN_ED25519 : TJ_SIGN_ES256,
				    i % 4 < 2 ? "ed.key" : "ec.key", i % 4 < 2 ? "EdDSA" : "ES256",
				    i % 4 < 2 ? TJ_KID_ED : TJ_KID_EC, tj_claims(tj_now));
		if (i % 2) {
			char *ch = &sh.tok[i][strlen(sh.tok[i]) - 6];

			*ch = *ch == 'x' ? 'y' : 'x';
		}
	}
	for (int i = 0; i < N_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, worker, &sh), 0);
	for (int i = 0; i < N_THREADS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(sh.wrong, 0);
	assert_true(stats(sh.keys).hits > 0);
	assert_int_equal(stats(sh.keys).hits + stats(sh.keys).misses, N_THREADS * 300);
	for (int i = 0; i < N_TOKENS; i++)
		free(sh.tok[i]);
	ci_jwt_keys_free(sh.keys);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit),
		cmocka_unit_test(test_hit_rechecks_times),
		cmocka_unit_test(test_hold_capped_by_exp),
		cmocka_unit_test(test_policy_is_part_of_key),
		cmocka_unit_test(test_failures_not_cached),
		cmocka_unit_test(test_eviction),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_threads),
	};

	tj_init(argc, argv);
	ci_jwt_policy_init(&pol);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Times stonith.h calls from C: N resets and N host lists of one device, each call timed
 * with CLOCK_MONOTONIC; prints the medians in microseconds. Compiled against libstonith or
 * libocf (-DUSE_OCF), the same source, to compare the two.
 *
 * Usage: reset_loop TYPE N HOST [NAME=VALUE ...]   (the device's configuration)
 *   cc -O2 reset_loop.c $(pkg-config --cflags --libs ocf) -DUSE_OCF -o reset_loop_ocf
 *   cc -O2 reset_loop.c -I/usr/include/heartbeat $(pkg-config --cflags --libs glib-2.0) \
 *      -lstonith -o reset_loop_glue
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef USE_OCF
#include <ocf/ocf.h>
#else
#include <stonith/stonith.h>
#endif

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), by_value);
	return v[n / 2];
}

int main(int argc, char **argv)
{
	if (argc < 4)
		return 64;
	int n = atoi(argv[2]);
	if (n < 1)
		return 64;
	const char *host = argv[3];
	int pairs = argc - 4;
	StonithNVpair *config = calloc(pairs + 1, sizeof(*config));
	for (int i = 0; i < pairs; i++) {
		char *eq = strchr(argv[4 + i], '=');
		if (eq == NULL)
			return 64;
		*eq = '\0';
		config[i].s_name = argv[4 + i];
		config[i].s_value = eq + 1;
	}
	Stonith *s = stonith_new(argv[1]);
	if (s == NULL || stonith_set_config(s, config) != S_OK) {
		fprintf(stderr, "cannot configure a %s device\n", argv[1]);
		return 1;
	}
	double *resets = calloc(n, sizeof(double)), *lists = calloc(n, sizeof(double));
	int failed = 0;
	for (int i = 0; i < n; i++) {
		double t0 = now_us();
		failed += stonith_req_reset(s, ST_GENERIC_RESET, host) != S_OK;
		double t1 = now_us();
		char **h = stonith_get_hostlist(s);
		double t2 = now_us();
		failed += h == NULL;
		stonith_free_hostlist(h);
		resets[i] = t1 - t0;
		lists[i] = t2 - t1;
	}
	printf("%s: reset median %.1f us, hostlist median %.1f us, %d failed, %d rounds\n",
	       argv[1], median(resets, n), median(lists, n), failed, n);
	stonith_delete(s);
	free(resets);
	free(lists);
	free(config);
	return failed ? 1 : 0;
}

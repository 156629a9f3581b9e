/*
 * A reset client written only against cluster-glue's stonith.h, compiled twice: against
 * Debian's libstonith and against ocf's libocf (-DUSE_OCF). Its output must be the same,
 * line for line, apart from the lines tagged "ocf-only" (bad pointers, which would crash
 * libstonith) and "stronger" (where ocf refuses what the null plugin accepts).
 *
 * Usage: reset_client TYPE CONFIG_FILE_PATH
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef USE_OCF
#include <ocf/ocf.h>
#else
#include <stonith/stonith.h>
#endif

static void print_hostlist(const char *what, Stonith *s)
{
	char **hosts = stonith_get_hostlist(s);
	printf("%s hostlist:", what);
	if (hosts == NULL) {
		printf(" NULL\n");
		return;
	}
	for (char **h = hosts; *h != NULL; h++)
		printf(" [%s]", *h);
	printf("\n");
	stonith_free_hostlist(hosts);
}

static const char *or_null(const char *s)
{
	return s == NULL ? "NULL" : s;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s TYPE CONFIG_FILE\n", argv[0]);
		return 64;
	}
	const char *type = argv[1];
	const char *config_file = argv[2];

	int found = 0;
	for (char **t = stonith_types(); t != NULL && *t != NULL; t++)
		if (strcmp(*t, type) == 0)
			found = 1;
	printf("types has %s: %d\n", type, found);
	printf("new bogus: %s\n", stonith_new("no-such-plugin") == NULL ? "NULL" : "handle");
	printf("new ../%s: %s\n", type, stonith_new("../null") == NULL ? "NULL" : "handle");

	Stonith *s = stonith_new(type);
	if (s == NULL) {
		printf("new %s: NULL\n", type);
		return 1;
	}
	printf("stype: %s\n", s->stype);
	const char *const *names = stonith_get_confignames(s);
	for (; names != NULL && *names != NULL; names++)
		printf("configname: %s\n", *names);
	printf("info deviceid: %s\n", or_null(stonith_get_info(s, ST_DEVICEID)));
	printf("info descr: %s\n", or_null(stonith_get_info(s, ST_DEVICEDESCR)));
	printf("info xml present: %d\n", stonith_get_info(s, ST_CONF_XML) != NULL);
	printf("info 99: %s\n", or_null(stonith_get_info(s, 99)));

	/* Unconfigured: every request is refused. */
	printf("unconfigured status: %d\n", stonith_get_status(s));
	print_hostlist("unconfigured", s);
	printf("unconfigured reset: %d\n", stonith_req_reset(s, ST_GENERIC_RESET, "a"));

	/* Bad configurations. */
	StonithNVpair empty[] = {{NULL, NULL}};
	printf("set nothing: %d\n", stonith_set_config(s, empty));
	StonithNVpair other[] = {{"ipaddr", "10.0.0.1"}, {NULL, NULL}};
	printf("set other name only: %d\n", stonith_set_config(s, other));
	StonithNVpair blank[] = {{"hostlist", ""}, {NULL, NULL}};
	printf("set blank hostlist: %d\n", stonith_set_config(s, blank));
	print_hostlist("after blank", s);
	StonithNVpair spaces[] = {{"hostlist", " ,\t "}, {NULL, NULL}};
	printf("set separators only: %d\n", stonith_set_config(s, spaces));

	/* A good one, with every separator and mixed case. */
	StonithNVpair good[] = {
		{"hostlist", "  Node1 NODE2,\tn3\n\r\fn4,,  "},
		{"ipaddr", "ignored"},
		{NULL, NULL}};
	printf("set good: %d\n", stonith_set_config(s, good));
	print_hostlist("good", s);
	printf("status: %d\n", stonith_get_status(s));
	printf("reset Node1: %d\n", stonith_req_reset(s, ST_GENERIC_RESET, "Node1"));
	printf("poweron n3: %d\n", stonith_req_reset(s, ST_POWERON, "n3"));
	printf("poweroff N4: %d\n", stonith_req_reset(s, ST_POWEROFF, "N4"));
	printf("reset unlisted zz: %d\n", stonith_req_reset(s, ST_GENERIC_RESET, "zz"));
	printf("stronger: reset op 0: %d\n", stonith_req_reset(s, 0, "n3"));
	printf("stronger: reset op 4: %d\n", stonith_req_reset(s, 4, "n3"));
	printf("set good again: %d\n", stonith_set_config(s, good));
	print_hostlist("again", s);
	stonith_delete(s);

	/* The -p style string. */
	s = stonith_new(type);
	printf("set info: %d\n", stonith_set_config_info(s, "a B c"));
	print_hostlist("info", s);
	stonith_delete(s);

	/* The -F style file. */
	s = stonith_new(type);
	printf("set file: %d\n", stonith_set_config_file(s, config_file));
	print_hostlist("file", s);
	stonith_delete(s);
	s = stonith_new(type);
	printf("set missing file: %d\n", stonith_set_config_file(s, "/nonexistent/stonith.cfg"));
	stonith_delete(s);

	/* The -E style environment. */
	s = stonith_new(type);
	unsetenv("hostlist");
	StonithNVpair *none = stonith_env_to_NVpair(s);
	printf("env without hostlist: %s\n", none == NULL ? "NULL" : "pairs");
	if (none != NULL) {
		for (StonithNVpair *p = none; p->s_name != NULL; p++)
			printf("env pair: %s=%s\n", p->s_name, or_null(p->s_value));
		free_NVpair(none);
	}
	setenv("hostlist", "e1 E2", 1);
	StonithNVpair *pairs = stonith_env_to_NVpair(s);
	for (StonithNVpair *p = pairs; p != NULL && p->s_name != NULL; p++)
		printf("env pair: %s=%s\n", p->s_name, p->s_value);
	printf("set env: %d\n", stonith_set_config(s, pairs));
	free_NVpair(pairs);
	print_hostlist("env", s);
	stonith_delete(s);

	char word[] = "MiXeD-Case_1";
	strdown(word);
	printf("strdown: %s\n", word);

#ifdef USE_OCF
	/* What would crash libstonith is an error here. */
	printf("ocf-only: status NULL: %d\n", stonith_get_status(NULL));
	printf("ocf-only: reset NULL: %d\n", stonith_req_reset(NULL, ST_GENERIC_RESET, "a"));
	printf("ocf-only: hostlist NULL: %s\n", stonith_get_hostlist(NULL) == NULL ? "NULL" : "list");
	s = stonith_new(type);
	printf("ocf-only: set NULL list: %d\n", stonith_set_config(s, NULL));
	StonithNVpair nullvalue[] = {{"hostlist", NULL}, {NULL, NULL}};
	printf("ocf-only: set NULL value: %d\n", stonith_set_config(s, nullvalue));
	StonithNVpair path[] = {{"hostlist", "a"}, {"PATH", "/tmp"}, {NULL, NULL}};
	printf("ocf-only: set PATH: %d\n", stonith_set_config(s, path));
	printf("ocf-only: set good: %d\n", stonith_set_config(s, good));
	printf("ocf-only: reset NULL node: %d\n", stonith_req_reset(s, ST_GENERIC_RESET, NULL));
	printf("ocf-only: info NULL handle: %s\n", or_null(stonith_get_info(NULL, ST_DEVICEID)));
	printf("ocf-only: new NULL: %s\n", stonith_new(NULL) == NULL ? "NULL" : "handle");
	Stonith fake = {"null"};
	printf("ocf-only: foreign handle status: %d\n", stonith_get_status(&fake));
	stonith_free_hostlist(NULL);
	free_NVpair(NULL);
	stonith_delete(NULL);
	stonith_delete(&fake);
	stonith_delete(s);
	printf("ocf-only: last error set: %d\n", ocf_last_error()[0] != '\0');
#endif
	return 0;
}

/*
 * Type "ocf": the local node's cluster fencer, from C. Prints the host list and the status,
 * then asks for one reset of the node named on the command line (its name in capitals, to
 * show it is lower-cased) and prints the code.
 *
 * Usage: reset_race SOCKET NODE
 */
#include <stdio.h>
#include <ocf/ocf.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s SOCKET NODE\n", argv[0]);
		return 64;
	}
	Stonith *s = stonith_new("ocf");
	if (s == NULL) {
		printf("new: NULL %s\n", ocf_last_error());
		return 1;
	}
	StonithNVpair config[] = {
		{"socket", argv[1]}, {"requester", "c-client@n1"}, {"timeout", "60"}, {NULL, NULL}};
	printf("set: %d\n", stonith_set_config(s, config));
	printf("status: %d\n", stonith_get_status(s));
	char **hosts = stonith_get_hostlist(s);
	printf("hostlist:");
	for (char **h = hosts; h != NULL && *h != NULL; h++)
		printf(" %s", *h);
	printf("\n");
	stonith_free_hostlist(hosts);
	fflush(stdout);
	int rc = stonith_req_reset(s, ST_GENERIC_RESET, argv[2]);
	printf("reset: %d\n", rc);
	if (rc != S_OK)
		printf("why: %s\n", ocf_last_error());
	printf("reset unknown: %d\n", stonith_req_reset(s, ST_GENERIC_RESET, "nosuchnode"));
	stonith_delete(s);
	return rc == S_OK ? 0 : 1;
}

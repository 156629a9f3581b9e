/*
 * Against a "node" that accepts and hangs up at once: every call must fail with a code,
 * never kill this program (a C host keeps SIGPIPE's default action, which would).
 *
 * Usage: hangup_client SOCKET ROUNDS
 */
#include <stdio.h>
#include <stdlib.h>
#include <ocf/ocf.h>

static void never(oc_ed_t event, void *cookie, size_t size, const void *data)
{
	(void)event; (void)size; (void)data;
	oc_ev_callback_done(cookie);
	abort(); /* no event can come from a node that hangs up */
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return 64;
	int rounds = atoi(argv[2]);
	Stonith *s = stonith_new("ocf");
	StonithNVpair config[] = {{"socket", argv[1]}, {"timeout", "5"}, {NULL, NULL}};
	if (s == NULL || stonith_set_config(s, config) != S_OK)
		return 1;
	int ok = 0, access = 0, other = 0;
	for (int i = 0; i < rounds; i++) {
		int rc = i % 2 ? stonith_get_status(s) : stonith_req_reset(s, ST_GENERIC_RESET, "n1");
		if (rc == S_OK)
			ok++;
		else if (rc == S_ACCESS)
			access++;
		else
			other++;
	}
	stonith_delete(s);
	int activations_failed = 0;
	for (int i = 0; i < rounds / 10; i++) {
		oc_ev_t *token;
		int fd;
		oc_ev_callback_t *cb = NULL;
		oc_ev_register(&token);
		oc_ev_set_callback(token, OC_EV_MEMB_CLASS, never, &cb);
		if (oc_ev_activate(token, &fd) != 0)
			activations_failed++;
		oc_ev_unregister(token);
	}
	printf("ok=%d access=%d other=%d activations_failed=%d\n", ok, access, other,
	       activations_failed);
	return 0;
}

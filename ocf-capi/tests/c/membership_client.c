/*
 * A membership client written only against oc_event.h, as a CCM client of 2002 was: it
 * registers, sets its callback, activates, and lets its own select() loop drive
 * oc_ev_handle_event(). Each event is printed as one line:
 *
 *   EV <name> instance=<I> members=<id:uname:born_on,...> in=<ids> out=<ids> me=<id>
 *
 * then "END <last error>" once the class has ended (the node went away).
 *
 * Usage: membership_client [--unregister-after N]
 *   --unregister-after N   unregister inside the N-th callback and exit (tests that
 *                          oc_ev_unregister is safe there and frees everything).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <ocf/ocf.h>

static oc_ev_t *token;
static int unregister_after = -1;
static int callbacks;
static int unregistered;

static const char *event_name(oc_ed_t event)
{
	switch (event) {
	case OC_EV_MS_NEW_MEMBERSHIP: return "NEW_MEMBERSHIP";
	case OC_EV_MS_NOT_PRIMARY: return "NOT_PRIMARY";
	case OC_EV_MS_PRIMARY_RESTORED: return "PRIMARY_RESTORED";
	case OC_EV_MS_EVICTED: return "EVICTED";
	case OC_EV_MS_INVALID: return "INVALID";
	default: return "UNKNOWN";
	}
}

static void print_ids(const char *label, const oc_ev_membership_t *m, unsigned int idx,
		      unsigned int n)
{
	printf(" %s=", label);
	for (unsigned int i = 0; i < n; i++)
		printf("%s%u", i ? "," : "", m->m_array[idx + i].node_id);
}

static void membership_cb(oc_ed_t event, void *cookie, size_t size, const void *data)
{
	callbacks++;
	printf("EV %s", event_name(event));
	if (data != NULL) {
		const oc_ev_membership_t *m = data;
		size_t need = sizeof(*m) + sizeof(oc_node_t) *
			((m->m_n_member + m->m_n_out + m->m_n_in) - 1);
		if (size < need)
			printf(" SHORT-PAYLOAD");
		printf(" instance=%u members=", m->m_instance);
		int me = -1;
		for (unsigned int i = 0; i < m->m_n_member; i++) {
			const oc_node_t *n = &m->m_array[m->m_memb_idx + i];
			printf("%s%u:%s:%u", i ? "," : "", n->node_id, n->node_uname, n->node_born_on);
			if (oc_ev_is_my_nodeid(token, n))
				me = (int)n->node_id;
		}
		print_ids("in", m, m->m_in_idx, m->m_n_in);
		print_ids("out", m, m->m_out_idx, m->m_n_out);
		printf(" me=%d", me);
	}
	printf("\n");
	fflush(stdout);
	if (callbacks == unregister_after) {
		/* Unregistering here must be safe; the payload stays valid until we return. */
		if (oc_ev_unregister(token) != 0)
			printf("UNREGISTER-FAILED %s\n", ocf_last_error());
		unregistered = 1;
		return;
	}
	oc_ev_callback_done(cookie);
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--unregister-after") == 0)
		unregister_after = atoi(argv[2]);

	int rc = oc_ev_register(&token);
	if (rc != 0) {
		printf("REGISTER %d %s\n", rc, ocf_last_error());
		return 2;
	}
	int fd = -1;
	rc = oc_ev_activate(token, &fd);
	if (rc != EMFILE) {
		printf("ACTIVATE-WITHOUT-CALLBACK %d\n", rc);
		return 2;
	}
	oc_ev_callback_t *prev = NULL;
	oc_ev_set_callback(token, OC_EV_MEMB_CLASS, membership_cb, &prev);
	if (oc_ev_set_callback(token, OC_EV_GROUP_CLASS, membership_cb, NULL) != EINVAL) {
		printf("GROUP-CLASS-ACCEPTED\n");
		return 2;
	}
	rc = oc_ev_activate(token, &fd);
	if (rc != 0) {
		printf("ACTIVATE %d %s\n", rc, ocf_last_error());
		fflush(stdout);
		oc_ev_unregister(token);
		return 3;
	}
	printf("ACTIVE\n");
	fflush(stdout);
	for (;;) {
		fd_set readable;
		FD_ZERO(&readable);
		FD_SET(fd, &readable);
		struct timeval tick = {1, 0};
		int n = select(fd + 1, &readable, NULL, NULL, &tick);
		if (n < 0 && errno != EINTR) {
			perror("select");
			return 4;
		}
		if (n <= 0)
			continue;
		if (oc_ev_handle_event(token) != 0) {
			if (unregistered)
				return 0;
			printf("END %s\n", ocf_last_error());
			fflush(stdout);
			oc_ev_unregister(token);
			return 0;
		}
		if (unregistered)
			return 0;
	}
}

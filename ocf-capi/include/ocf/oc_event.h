/*
 * ocf/oc_event.h - the OCF event API 0.2 (membership), served by ocf.
 *
 * Source-compatible with the oc_event.h of heartbeat's CCM: the same types, constants and
 * functions. Link with -locf (pkg-config --cflags --libs ocf). The library talks to the
 * local `ocf node`, found through OCF_SOCKET (a socket), else OCF_NODE_CONFIG (a node.toml),
 * else /etc/ocf/node.toml, else the one socket under /run/ocf; ocf_last_error() (ocf/ocf.h)
 * says why a call failed.
 *
 * Where ocf is stronger than CCM: views are agreed (every node that installs instance V
 * holds the same members) and delivered in the node's order without gaps; the payload's
 * "in" and "out" are relative to the membership this client was last given.
 */
#ifndef OCF_OC_EVENT_H
#define OCF_OC_EVENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A client's token (CCM's was an int; use it only through these functions). */
typedef int oc_ev_t;

/* An event descriptor: the class in the top 10 bits, the event in the low 22. */
typedef uint32_t oc_ed_t;

#define OC_EV_CLASS_SHIFT 22
#define OC_EV_EVENT_SHIFT 10
#define OC_EV_EVENT_MASK (~(~((unsigned int)0) << OC_EV_CLASS_SHIFT))
#define OC_EV_GET_CLASS(ed) ((unsigned int)(ed) >> OC_EV_CLASS_SHIFT)
#define OC_EV_GET_EVENT(ed) ((unsigned int)(ed) & OC_EV_EVENT_MASK)
#define OC_EV_SET_CLASS(cl, ev) ((cl) << OC_EV_CLASS_SHIFT | ((ev) & OC_EV_EVENT_MASK))

typedef enum {
	OC_EV_CONN_CLASS = 1,   /* connectivity (not served) */
	OC_EV_MEMB_CLASS,       /* node membership */
	OC_EV_GROUP_CLASS       /* group messaging (not served) */
} oc_ev_class_t;

typedef enum {
	OC_EV_CS_INVALID = OC_EV_SET_CLASS(OC_EV_CONN_CLASS, 0),
	OC_EV_CS_INTERFACE,
	OC_EV_CS_ELIGIBLE,
	OC_EV_CS_CONNECT
} oc_conn_event_t;

/*
 * Membership events.
 *   NEW_MEMBERSHIP    a membership with quorum (data: the membership)
 *   NOT_PRIMARY       quorum lost (data: the last membership given, no longer valid)
 *   PRIMARY_RESTORED  quorum regained (data: the new membership)
 *   EVICTED           this node was removed or lost its engine (data: NULL)
 *   INVALID           a membership without quorum, only after oc_ev_special()
 */
typedef enum {
	OC_EV_MS_INVALID = OC_EV_SET_CLASS(OC_EV_MEMB_CLASS, 0),
	OC_EV_MS_NEW_MEMBERSHIP,
	OC_EV_MS_NOT_PRIMARY,
	OC_EV_MS_PRIMARY_RESTORED,
	OC_EV_MS_EVICTED
} oc_memb_event_t;

typedef enum {
	OC_EV_GS_INVALID = OC_EV_SET_CLASS(OC_EV_GROUP_CLASS, 0),
	OC_EV_GS_JOIN,
	OC_EV_GS_LEAVE,
	OC_EV_GS_CAST,
	OC_EV_GS_REPLY
} oc_group_event_t;

/* One node: its name, its id, and the instance of the view it joined in (0 if unknown). */
typedef struct oc_node_s {
	char *node_uname;
	unsigned int node_id;
	unsigned int node_born_on;
} oc_node_t;

/*
 * A membership. m_array holds the members (oldest first: by born_on, then id), then the
 * nodes that left, then the nodes that joined; each group is found by its count and index.
 */
typedef struct oc_ev_membership_s {
	unsigned int m_instance;   /* the view's instance number */
	unsigned int m_n_member;
	unsigned int m_memb_idx;
	unsigned int m_n_out;
	unsigned int m_out_idx;
	unsigned int m_n_in;
	unsigned int m_in_idx;
	oc_node_t m_array[1];
} oc_ev_membership_t;

/* A callback: the event, a cookie for oc_ev_callback_done(), and the payload. */
typedef void oc_ev_callback_t(oc_ed_t event, void *cookie, size_t size, const void *data);

/* A new client token in *token. 0, or an errno value. */
int oc_ev_register(oc_ev_t **token);

/* Ends the client: its connection closed, its payloads freed. Safe inside a callback. */
int oc_ev_unregister(oc_ev_t *token);

/* Sets the callback of a class (only OC_EV_MEMB_CLASS); the previous one in *prev_fn. */
int oc_ev_set_callback(const oc_ev_t *token, oc_ev_class_t class_, oc_ev_callback_t *fn,
		       oc_ev_callback_t **prev_fn);

/* CCM's extension: memberships without quorum are delivered too, as OC_EV_MS_INVALID. */
int oc_ev_special(const oc_ev_t *token, oc_ev_class_t class_, int type);

/*
 * Connects to the local node and subscribes; *fd is the descriptor to poll. EMFILE when no
 * callback is set, ENOENT when no node could be found, the connection's errno when the node
 * does not answer.
 */
int oc_ev_activate(const oc_ev_t *token, int *fd);

/*
 * Call when the descriptor is readable: delivers what arrived, one callback per event, each
 * after the previous one's oc_ev_callback_done(). 0, or -1 once the node is gone (a clean
 * stop or a crash: the class has ended) or for a bad token.
 */
int oc_ev_handle_event(const oc_ev_t *token);

/* Ends a callback's processing: its payload is freed, the next event may come. */
int oc_ev_callback_done(void *cookie);

/* 1 when node is the local node, else 0. */
int oc_ev_is_my_nodeid(const oc_ev_t *token, const oc_node_t *node);

#ifdef __cplusplus
}
#endif

#endif /* OCF_OC_EVENT_H */

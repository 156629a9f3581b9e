/*
 * ocf/stonith.h - cluster-glue's reset service (STONITH), served by ocf.
 *
 * Source-compatible with cluster-glue's public functions. Link with -locf
 * (pkg-config --cflags --libs ocf).
 *
 * Device types: "ocf", the local node's cluster fencer (a reset merges with every other
 * request for that node into one device action; the host list is what the node's devices
 * can fence), and every cluster-glue plugin type (`stonith -L`), run through the `stonith`
 * command with the same answers as libstonith. Return codes are cluster-glue's; the guide's
 * "From C" chapter has the table of how the fencer's answers map onto them.
 *
 * Not provided (they need glib or PILS): stonith_ghash_to_NVpair and StonithPIsys.
 */
#ifndef OCF_STONITH_H
#define OCF_STONITH_H

#ifdef __cplusplus
extern "C" {
#endif

#define STONITH_VERS 2

/* Return codes. */
#define S_OK        0   /* done */
#define S_BADCONFIG 1   /* bad configuration */
#define S_ACCESS    2   /* the device (or the node's fencer) cannot be reached */
#define S_INVAL     3   /* a bad argument, or the device is not configured */
#define S_BADHOST   4   /* a bad or unknown host name */
#define S_RESETFAIL 5   /* the reset failed */
#define S_TIMEOUT   6   /* timed out */
#define S_ISOFF     7   /* cannot reboot: the outlet is off */
#define S_OOPS      8   /* something strange happened */

/* What the host sees of a device. */
typedef struct stonith {
	char *stype;
} Stonith;

/* A configuration name and value; an array ends with a NULL s_name. */
typedef struct {
	char *s_name;
	char *s_value;
} StonithNVpair;

/* Operations of stonith_req_reset(). */
#define ST_GENERIC_RESET 1
#define ST_POWERON       2
#define ST_POWEROFF      3

/* Kinds of information of stonith_get_info(). */
#define ST_CONF_XML    1
#define ST_DEVICEID    2
#define ST_DEVICENAME  3
#define ST_DEVICEDESCR 4
#define ST_DEVICEURL   5

/* cluster-glue's log function type (PILLogLevel is an int-sized enum). */
typedef void (*PILLogFun)(int priority, const char *fmt, ...);

/* Every type ("ocf" first): NULL-terminated, valid until the next call; do not free. */
char **stonith_types(void);
/* A device of a type, or NULL when no such type exists. */
Stonith *stonith_new(const char *type);
void stonith_delete(Stonith *s);

/* The configuration names (NULL-terminated, owned by the device). */
const char *const *stonith_get_confignames(Stonith *s);
/* Information owned by the device, or NULL. */
const char *stonith_get_info(Stonith *s, int infotype);

void stonith_set_debug(Stonith *s, int debuglevel);
void stonith_set_log(Stonith *s, PILLogFun log);

/* Configuration; required before status, host list and reset (else S_INVAL). */
int stonith_set_config(Stonith *s, StonithNVpair *list);
int stonith_set_config_file(Stonith *s, const char *configname);
int stonith_set_config_info(Stonith *s, const char *info);

/* The hosts the device can reset, lower-cased; NULL on failure. */
char **stonith_get_hostlist(Stonith *s);
void stonith_free_hostlist(char **hostlist);
int stonith_get_status(Stonith *s);
/* Resets, powers on or off a node (its name lower-cased first). */
int stonith_req_reset(Stonith *s, int operation, const char *node);

/* Pairs from the environment or a -p string; free them with free_NVpair(). */
StonithNVpair *stonith_env_to_NVpair(Stonith *s);
StonithNVpair *stonith1_compat_string_to_NVpair(Stonith *s, const char *str);
void free_NVpair(StonithNVpair *pairs);
/* Lower-cases a string in place. */
void strdown(char *str);

#ifdef __cplusplus
}
#endif

#endif /* OCF_STONITH_H */

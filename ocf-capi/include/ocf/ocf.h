/*
 * ocf/ocf.h - the OCF C APIs served by ocf: membership events (oc_event.h) and the reset
 * service (stonith.h), plus the library's own error text.
 */
#ifndef OCF_OCF_H
#define OCF_OCF_H

#include <ocf/oc_event.h>
#include <ocf/stonith.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Why the last call into the library failed on this thread (which node socket it tried and
 * how it found it, what the node answered, which argument was wrong). Never NULL; valid
 * until this thread's next call into the library.
 */
const char *ocf_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* OCF_OCF_H */

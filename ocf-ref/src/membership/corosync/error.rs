//! Turning Corosync library failures into [`MembershipError`]s that say what to do.

use std::time::Duration;

use ocf_membership::MembershipError;

use super::ffi::{CsError, code};

/// The engine name in every error.
pub(crate) const ENGINE: &str = "corosync";

/// The membership error for a failed Corosync call.
pub(crate) fn membership_error(e: CsError, try_again_bound: Duration) -> MembershipError {
    let error = match e.code() {
        None | Some(code::LIBRARY | code::BAD_HANDLE) => MembershipError::unavailable(
            ENGINE,
            format!(
                "{e}: cannot reach corosync over its local IPC; is corosync running on this node \
                 (`systemctl status corosync`, `corosync-quorumtool -s`)?"
            ),
        ),
        Some(code::ACCESS | code::SECURITY) => MembershipError::permission_denied(
            ENGINE,
            format!(
                "{e}: corosync refused uid {} gid {}; run as root, or allow this user or group \
                 in corosync.conf with `uidgid {{ uid: USER }}` or `uidgid {{ gid: GROUP }}` (or a \
                 file in /etc/corosync/uidgid.d/) and reload with `corosync-cfgtool -R`",
                nix::unistd::getuid(),
                nix::unistd::getgid(),
            ),
        ),
        Some(code::TRY_AGAIN) => MembershipError::unavailable(
            ENGINE,
            format!(
                "{e}: corosync stayed busy for {try_again_bound:?} (it is probably synchronizing \
                 a membership change); try again later"
            ),
        ),
        Some(_) => MembershipError::protocol(ENGINE, e.to_string()),
    };
    error.with_cause(e)
}

//! cluster-glue's return codes, and how the cluster fencer's answers map onto them.
//!
//! | ocf's answer ([`FenceError`])                                   | code          |
//! |------------------------------------------------------------------|---------------|
//! | fenced (`Ok`)                                                    | `S_OK`        |
//! | `NoDevice`, `NotATarget`; a name that is not a node name         | `S_BADHOST`   |
//! | `Failed`, `Device`, `Refused` (by policy)                        | `S_RESETFAIL` |
//! | `TimedOut`, `DeviceTimedOut`                                     | `S_TIMEOUT`   |
//! | `NotQuorate`, `Unavailable`; the node does not answer            | `S_ACCESS`    |
//! | `Config`, `Topology`, `BadParameter`, `Metadata`, device ids     | `S_BADCONFIG` |
//! | `Unsupported`, `NotImplemented`; an operation outside 1–3        | `S_INVAL`     |
//! | anything else (`Lagged`, a reply that cannot be read)            | `S_OOPS`      |
//!
//! `S_ISOFF` is never answered by type `ocf` (the fencer does not report an outlet that is
//! off as a failure of its own); cluster-glue plugins answer it through their exit code.

use std::ffi::c_int;

use ocf_fencing::FenceError;

/// The machine was reset (or the request done).
pub const S_OK: c_int = 0;
/// Bad configuration.
pub const S_BADCONFIG: c_int = 1;
/// The device cannot be reached (login or password problem?).
pub const S_ACCESS: c_int = 2;
/// A bad or illegal argument.
pub const S_INVAL: c_int = 3;
/// A bad or unknown host name.
pub const S_BADHOST: c_int = 4;
/// The reset failed.
pub const S_RESETFAIL: c_int = 5;
/// Timed out talking to the device.
pub const S_TIMEOUT: c_int = 6;
/// Cannot reboot: the outlet is off.
pub const S_ISOFF: c_int = 7;
/// Something strange happened.
pub const S_OOPS: c_int = 8;

/// `ST_GENERIC_RESET`: reset the machine any way you can.
pub const ST_GENERIC_RESET: c_int = 1;
/// `ST_POWERON`.
pub const ST_POWERON: c_int = 2;
/// `ST_POWEROFF`.
pub const ST_POWEROFF: c_int = 3;

/// `ST_CONF_XML`: the configuration parameters, as XML.
pub const ST_CONF_XML: c_int = 1;
/// `ST_DEVICEID`: the device type.
pub const ST_DEVICEID: c_int = 2;
/// `ST_DEVICENAME`: this device (after configuration).
pub const ST_DEVICENAME: c_int = 3;
/// `ST_DEVICEDESCR`: a description.
pub const ST_DEVICEDESCR: c_int = 4;
/// `ST_DEVICEURL`: the maker's web site.
pub const ST_DEVICEURL: c_int = 5;

/// The code for a fencer's error (the table above).
///
/// ```
/// use ocf::stonith::codes::{S_BADHOST, S_ACCESS, code_of};
/// use ocf_fencing::FenceError;
/// assert_eq!(code_of(&FenceError::NoDevice { target: "n9".parse().unwrap() }), S_BADHOST);
/// assert_eq!(code_of(&FenceError::unavailable("down")), S_ACCESS);
/// ```
pub fn code_of(e: &FenceError) -> c_int {
    match e {
        FenceError::NoDevice { .. } | FenceError::NotATarget { .. } => S_BADHOST,
        FenceError::Failed { .. } | FenceError::Device { .. } | FenceError::Refused { .. } => {
            S_RESETFAIL
        }
        FenceError::TimedOut { .. } | FenceError::DeviceTimedOut { .. } => S_TIMEOUT,
        FenceError::NotQuorate { .. } | FenceError::Unavailable { .. } => S_ACCESS,
        FenceError::Config { .. }
        | FenceError::Topology { .. }
        | FenceError::BadParameter { .. }
        | FenceError::Metadata { .. }
        | FenceError::DuplicateDevice { .. }
        | FenceError::UnknownDevice { .. } => S_BADCONFIG,
        FenceError::Unsupported { .. } | FenceError::NotImplemented { .. } => S_INVAL,
        _ => S_OOPS,
    }
}

/// The code a `stonith` exit status stands for (its exit code is the plugin's answer; a
/// signal or a code outside 0–8 is `S_OOPS`).
pub fn code_of_exit(code: Option<i32>) -> c_int {
    match code {
        Some(c @ 0..=8) => c,
        _ => S_OOPS,
    }
}

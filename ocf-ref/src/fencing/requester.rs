//! How ocf's own tools name themselves as fence requesters: `<role>@<this host>`.

use ocf_fencing::RequesterId;

/// `<role>@<this host>` (the kernel's host name), or `<role>@localhost` when the host name
/// does not make an id, or `<role>` alone; `role` is one of ocf's own words (`operator`,
/// `power`, `stonith`).
///
/// ```
/// let r = ocf_ref::fencing::requester::on_this_host("operator");
/// assert!(r.as_str().starts_with("operator@"));
/// ```
pub fn on_this_host(role: &str) -> RequesterId {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    RequesterId::new(format!("{role}@{host}"))
        .or_else(|_| RequesterId::new(format!("{role}@localhost")))
        .or_else(|_| RequesterId::new(role))
        .unwrap_or_else(|_| fallback())
}

#[allow(clippy::expect_used)] // a constant that is a valid id
fn fallback() -> RequesterId {
    RequesterId::new("ocf").expect("a valid constant id")
}

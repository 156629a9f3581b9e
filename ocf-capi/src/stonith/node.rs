//! Type `ocf`: the reset service of the local `ocf node`, through its cluster fencer. A reset
//! from a C program is one more request for that node's incident: merged with every other
//! request for the same node and action, from any client on any node, into one device action.
//!
//! Configuration (all optional; unknown names are ignored, as cluster-glue ignores them):
//! `socket` (the node's socket), `config` (its `node.toml`), `requester` (who asks, default
//! `stonith@<host>`), `timeout` (seconds to wait for a reset's outcome, 1–600, default 120).
//! Without `socket` or `config` the node is located as [`crate::locate()`] describes.

use std::ffi::c_int;
use std::path::PathBuf;
use std::time::Duration;

use ocf_core::NodeName;
use ocf_fencing::{FenceAction, FenceRequest, HistoryFilter, RequesterId};
use ocf_ref::membership::daemon::local_api::{
    FENCE_REPLY_GRACE, FENCE_TARGETS_TIMEOUT, FenceReply, MAX_FENCE_TIMEOUT, Request,
};

use super::codes::{S_ACCESS, S_BADCONFIG, S_BADHOST, S_INVAL, S_OK, S_OOPS, S_TIMEOUT, code_of};
use crate::last_error;
use crate::wire::{Conn, DEFAULT_TIMEOUT, WireError};

/// The type name.
pub const TYPE: &str = "ocf";
/// The configuration names type `ocf` takes.
pub const CONFIG_NAMES: [&str; 4] = ["socket", "config", "requester", "timeout"];
/// How long a reset waits for its outcome by default.
pub const DEFAULT_RESET_TIMEOUT: Duration = Duration::from_secs(120);

/// Type `ocf`'s description (`ST_DEVICEDESCR`).
pub const DESCRIPTION: &str = "The cluster fencer of the local ocf node: a reset goes to the node's fencer, which \
     merges every request for the same node and action, from any client on any node, into one \
     device action, and answers each requester with the one outcome.";
/// Type `ocf`'s parameters (`ST_CONF_XML`).
pub const PARAMETERS_XML: &str = r#"<parameters>
<parameter name="socket" unique="0" required="0"><content type="string"/><shortdesc lang="en">The node's socket</shortdesc></parameter>
<parameter name="config" unique="0" required="0"><content type="string"/><shortdesc lang="en">The node's node.toml</shortdesc></parameter>
<parameter name="requester" unique="0" required="0"><content type="string"/><shortdesc lang="en">Who asks (default stonith@HOST)</shortdesc></parameter>
<parameter name="timeout" unique="0" required="0"><content type="integer" default="120"/><shortdesc lang="en">Seconds a reset may take (1-600)</shortdesc></parameter>
</parameters>"#;

/// A configured `ocf` device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSettings {
    socket: Option<PathBuf>,
    config: Option<PathBuf>,
    requester: RequesterId,
    timeout: Duration,
}

impl NodeSettings {
    /// The settings `pairs` give, or `S_BADCONFIG` saying which value is wrong.
    pub fn from_pairs(pairs: &[(String, Option<String>)]) -> Result<Self, c_int> {
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, v)| v.as_deref())
        };
        let bad = |name: &str, why: &str| {
            last_error::set(format!("stonith_set_config (ocf): {name}: {why}"));
            S_BADCONFIG
        };
        let path = |name: &str| match get(name) {
            Some("") => Err(bad(name, "empty")),
            Some(p) => Ok(Some(PathBuf::from(p))),
            None => Ok(None),
        };
        let requester = match get("requester") {
            Some(r) => RequesterId::new(r).map_err(|e| bad("requester", &e.to_string()))?,
            None => ocf_ref::fencing::requester::on_this_host("stonith"),
        };
        let max = MAX_FENCE_TIMEOUT.as_secs();
        let timeout = match get("timeout") {
            Some(t) => match t.trim().parse::<u64>() {
                Ok(s) if (1..=max).contains(&s) => Duration::from_secs(s),
                _ => {
                    return Err(bad(
                        "timeout",
                        &format!("not a number of seconds in 1-{max}"),
                    ));
                }
            },
            None => DEFAULT_RESET_TIMEOUT,
        };
        Ok(Self {
            socket: path("socket")?,
            config: path("config")?,
            requester,
            timeout,
        })
    }

    /// The node's socket, as located now.
    pub fn located(&self) -> Result<crate::Located, String> {
        crate::locate(self.socket.as_deref(), self.config.as_deref()).map_err(|e| e.to_string())
    }

    fn connect(&self) -> Result<Conn, c_int> {
        let at = self.located().map_err(|e| {
            last_error::set(format!("stonith (ocf): {e}"));
            S_ACCESS
        })?;
        Conn::connect(&at).map_err(|e| wire_code(&e))
    }

    /// `stonith_get_status`: the node answers and serves a fencer.
    pub fn status(&self) -> c_int {
        let request = Request::FenceHistory {
            filter: HistoryFilter::all().limit(0),
        };
        match self.ask(&request, DEFAULT_TIMEOUT) {
            Ok(_) => S_OK,
            Err(code) => code,
        }
    }

    /// `stonith_get_hostlist`: what the node's devices can fence, lower-cased.
    pub fn hostlist(&self) -> Result<Vec<String>, c_int> {
        let reply = self.ask(
            &Request::FenceTargets,
            DEFAULT_TIMEOUT + FENCE_TARGETS_TIMEOUT,
        )?;
        for e in &reply.target_errors {
            last_error::set(format!(
                "stonith_get_hostlist (ocf): a device did not answer: {e}"
            ));
        }
        let mut hosts: Vec<String> = reply
            .targets
            .unwrap_or_default()
            .iter()
            .map(|n| n.as_str().to_lowercase())
            .collect();
        // Names that differ only in case are one host once lower-cased.
        hosts.sort();
        hosts.dedup();
        Ok(hosts)
    }

    /// `stonith_req_reset`: asks the cluster fencer and waits for the incident's outcome.
    pub fn reset(&self, operation: c_int, node: &str) -> c_int {
        let action = match operation {
            super::codes::ST_GENERIC_RESET => FenceAction::Reboot,
            super::codes::ST_POWERON => FenceAction::On,
            super::codes::ST_POWEROFF => FenceAction::Off,
            other => {
                last_error::set(format!(
                    "stonith_req_reset: operation {other} is none of ST_GENERIC_RESET (1), ST_POWERON (2), ST_POWEROFF (3)"
                ));
                return S_INVAL;
            }
        };
        let target = match NodeName::new(node.to_lowercase()) {
            Ok(t) => t,
            Err(e) => {
                last_error::set(format!(
                    "stonith_req_reset: {node:?} is not a node name: {e}"
                ));
                return S_BADHOST;
            }
        };
        let request =
            FenceRequest::new(target, action, self.requester.clone()).with_timeout(self.timeout);
        let wait = self.timeout + FENCE_REPLY_GRACE * 2;
        match self.ask(&Request::Fence { request }, wait) {
            Ok(_) => S_OK,
            Err(code) => code,
        }
    }

    /// Sends `request` and reads its one reply; an error reply is its code.
    fn ask(&self, request: &Request, wait: Duration) -> Result<FenceReply, c_int> {
        let mut conn = self.connect()?;
        conn.send(request, DEFAULT_TIMEOUT)
            .map_err(|e| wire_code(&e))?;
        let line = conn.read_line(wait).map_err(|e| wire_code(&e))?;
        let reply: FenceReply = serde_json::from_slice(&line).map_err(|e| {
            last_error::set(format!(
                "stonith (ocf): unreadable reply from the ocf node at {}: {e}",
                conn.at()
            ));
            S_OOPS
        })?;
        if reply.ok {
            return Ok(reply);
        }
        let why = reply
            .error
            .clone()
            .unwrap_or_else(|| "no reason given".into());
        last_error::set(format!(
            "stonith (ocf): the ocf node at {}: {why}",
            conn.at()
        ));
        Err(match &reply.fence_error {
            Some(e) => code_of(e),
            // The daemon itself refused (busy, or a request it could not read).
            None if reply.busy => S_ACCESS,
            None => S_OOPS,
        })
    }
}

fn wire_code(e: &WireError) -> c_int {
    last_error::set(format!("stonith (ocf): {e}"));
    if e.is_timeout() { S_TIMEOUT } else { S_ACCESS }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, Option<String>)> {
        p.iter()
            .map(|(n, v)| ((*n).to_owned(), Some((*v).to_owned())))
            .collect()
    }

    #[test]
    fn settings_are_checked_and_default() {
        let s = NodeSettings::from_pairs(&[]).unwrap();
        assert_eq!(s.timeout, DEFAULT_RESET_TIMEOUT);
        assert!(s.requester.as_str().starts_with("stonith@"));
        let s = NodeSettings::from_pairs(&pairs(&[
            ("timeout", "5"),
            ("requester", "slurm@n1"),
            ("socket", "/tmp/a.sock"),
            ("whatever", "ignored"),
        ]))
        .unwrap();
        assert_eq!(s.timeout, Duration::from_secs(5));
        assert_eq!(s.located().unwrap().path, PathBuf::from("/tmp/a.sock"));
        for bad in [
            ("timeout", "0"),
            ("timeout", "601"),
            ("timeout", "x"),
            ("requester", "a b"),
            ("socket", ""),
        ] {
            assert_eq!(
                NodeSettings::from_pairs(&pairs(&[bad])),
                Err(S_BADCONFIG),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_node_that_does_not_answer_is_access_and_bad_input_is_refused_before() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("none.sock");
        let s = NodeSettings::from_pairs(&pairs(&[("socket", sock.to_str().unwrap())])).unwrap();
        assert_eq!(s.status(), S_ACCESS);
        assert!(
            last_error::get().contains("none.sock"),
            "{}",
            last_error::get()
        );
        assert_eq!(s.hostlist(), Err(S_ACCESS));
        assert_eq!(s.reset(4, "n1"), S_INVAL);
        assert_eq!(s.reset(1, "bad name/x"), S_BADHOST);
        assert_eq!(s.reset(1, "n1"), S_ACCESS);
    }
}

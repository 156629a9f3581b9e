//! `scontrol`, the one door to slurmctld: read a node's state and reason, set it DOWN with a
//! reason, resume it. Every call is bounded (a timeout per run) and retried with backoff
//! while slurmctld does not answer; the errors say which.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::process::{self, ProcessSpec, SpawnError, Termination};

/// Where Debian installs `scontrol`, used when it is not on `PATH` (Slurm runs its hooks
/// with no `PATH`).
pub const DEFAULT_SCONTROL: &str = "/usr/bin/scontrol";

/// Why an `scontrol` call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SlurmError {
    /// `scontrol` is not installed where we looked.
    #[error("scontrol not found at {path} (install slurm-client or pass --scontrol)")]
    Missing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// It could not be run.
    #[error("cannot run {path}: {source}")]
    Spawn {
        /// The program.
        path: PathBuf,
        /// Why.
        #[source]
        source: SpawnError,
    },
    /// slurmctld did not answer, after every retry.
    #[error("slurmctld does not answer `scontrol {args}` after {attempts} attempts: {stderr}")]
    NoController {
        /// The arguments, as text.
        args: String,
        /// How many times it was tried.
        attempts: u32,
        /// What scontrol said the last time.
        stderr: String,
    },
    /// slurmctld answered with a refusal (an unknown node, an update it does not allow).
    #[error("`scontrol {args}` failed (exit {code}): {stderr}")]
    Refused {
        /// The arguments, as text.
        args: String,
        /// scontrol's exit code.
        code: i32,
        /// What it said.
        stderr: String,
    },
    /// `show node` answered something that is not a node record.
    #[error("cannot read scontrol's record of node {node}: {text:?}")]
    Unparsable {
        /// The node asked about.
        node: String,
        /// What came back (at most 200 bytes).
        text: String,
    },
}

/// A Slurm node as slurmctld reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SlurmNode {
    /// Its Slurm name.
    pub name: String,
    /// Its state as Slurm prints it: `IDLE`, `DOWN+NOT_RESPONDING`, `IDLE+DRAIN`, ...
    pub state: String,
    /// The reason of its hold, without Slurm's `[user@time]` suffix; `None` when unset.
    pub reason: Option<String>,
    /// Who set the reason and when, from that suffix (`root@2026-12-01T06:00:20`).
    pub set_by: Option<String>,
}

impl SlurmNode {
    /// Parses one line of `scontrol -o show node NAME`.
    ///
    /// ```
    /// use ocf_ref::hpc::slurm::scontrol::SlurmNode;
    /// let n = SlurmNode::parse("NodeName=n2 Arch=x86_64 State=IDLE+DRAIN Weight=1 Reason=maint work [root@2026-12-01T06:00:20]").unwrap();
    /// assert_eq!(n.name, "n2");
    /// assert!(n.has_flag("DRAIN"));
    /// assert_eq!(n.reason.as_deref(), Some("maint work"));
    /// assert_eq!(n.set_by.as_deref(), Some("root@2026-12-01T06:00:20"));
    /// ```
    pub fn parse(line: &str) -> Option<Self> {
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key).map(str::to_owned))
        };
        let name = field("NodeName=")?;
        let state = field("State=")?;
        // The reason is the last field and may hold spaces.
        let (reason, set_by) = match line.find(" Reason=") {
            Some(at) => {
                let text = line[at + " Reason=".len()..].trim_end();
                match text.rfind(" [") {
                    Some(cut) if text.ends_with(']') => (
                        Some(text[..cut].to_owned()),
                        Some(text[cut + 2..text.len() - 1].to_owned()),
                    ),
                    _ => (Some(text.to_owned()), None),
                }
            }
            None => (None, None),
        };
        let reason = reason.filter(|r| !r.is_empty() && r != "(null)");
        Some(Self {
            name,
            state,
            set_by: set_by.filter(|_| reason.is_some()),
            reason,
        })
    }

    /// Whether its state holds `flag` (`DOWN`, `DRAIN`, `NOT_RESPONDING`, ...).
    pub fn has_flag(&self, flag: &str) -> bool {
        self.state
            .split(['+', '*'])
            .any(|part| part.eq_ignore_ascii_case(flag))
    }
}

/// The `scontrol` of one Slurm cluster.
#[derive(Debug, Clone)]
pub struct Scontrol {
    program: PathBuf,
    conf: Option<PathBuf>,
    timeout: Duration,
    attempts: u32,
    backoff: Duration,
}

impl Scontrol {
    /// `scontrol` found on `PATH`, else at [`DEFAULT_SCONTROL`]; `conf` becomes its
    /// `SLURM_CONF` (otherwise it reads its own default). Each run may take 10 s; a
    /// controller that does not answer is tried 5 times, 200 ms apart, doubling.
    pub fn new(conf: Option<PathBuf>) -> Self {
        let program = std::env::var_os("PATH")
            .and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join("scontrol"))
                    .find(|p| p.is_file())
            })
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SCONTROL));
        Self {
            program,
            conf,
            timeout: Duration::from_secs(10),
            attempts: 5,
            backoff: Duration::from_millis(200),
        }
    }

    /// Uses this program instead.
    #[must_use]
    pub fn with_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = program.into();
        self
    }

    /// Tries a silent controller `attempts` times (at least 1), `backoff` apart at first.
    #[must_use]
    pub fn with_retries(mut self, attempts: u32, backoff: Duration) -> Self {
        self.attempts = attempts.max(1);
        self.backoff = backoff;
        self
    }

    /// The program run.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// Runs `scontrol ARGS`, retrying while slurmctld does not answer; its stdout.
    ///
    /// # Errors
    /// [`SlurmError::Missing`], [`SlurmError::NoController`] after the last attempt,
    /// [`SlurmError::Refused`] at once for any other failure.
    pub async fn run(&self, args: &[&str]) -> Result<String, SlurmError> {
        if !self.program.is_file() {
            return Err(SlurmError::Missing {
                path: self.program.clone(),
            });
        }
        let text = args.join(" ");
        let mut spec = ProcessSpec::new(&self.program, self.timeout);
        spec.args = args.iter().map(OsString::from).collect();
        spec.reap_group_on_exit = true;
        if let Some(conf) = &self.conf {
            spec = spec.env("SLURM_CONF", conf);
        }
        let mut delay = self.backoff;
        let mut last = String::new();
        for attempt in 1..=self.attempts {
            let done = process::run(&spec)
                .await
                .map_err(|source| SlurmError::Spawn {
                    path: self.program.clone(),
                    source,
                })?;
            let stderr = String::from_utf8_lossy(&done.stderr).trim().to_owned();
            match done.termination {
                Termination::Exited(0) => {
                    return Ok(String::from_utf8_lossy(&done.stdout).into_owned());
                }
                Termination::Exited(code) if !no_controller(&stderr) => {
                    return Err(SlurmError::Refused {
                        args: text,
                        code,
                        stderr,
                    });
                }
                _ => {
                    tracing::debug!(attempt, args = %text, %stderr, "slurmctld does not answer; retrying");
                    last = if stderr.is_empty() {
                        format!("{:?}", done.termination)
                    } else {
                        stderr
                    };
                }
            }
            if attempt < self.attempts {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
        Err(SlurmError::NoController {
            args: text,
            attempts: self.attempts,
            stderr: last,
        })
    }

    /// The node's state and reason.
    ///
    /// # Errors
    /// As [`Scontrol::run`], and [`SlurmError::Unparsable`].
    pub async fn node(&self, name: &str) -> Result<SlurmNode, SlurmError> {
        let out = self.run(&["-o", "show", "node", name]).await?;
        out.lines()
            .filter_map(SlurmNode::parse)
            .find(|n| n.name == name)
            .ok_or_else(|| SlurmError::Unparsable {
                node: name.to_owned(),
                text: out.chars().take(200).collect(),
            })
    }

    /// `scontrol update NodeName=NAME State=DOWN Reason=REASON`.
    ///
    /// # Errors
    /// As [`Scontrol::run`].
    pub async fn set_down(&self, name: &str, reason: &str) -> Result<(), SlurmError> {
        let node = format!("NodeName={name}");
        let reason = format!("Reason={reason}");
        self.run(&["update", &node, "State=DOWN", &reason])
            .await
            .map(drop)
    }

    /// Every node (`scontrol -o show node`).
    ///
    /// # Errors
    /// As [`Scontrol::run`].
    pub async fn nodes(&self) -> Result<Vec<SlurmNode>, SlurmError> {
        let out = self.run(&["-o", "show", "node"]).await?;
        Ok(out.lines().filter_map(SlurmNode::parse).collect())
    }

    /// `scontrol update NodeName=NAME State=RESUME`.
    ///
    /// # Errors
    /// As [`Scontrol::run`].
    pub async fn resume(&self, name: &str) -> Result<(), SlurmError> {
        let node = format!("NodeName={name}");
        self.run(&["update", &node, "State=RESUME"]).await.map(drop)
    }
}

/// Whether scontrol's complaint means slurmctld did not answer (worth a retry).
fn no_controller(stderr: &str) -> bool {
    let s = stderr.to_ascii_lowercase();
    s.contains("unable to contact slurm controller")
        || s.contains("connection refused")
        || s.contains("socket timed out")
        || s.contains("connect failure")
        || s.contains("slurm backup controller in standby mode")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_states_and_reasons() {
        let n = SlurmNode::parse("NodeName=n3 State=DOWN+NOT_RESPONDING Reason=ocf: fenced (reboot), incident n3@left-view-4.1.0 [root@2026-12-01T06:00:20]").unwrap();
        assert!(n.has_flag("down") && n.has_flag("NOT_RESPONDING"));
        assert_eq!(
            n.reason.as_deref(),
            Some("ocf: fenced (reboot), incident n3@left-view-4.1.0")
        );
        let idle = SlurmNode::parse("NodeName=n1 State=IDLE Weight=1").unwrap();
        assert_eq!(idle.reason, None);
        assert!(!idle.has_flag("DOWN"));
        assert!(SlurmNode::parse("No nodes in the system").is_none());
    }

    #[tokio::test]
    async fn missing_scontrol_is_a_typed_error() {
        let s = Scontrol::new(None).with_program("/nonexistent/scontrol");
        let e = s.node("n1").await.unwrap_err();
        assert!(matches!(e, SlurmError::Missing { .. }), "{e}");
        assert!(e.to_string().contains("/nonexistent/scontrol"));
    }

    #[tokio::test]
    async fn a_silent_controller_is_retried_then_named() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("scontrol");
        std::fs::write(
            &fake,
            "#!/bin/sh\necho x >> \"$(dirname \"$0\")/calls\"\necho 'slurm_load_node error: Unable to contact slurm controller (connect failure)' >&2\nexit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let s = Scontrol::new(None)
            .with_program(&fake)
            .with_retries(3, Duration::from_millis(1));
        let e = s.node("n1").await.unwrap_err();
        assert!(
            matches!(e, SlurmError::NoController { attempts: 3, .. }),
            "{e}"
        );
        let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap();
        assert_eq!(calls.lines().count(), 3);
    }
}

//! Finding the local node daemon's socket, for C clients that name no daemon (a CCM client
//! never did).
//!
//! In order, the first that applies:
//! 1. what the caller gave (`stonith_set_config`'s `socket`, then `config`);
//! 2. `OCF_SOCKET`: a socket path;
//! 3. `OCF_NODE_CONFIG`: a `node.toml`, whose `socket` (or its default) is used;
//! 4. `/etc/ocf/node.toml`, when it exists;
//! 5. the one `*.sock` under `/run/ocf` (several are an error that lists them).
//!
//! The answer says which rule chose the path, so an error about a daemon that does not answer
//! says where the path came from.

use std::fmt;
use std::path::{Path, PathBuf};

use ocf_ref::membership::config::NodeConfig;

/// The node configuration read when neither `OCF_SOCKET` nor `OCF_NODE_CONFIG` is set.
pub const DEFAULT_NODE_CONFIG: &str = "/etc/ocf/node.toml";
/// Where node daemons put their sockets by default.
pub const DEFAULT_SOCKET_DIR: &str = "/run/ocf";

/// A socket path and how it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The socket.
    pub path: PathBuf,
    /// How it was chosen, for messages ("from OCF_SOCKET", ...).
    pub source: String,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.path.display(), self.source)
    }
}

/// Why no socket could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LocateError {
    /// A node configuration could not be read or is invalid.
    #[error("cannot use the node configuration {path} ({source_of}): {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// How it was chosen.
        source_of: String,
        /// What was wrong.
        reason: String,
    },
    /// Nothing said where the node is.
    #[error(
        "no ocf node found: OCF_SOCKET and OCF_NODE_CONFIG are unset, {DEFAULT_NODE_CONFIG} does not exist and {DEFAULT_SOCKET_DIR} holds {found}; set OCF_SOCKET to the node's socket"
    )]
    NotFound {
        /// What the socket directory holds ("no socket", "3 sockets: a, b, c").
        found: String,
    },
}

/// The node socket to use: `socket` or `config` when given, else the environment and the
/// defaults, in the order the module describes.
///
/// ```
/// use std::path::Path;
/// let found = ocf::locate(Some(Path::new("/tmp/n1.sock")), None).unwrap();
/// assert_eq!(found.path, Path::new("/tmp/n1.sock"));
/// assert!(found.to_string().contains("given"));
/// ```
pub fn locate(socket: Option<&Path>, config: Option<&Path>) -> Result<Located, LocateError> {
    if let Some(p) = socket {
        return Ok(Located {
            path: p.to_owned(),
            source: "given as `socket`".into(),
        });
    }
    if let Some(c) = config {
        return from_config(c, "given as `config`");
    }
    if let Some(p) = env_path("OCF_SOCKET") {
        return Ok(Located {
            path: p,
            source: "from OCF_SOCKET".into(),
        });
    }
    if let Some(c) = env_path("OCF_NODE_CONFIG") {
        return from_config(&c, "from OCF_NODE_CONFIG");
    }
    let default = Path::new(DEFAULT_NODE_CONFIG);
    if default.exists() {
        return from_config(default, "the default node configuration");
    }
    only_socket_in(Path::new(DEFAULT_SOCKET_DIR))
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn from_config(path: &Path, how: &str) -> Result<Located, LocateError> {
    let config = NodeConfig::load(path).map_err(|e| LocateError::Config {
        path: path.to_owned(),
        source_of: how.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(Located {
        path: config.socket_path(),
        source: format!("the socket of {} ({how})", path.display()),
    })
}

/// The one socket in `dir`.
fn only_socket_in(dir: &Path) -> Result<Located, LocateError> {
    use std::os::unix::fs::FileTypeExt;
    let mut sockets: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_socket()))
        .map(|e| e.path())
        .collect();
    sockets.sort();
    match sockets.as_slice() {
        [one] => Ok(Located {
            path: one.clone(),
            source: format!("the only socket in {}", dir.display()),
        }),
        [] => Err(LocateError::NotFound {
            found: "no socket".into(),
        }),
        many => Err(LocateError::NotFound {
            found: format!(
                "{} sockets ({})",
                many.len(),
                many.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_gives_its_socket_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let toml = dir.path().join("node.toml");
        std::fs::write(
            &toml,
            "cluster = \"c9\"\nbackend = \"corosync\"\nsocket = \"/tmp/x.sock\"\n",
        )
        .unwrap();
        let found = locate(None, Some(&toml)).unwrap();
        assert_eq!(found.path, Path::new("/tmp/x.sock"));
        assert!(found.source.contains("node.toml"), "{found}");
    }

    #[test]
    fn a_bad_config_is_named() {
        let e = locate(None, Some(Path::new("/nonexistent/node.toml"))).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/node.toml"), "{e}");
    }

    #[test]
    fn the_socket_dir_must_hold_exactly_one() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            only_socket_in(dir.path()),
            Err(LocateError::NotFound { .. })
        ));
        let a = std::os::unix::net::UnixListener::bind(dir.path().join("a.sock")).unwrap();
        assert_eq!(
            only_socket_in(dir.path()).unwrap().path,
            dir.path().join("a.sock")
        );
        let b = std::os::unix::net::UnixListener::bind(dir.path().join("b.sock")).unwrap();
        let e = only_socket_in(dir.path()).unwrap_err();
        assert!(e.to_string().contains("2 sockets"), "{e}");
        drop((a, b));
    }
}

//! The shared cluster key: written by `ocf keygen`, read by every node's daemon.
//!
//! The file holds 32 random bytes as 64 hex digits and a newline, mode 0600. A key file that
//! its group or others may read or write is refused (as ssh refuses such a private key): with
//! the key, anyone can forge membership packets for the whole cluster. So is a key file owned
//! by another user than root or the reader: its owner could swap the key.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rand::RngCore;

use crate::bounded_read::{BoundedReadError, PrivateReadError, read_private_string};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The fewest key bytes accepted from a key file.
pub const MIN_KEY_BYTES: usize = 16;
/// The most key bytes accepted from a key file.
pub const MAX_KEY_BYTES: usize = 1024;
/// The largest key file read, in bytes ([`MAX_KEY_BYTES`] as hex, with room for whitespace).
pub const MAX_KEY_FILE_BYTES: u64 = 4096;

/// What went wrong writing or reading a key file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The file exists already; keygen never overwrites a key.
    #[error(
        "key file {path} exists already; remove it first if you really mean to replace the cluster key"
    )]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// Reading or writing failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file could not be read: missing, unreadable, not a regular file, or larger than
    /// [`MAX_KEY_FILE_BYTES`].
    #[error("cannot read the cluster key: {0}")]
    Read(#[source] BoundedReadError),
    /// The file's group or others may read or write it.
    #[error(
        "key file {path} is accessible by its group or others (mode {mode:04o}); the cluster \
         key must be private to its owner: run `chmod 600 {path}`"
    )]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file belongs to another user than root or the one reading it: that user could
    /// replace the cluster key.
    #[error(
        "key file {path} belongs to uid {owner}, neither root nor this user (uid {user}); run \
         `chown {user} {path}`"
    )]
    Owner {
        /// The file.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The user reading it.
        user: u32,
    },
    /// The content is not a key.
    #[error("key file {path} is not a cluster key: {problem}; write a new one with `ocf keygen`")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong (never the content).
        problem: String,
    },
}

/// The cluster key. Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterKey(Vec<u8>);

impl fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClusterKey(<redacted {} bytes>)", self.0.len())
    }
}

impl ClusterKey {
    /// Wraps raw key bytes (tests, the simulator, the demo).
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// 32 fresh random bytes from the operating system.
    pub fn random() -> Self {
        let mut bytes = vec![0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The key bytes, for the MAC computation only.
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Reads a key file written by [`ClusterKey::write_new`]: a regular file of at most
    /// [`MAX_KEY_FILE_BYTES`] that neither its group nor others may access (mode 0600 or
    /// 0400), else [`KeyError::Exposed`] naming the `chmod` that fixes it, owned by root or
    /// the reading user, else [`KeyError::Owner`].
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let (text, _) = read_private_string(path, MAX_KEY_FILE_BYTES).map_err(|e| match e {
            PrivateReadError::Read(e) => KeyError::Read(e),
            PrivateReadError::Exposed { path, mode } => KeyError::Exposed { path, mode },
            PrivateReadError::Owner { path, owner, user } => KeyError::Owner { path, owner, user },
        })?;
        let malformed = |problem: &str| KeyError::Malformed {
            path: path.to_owned(),
            problem: problem.to_owned(),
        };
        let hex = text.trim();
        if hex.len() % 2 != 0 {
            return Err(malformed("odd number of hex digits"));
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| malformed("not hex digits"))?;
        if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&bytes.len()) {
            return Err(malformed(&format!(
                "{} bytes, expected {MIN_KEY_BYTES} to {MAX_KEY_BYTES}",
                bytes.len()
            )));
        }
        Ok(Self(bytes))
    }

    /// Writes this key to a new file with mode 0600, refusing to replace an existing file.
    pub fn write_new(&self, path: &Path) -> Result<(), KeyError> {
        let io = |source: std::io::Error| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    KeyError::Exists {
                        path: path.to_owned(),
                    }
                } else {
                    io(e)
                }
            })?;
        let mut text = String::with_capacity(self.0.len() * 2 + 1);
        for b in &self.0 {
            text.push(char::from(HEX[usize::from(b >> 4)]));
            text.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        text.push('\n');
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn round_trip_mode_and_no_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authkey");
        let key = ClusterKey::random();
        key.write_new(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(ClusterKey::load(&path).unwrap(), key);
        assert!(matches!(
            ClusterKey::random().write_new(&path),
            Err(KeyError::Exists { .. })
        ));
        assert_eq!(ClusterKey::load(&path).unwrap(), key);
        assert!(!format!("{key:?}").contains(&format!("{:02x}", key.0[0])) || key.0.len() < 2);
    }

    #[test]
    fn malformed_keys_are_refused_without_echo() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "secretsecret-not-hex").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = ClusterKey::load(&path).unwrap_err();
        assert!(matches!(e, KeyError::Malformed { .. }), "{e}");
        assert!(!e.to_string().contains("secretsecret"), "{e}");
        std::fs::write(&path, "abcd\n").unwrap();
        let e = ClusterKey::load(&path).unwrap_err();
        assert!(matches!(e, KeyError::Malformed { .. }), "{e}");
    }

    #[test]
    fn exposed_or_oversized_key_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authkey");
        ClusterKey::random().write_new(&path).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = ClusterKey::load(&path).unwrap_err();
            assert!(matches!(e, KeyError::Exposed { .. }), "{mode:o}: {e}");
            let text = e.to_string();
            assert!(
                text.contains(&format!("chmod 600 {}", path.display())),
                "{text}"
            );
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        ClusterKey::load(&path).unwrap();
        if nix::unistd::geteuid().is_root() {
            nix::unistd::chown(&path, Some(nix::unistd::Uid::from_raw(4242)), None).unwrap();
            let e = ClusterKey::load(&path).unwrap_err();
            assert!(matches!(e, KeyError::Owner { owner: 4242, .. }), "{e}");
            assert!(e.to_string().contains("chown 0"), "{e}");
        }
        let e = ClusterKey::load(Path::new("/dev/zero")).unwrap_err();
        assert!(e.to_string().contains("/dev/zero"), "{e}");
        let big = dir.path().join("big");
        std::fs::write(&big, "ab".repeat(4096)).unwrap();
        std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = ClusterKey::load(&big).unwrap_err();
        assert!(e.to_string().contains("4096 bytes"), "{e}");
    }
}

//! A small on-disk cache of agents' meta-data, so a one-shot `ocf ra run` does not run the
//! agent twice (once for `meta-data`, once for the action) on every call.
//!
//! An entry is keyed by the agent file's canonical path and its identity as `stat` sees it
//! (device, inode, size, modification and change times in nanoseconds): replacing or editing
//! the agent, or pointing a symlink elsewhere, misses the cache. Meta-data that depends on
//! something other than the agent's own file is refreshed by `ocf ra meta`, which always runs
//! the agent and rewrites the entry.
//!
//! The cache only saves time: what it holds is the agent's own meta-data, used for the
//! advertised timeout and for warnings, never to decide an action's outcome. A directory that
//! is not ours or that others may write is not used at all.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The environment variable that names the cache directory (empty: no cache).
pub const CACHE_DIR_ENV: &str = "OCF_CACHE_DIR";

/// The format tag of an entry's first line; a change of format misses every old entry.
const FORMAT: &str = "ocf-metadata-cache-v1";

/// The biggest meta-data document kept (the capture bound of a run).
const MAX_ENTRY: u64 = crate::process::DEFAULT_OUTPUT_LIMIT as u64;

/// A meta-data cache in one directory.
#[derive(Debug, Clone)]
pub struct MetadataCache {
    dir: PathBuf,
}

impl MetadataCache {
    /// A cache in `dir` (created with mode 0700 on the first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The cache the environment names: `$OCF_CACHE_DIR` (set but empty turns the cache
    /// off), else `$XDG_CACHE_HOME/ocf`, else `$HOME/.cache/ocf`; `None` when none is set.
    pub fn from_env() -> Option<Self> {
        if let Some(dir) = std::env::var_os(CACHE_DIR_ENV) {
            return (!dir.is_empty()).then(|| Self::new(dir));
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|h| PathBuf::from(h).join(".cache"))
            })?;
        Some(Self::new(base.join("ocf")))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cached meta-data of the agent at `agent`, if an entry matches the file as it is now.
    pub fn get(&self, agent: &Path) -> Option<Vec<u8>> {
        let (name, key) = file_key(agent)?;
        let dir = self.entries_dir();
        if !trusted(&dir) {
            return None;
        }
        let path = dir.join(name);
        let meta = fs::symlink_metadata(&path).ok()?;
        if !meta.is_file() || meta.len() > MAX_ENTRY + 4096 || !owned_by_us(&meta) {
            return None;
        }
        let bytes = fs::read(&path).ok()?;
        let newline = bytes.iter().position(|&b| b == b'\n')?;
        (bytes[..newline] == *key.as_bytes()).then(|| bytes[newline + 1..].to_vec())
    }

    /// Stores `xml` as the meta-data of the agent at `agent`. Failures are logged and
    /// otherwise ignored: a cache that cannot be written only costs time.
    pub fn put(&self, agent: &Path, xml: &[u8]) {
        if xml.len() as u64 > MAX_ENTRY {
            return;
        }
        let Some((name, key)) = file_key(agent) else {
            return;
        };
        if let Err(e) = self.write(&name, &key, xml) {
            tracing::debug!(dir = %self.dir.display(), error = %e, "meta-data cache not written");
        }
    }

    fn entries_dir(&self) -> PathBuf {
        self.dir.join("metadata")
    }

    fn write(&self, name: &str, key: &str, xml: &[u8]) -> std::io::Result<()> {
        let dir = self.entries_dir();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        if !trusted(&dir) {
            return Err(std::io::Error::other(
                "the cache directory is not ours alone",
            ));
        }
        // Write beside, then rename: a reader sees the old entry or the new, never half.
        let tmp = dir.join(format!(".{name}.{}", std::process::id()));
        let result = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(key.as_bytes())?;
            f.write_all(b"\n")?;
            f.write_all(xml)?;
            fs::rename(&tmp, dir.join(name))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

/// The entry's file name (a hash of the canonical path: one entry per agent file) and its key
/// line (the path and the file's identity as it is now; one line, so a newline in the path
/// makes the file uncacheable rather than ambiguous).
fn file_key(agent: &Path) -> Option<(String, String)> {
    let canonical = fs::canonicalize(agent).ok()?;
    let text = canonical.to_str().filter(|t| !t.contains('\n'))?;
    let m = fs::metadata(&canonical).ok()?;
    let name = format!("{:016x}", fnv1a(text.as_bytes()));
    let key = format!(
        "{FORMAT} {} {} {} {}.{} {}.{} {}",
        m.dev(),
        m.ino(),
        m.len(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
        text,
    );
    Some((name, key))
}

/// FNV-1a, 64 bits: a stable, dependency-free spread of paths over file names. A collision
/// only costs a miss: the key line inside the entry holds the full path and is compared.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A directory we own that nobody else may write into.
fn trusted(dir: &Path) -> bool {
    fs::symlink_metadata(dir)
        .is_ok_and(|m| m.is_dir() && owned_by_us(&m) && m.permissions().mode() & 0o022 == 0)
}

fn owned_by_us(m: &fs::Metadata) -> bool {
    m.uid() == nix::unistd::geteuid().as_raw()
}

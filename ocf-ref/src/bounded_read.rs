//! Reading a small file a user named (a config, a key) without trusting it to be small.
//!
//! `std::fs::read_to_string` reads until the end: `/dev/zero`, a FIFO whose writer never
//! closes, or a multi-gigabyte file make it block for ever or eat the machine's memory.
//! [`read_regular`] opens the file without blocking, refuses anything but a regular file, and
//! refuses a file longer than the caller's limit after reading at most `limit + 1` bytes. The
//! metadata it returns is the opened file's own (`fstat`), so a check of its mode or owner
//! applies to the very bytes read, not to whatever the path names a moment later.

use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BoundedReadError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The path names something that is not a regular file (a device, a FIFO, a directory,
    /// a socket).
    #[error("{path} is {what}, not a regular file")]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What it is instead ("a directory", "a FIFO", ...).
        what: &'static str,
    },
    /// The file is longer than the limit.
    #[error("{path} is larger than the limit of {limit} bytes; is this the right file?")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit, in bytes.
        limit: u64,
    },
    /// The file is not UTF-8 text (only from [`read_regular_string`]).
    #[error("{path} is not UTF-8 text")]
    NotText {
        /// The file.
        path: PathBuf,
    },
}

/// What a file type is, in words, for [`BoundedReadError::NotRegular`].
fn describe(kind: std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

/// Reads the regular file at `path` (symbolic links are followed), refusing anything else and
/// any file longer than `limit` bytes. Never blocks on a FIFO and never reads more than
/// `limit + 1` bytes. Returns the bytes and the opened file's metadata.
pub fn read_regular(path: &Path, limit: u64) -> Result<(Vec<u8>, Metadata), BoundedReadError> {
    let io = |source: std::io::Error| BoundedReadError::Io {
        path: path.to_owned(),
        source,
    };
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer; it has no
    // effect on reading a regular file. O_NOCTTY: a terminal never becomes ours.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.file_type().is_file() {
        return Err(BoundedReadError::NotRegular {
            path: path.to_owned(),
            what: describe(meta.file_type()),
        });
    }
    let too_large = || BoundedReadError::TooLarge {
        path: path.to_owned(),
        limit,
    };
    if meta.len() > limit {
        return Err(too_large());
    }
    // The file may grow after the fstat; `take` bounds what is read whatever it does.
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    read_at_most(file, limit, &mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok((bytes, meta))
}

fn read_at_most(file: File, limit: u64, into: &mut Vec<u8>) -> std::io::Result<()> {
    file.take(limit.saturating_add(1)).read_to_end(into)?;
    Ok(())
}

/// Like [`read_regular`], for a text file.
pub fn read_regular_string(
    path: &Path,
    limit: u64,
) -> Result<(String, Metadata), BoundedReadError> {
    let (bytes, meta) = read_regular(path, limit)?;
    let text = String::from_utf8(bytes).map_err(|_| BoundedReadError::NotText {
        path: path.to_owned(),
    })?;
    Ok((text, meta))
}

/// Why a private file (a key, a password file) was not read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrivateReadError {
    /// The file could not be read (see [`read_regular`]).
    #[error(transparent)]
    Read(#[from] BoundedReadError),
    /// Its group or others may read or write it.
    #[error(
        "{path} is accessible by its group or others (mode {mode:04o}); it must be private to \
         its owner: run `chmod 600 {path}`"
    )]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// It belongs to another user than root or the one reading it: that user could replace
    /// it.
    #[error(
        "{path} belongs to uid {owner}, neither root nor this user (uid {user}); run \
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
}

/// Like [`read_regular_string`], for a file only its owner may access: refused when its group
/// or others may read or write it ([`PrivateReadError::Exposed`]) or when it belongs to
/// another user than root or the reader ([`PrivateReadError::Owner`]). The checks apply to the
/// file actually read (its `fstat`), not to whatever the path names a moment later.
///
/// ```
/// use std::os::unix::fs::PermissionsExt;
/// use ocf_ref::bounded_read::{PrivateReadError, read_private_string};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("pw");
/// std::fs::write(&path, "hunter2\n").unwrap();
/// std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
/// let e = read_private_string(&path, 4096).unwrap_err();
/// assert!(matches!(e, PrivateReadError::Exposed { mode: 0o644, .. }));
/// std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
/// assert_eq!(read_private_string(&path, 4096).unwrap().0, "hunter2\n");
/// ```
pub fn read_private_string(
    path: &Path,
    limit: u64,
) -> Result<(String, Metadata), PrivateReadError> {
    let (text, meta) = read_regular_string(path, limit)?;
    let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777;
    if mode & 0o077 != 0 {
        return Err(PrivateReadError::Exposed {
            path: path.to_owned(),
            mode,
        });
    }
    let owner = std::os::unix::fs::MetadataExt::uid(&meta);
    let me = nix::unistd::geteuid().as_raw();
    if owner != 0 && owner != me {
        return Err(PrivateReadError::Owner {
            path: path.to_owned(),
            owner,
            user: me,
        });
    }
    Ok((text, meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_small_files_and_refuses_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        std::fs::write(&small, "hello\n").unwrap();
        let (text, meta) = read_regular_string(&small, 6).unwrap();
        assert_eq!(text, "hello\n");
        assert_eq!(meta.len(), 6);

        let e = read_regular(&small, 5).unwrap_err();
        assert!(
            matches!(e, BoundedReadError::TooLarge { limit: 5, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("small"), "{e}");

        let e = read_regular(dir.path(), 100).unwrap_err();
        assert!(
            matches!(
                e,
                BoundedReadError::NotRegular {
                    what: "a directory",
                    ..
                }
            ),
            "{e}"
        );
        let e = read_regular(Path::new("/dev/zero"), 100).unwrap_err();
        assert!(
            e.to_string()
                .contains("/dev/zero is a character device, not a regular file"),
            "{e}"
        );
        let e = read_regular(&dir.path().join("absent"), 100).unwrap_err();
        assert!(matches!(e, BoundedReadError::Io { .. }), "{e}");

        let binary = dir.path().join("binary");
        std::fs::write(&binary, [0xff, 0xfe]).unwrap();
        let e = read_regular_string(&binary, 100).unwrap_err();
        assert!(matches!(e, BoundedReadError::NotText { .. }), "{e}");
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let e = read_regular(&fifo, 100).unwrap_err();
        assert!(
            matches!(e, BoundedReadError::NotRegular { what: "a FIFO", .. }),
            "{e}"
        );
    }

    #[test]
    fn a_sparse_huge_file_is_refused_from_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let huge = dir.path().join("huge");
        let f = File::create(&huge).unwrap();
        f.set_len(8 << 30).unwrap();
        let e = read_regular(&huge, 1 << 20).unwrap_err();
        assert!(matches!(e, BoundedReadError::TooLarge { .. }), "{e}");
    }
}

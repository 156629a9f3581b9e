//! Reading one reply line of the daemon's socket, the one way every client does it: at most
//! [`MAX_LINE`] bytes, a clean end of stream told apart from a line cut off in the middle or
//! one that is too long.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

use super::local_api::MAX_LINE;

/// Why a reply line could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyLineError {
    /// Reading failed.
    #[error("connection broke: {0}")]
    Broke(#[from] std::io::Error),
    /// The line is longer than [`MAX_LINE`].
    #[error("a reply line is longer than {MAX_LINE} bytes")]
    TooLong,
    /// The connection ended in the middle of a line.
    #[error("the daemon closed the connection in the middle of a reply")]
    CutOff,
}

/// The next reply line, without its newline; `Ok(None)` when the daemon closed the connection
/// between lines.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use ocf_ref::membership::daemon::reply_line::{read_reply_line, ReplyLineError};
/// let mut r: &[u8] = b"{\"ok\":true}\n{\"ok\"";
/// assert_eq!(read_reply_line(&mut r).await.unwrap().unwrap(), b"{\"ok\":true}");
/// assert!(matches!(read_reply_line(&mut r).await, Err(ReplyLineError::CutOff)));
/// assert!(read_reply_line(&mut &b""[..]).await.unwrap().is_none());
/// # });
/// ```
pub async fn read_reply_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
) -> Result<Option<Vec<u8>>, ReplyLineError> {
    let mut line = Vec::new();
    let n = (&mut *reader)
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut line)
        .await?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(if line.len() > MAX_LINE {
            ReplyLineError::TooLong
        } else {
            ReplyLineError::CutOff
        });
    }
    line.pop();
    Ok(Some(line))
}

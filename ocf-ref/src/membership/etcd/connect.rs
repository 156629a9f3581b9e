//! Building the etcd client from `[etcd]`: endpoints, TLS files, user and password file.

use std::path::Path;
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};

use super::error::EtcdError;
use crate::bounded_read::{read_private_string, read_regular};
use crate::membership::config::EtcdConfig;

/// The largest TLS or password file read, in bytes.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// How long one unary request (a put, a transaction, a grant) may take: short, so that a
/// node whose etcd is gone notices it within its lease's half-life.
pub fn request_timeout(lease_ttl_s: u64) -> Duration {
    Duration::from_millis((lease_ttl_s * 1000 / 4).clamp(500, 5_000))
}

fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, EtcdError> {
    read_regular(path, MAX_FILE_BYTES)
        .map(|(bytes, _)| bytes)
        .map_err(|e| EtcdError::File {
            what,
            path: path.to_owned(),
            reason: e.to_string(),
        })
}

/// The client options `config` asks for: a connect timeout, HTTP/2 pings that
/// notice a dead connection within a second or two, requests refused by a member without a
/// leader (so a cut-off member answers "no leader" rather than stale data), and TLS and
/// credentials when configured. The password is read here and never logged.
pub fn options(config: &EtcdConfig) -> Result<ConnectOptions, EtcdError> {
    // No blanket request timeout: the engine bounds each call itself, a full read of
    // thousands of members longer than a keep-alive.
    let mut options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(1))
        .with_keep_alive(Duration::from_secs(1), Duration::from_secs(1))
        .with_keep_alive_while_idle(true)
        .with_require_leader(true);
    if let (Some(user), Some(file)) = (&config.user, &config.password_file) {
        let (password, _) =
            read_private_string(file, MAX_FILE_BYTES).map_err(|e| EtcdError::File {
                what: "password_file",
                path: file.clone(),
                reason: e.to_string(),
            })?;
        options = options.with_user(user.clone(), password.trim_end_matches('\n').to_owned());
    }
    let tls_wanted = config.ca_file.is_some()
        || config.cert_file.is_some()
        || config.endpoints.iter().any(|e| e.starts_with("https://"));
    if tls_wanted {
        let mut tls = TlsOptions::new();
        if let Some(ca) = &config.ca_file {
            tls = tls.ca_certificate(Certificate::from_pem(read_file("ca_file", ca)?));
        }
        if let (Some(cert), Some(key)) = (&config.cert_file, &config.key_file) {
            let cert = read_file("cert_file", cert)?;
            let key = read_file("key_file", key)?;
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        options = options.with_tls(tls);
    }
    Ok(options)
}

/// Connects to the endpoints of `config` (with authentication, when configured, done now).
pub async fn connect(config: &EtcdConfig) -> Result<Client, EtcdError> {
    let options = options(config)?;
    Client::connect(&config.endpoints, Some(options))
        .await
        .map_err(|source| EtcdError::Connect {
            endpoints: config.endpoints.clone(),
            source,
        })
}

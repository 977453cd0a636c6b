//! HTTP Basic credentials and who may do what: sources (global or per-mount
//! password), admin (the admin user, or a mount's source credentials for
//! that mount's commands) and listeners of mounts with `listener_auth`.

pub mod htpasswd;
mod throttle;

pub use throttle::Throttle;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use base64::Engine;

use crate::config::{Config, MountConfig};
use crate::http::response::Response;

/// Credentials from an `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

/// Why credentials could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("authentication required")]
    Missing,
    #[error("malformed Basic credentials")]
    Malformed,
    #[error("wrong user name or password")]
    Denied,
}

/// Parse `Basic base64(user:password)`. Non-UTF-8 credentials are read as Latin-1.
pub fn parse_basic(header: &str) -> Result<Credentials, AuthError> {
    let (scheme, encoded) = header.trim().split_once(' ').ok_or(AuthError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(AuthError::Malformed);
    }
    let raw = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| AuthError::Malformed)?;
    let text = String::from_utf8(raw.clone()).unwrap_or_else(|_| raw.iter().map(|&b| char::from(b)).collect());
    let (user, password) = text.split_once(':').ok_or(AuthError::Malformed)?;
    Ok(Credentials { user: user.to_string(), password: password.to_string() })
}

/// Why a login was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Wrong credentials (counted against the address).
    Denied,
    /// The address failed too often: refused without a check for this long.
    Blocked(Duration),
}

impl Refused {
    /// Seconds for a `Retry-After` header (at least one).
    pub fn retry_after(self) -> u64 {
        match self {
            Refused::Denied => 0,
            Refused::Blocked(left) => left.as_secs().max(1),
        }
    }
}

/// One login attempt from `ip` (`what` names it in the log): refused
/// unchecked while the address is blocked; otherwise `check` decides, and a
/// failure counts towards a block.
pub fn attempt(throttle: &Throttle, ip: IpAddr, what: &str, check: impl FnOnce() -> bool) -> Result<(), Refused> {
    let now = Instant::now();
    if let Some(left) = throttle.blocked(ip, now) {
        return Err(Refused::Blocked(left));
    }
    if check() {
        throttle.succeeded(ip);
        return Ok(());
    }
    if let Some(block) = throttle.failed(ip, now) {
        tracing::warn!(%ip, what, block_s = block.as_secs(), "too many failed logins; address refused for a while");
    }
    Err(Refused::Denied)
}

/// May a request listen to `mount` (its stream, its HLS/DASH, or one of
/// its renditions, which share its `listener_auth`)? `Ok` with the user
/// name when the mount asks for one; a 401 challenge or a 429 otherwise.
/// Failures count towards the address's login throttle like any login.
pub async fn listener(
    state: &crate::state::AppState,
    mount: &str,
    authorization: Option<&str>,
    ip: IpAddr,
) -> Result<Option<String>, Response> {
    let config = state.config.mount(mount);
    let Some(crate::config::ListenerAuth::Htpasswd(file)) = &config.listener_auth else { return Ok(None) };
    let challenge = || Response::unauthorized("Floe listeners");
    let creds = authorization.and_then(|header| parse_basic(header).ok()).ok_or_else(challenge)?;
    let now = Instant::now();
    if let Some(left) = state.logins.blocked(ip, now) {
        let retry = Refused::Blocked(left).retry_after();
        return Err(Response::text(429, "too many failed logins from this address; retry later")
            .with_header("Retry-After", &retry.to_string()));
    }
    if state.htpasswd.verify(file, &creds.user, &creds.password).await {
        state.logins.succeeded(ip);
        return Ok(Some(creds.user));
    }
    if let Some(block) = state.logins.failed(ip, now) {
        tracing::warn!(%ip, mount, block_s = block.as_secs(), "too many failed listener logins; address refused for a while");
    }
    Err(challenge())
}

/// Credentials of a request: `Authorization: Basic`, or the legacy
/// `ice-password` header some old SOURCE clients send.
pub fn request_credentials(
    authorization: Option<&str>,
    ice_password: Option<&str>,
    default_user: &str,
) -> Result<Credentials, AuthError> {
    match (authorization, ice_password) {
        (Some(header), _) => parse_basic(header),
        (None, Some(password)) => Ok(Credentials { user: default_user.to_string(), password: password.to_string() }),
        (None, None) => Err(AuthError::Missing),
    }
}

/// May these credentials stream to `mount`? Per-mount credentials replace the global password.
pub fn source_allowed(config: &Config, mount: &MountConfig, creds: &Credentials) -> bool {
    match &mount.password {
        Some(password) => creds.user == mount.username && constant_time_eq(&creds.password, password),
        None => creds.user == mount.username && constant_time_eq(&creds.password, &config.auth.source_password),
    }
}

/// A SHOUTcast v1 login carries only a password.
pub fn shoutcast_password_allowed(config: &Config, mount: &MountConfig, password: &str) -> bool {
    let expected = mount.password.as_deref().unwrap_or(&config.auth.source_password);
    constant_time_eq(password, expected)
}

/// Is this the admin user?
pub fn is_admin(config: &Config, creds: &Credentials) -> bool {
    creds.user == config.auth.admin_user && constant_time_eq(&creds.password, &config.auth.admin_password)
}

/// Compare without leaking where the first difference is.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_basic() {
        // "source:hackme"
        let c = parse_basic("Basic c291cmNlOmhhY2ttZQ==").unwrap();
        assert_eq!(c, Credentials { user: "source".into(), password: "hackme".into() });
        // Passwords may contain colons.
        let c = parse_basic("basic YTpiOmM=").unwrap();
        assert_eq!(c.password, "b:c");
    }

    #[test]
    fn rejects_bad_encodings() {
        assert_eq!(parse_basic("Basic !!!notbase64"), Err(AuthError::Malformed));
        assert_eq!(parse_basic("Basic bm9jb2xvbg=="), Err(AuthError::Malformed)); // "nocolon"
        assert_eq!(parse_basic("Bearer abc"), Err(AuthError::Malformed));
        assert_eq!(parse_basic("Basic"), Err(AuthError::Malformed));
    }

    #[test]
    fn per_mount_credentials_replace_global() {
        let config = Config::default();
        let mut mount = MountConfig::dynamic("/live");
        let global = Credentials { user: "source".into(), password: "hackme".into() };
        assert!(source_allowed(&config, &mount, &global));
        mount.username = "dj".into();
        mount.password = Some("secret".into());
        assert!(!source_allowed(&config, &mount, &global));
        let own = Credentials { user: "dj".into(), password: "secret".into() };
        assert!(source_allowed(&config, &mount, &own));
    }
}

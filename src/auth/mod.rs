//! HTTP Basic credentials and who may do what: sources (global or per-mount
//! password), admin (the admin user, or a mount's source credentials for
//! that mount's commands) and listeners of mounts with `listener_auth`.

pub mod htpasswd;
mod throttle;
pub mod url;

pub use throttle::Throttle;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use base64::Engine;

use crate::config::{Config, MountConfig};
use crate::http::status::{Refusal, Status};

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

/// A listener let in: who (when the mount asks), for how long, and whom
/// to tell when it leaves. Held for a listener's whole stream, so one
/// pointer, and nothing behind it for a listener of an open mount.
#[derive(Default)]
pub struct Admission(Option<Box<Granted>>);

/// What authentication gave a listener.
struct Granted {
    user: Option<Box<str>>,
    /// `icecast-auth-timelimit`, in its own unit: seconds.
    time_limit_secs: Option<u32>,
    leave: Option<Leave>,
}

/// A `listener_remove` to send when the listener leaves.
struct Leave {
    auth: std::sync::Arc<crate::config::UrlAuth>,
    url: crate::http::url::HttpUrl,
    form: Vec<(&'static str, String)>,
    since: Instant,
}

impl Admission {
    fn granted(user: Option<Box<str>>, time_limit_secs: Option<u32>, leave: Option<Leave>) -> Admission {
        let nothing = user.is_none() && time_limit_secs.is_none() && leave.is_none();
        Admission((!nothing).then(|| Box::new(Granted { user, time_limit_secs, leave })))
    }

    fn user_only(user: Option<String>) -> Admission {
        Admission::granted(user.filter(|u| !u.is_empty()).map(Into::into), None, None)
    }

    /// The user name the listener logged in with, if any.
    pub fn user(&self) -> Option<&str> {
        self.0.as_ref()?.user.as_deref()
    }

    /// The user name, kept when the rest is not needed.
    pub fn into_user(self) -> Option<Box<str>> {
        self.0.and_then(|granted| granted.user)
    }

    /// `icecast-auth-timelimit`: the stream ends after this long.
    pub fn time_limit(&self) -> Option<Duration> {
        let secs = self.0.as_ref()?.time_limit_secs?;
        Some(Duration::from_secs(secs.into()))
    }

    /// The listener has gone (or was not let in after all): tell the
    /// backend, with how long it stayed. Once.
    pub fn left(&mut self, state: &crate::state::AppState) {
        if let Some(Leave { auth, url, mut form, since }) = self.0.as_mut().and_then(|g| g.leave.take()) {
            form.push(("duration", since.elapsed().as_secs().to_string()));
            state.url_auth.tell(auth, url, form);
        }
    }
}

/// What a listener request carries that authentication looks at.
pub struct ListenerRequest<'a> {
    /// Other headers a URL backend may be shown (`headers`).
    pub request: &'a crate::http::request::Request,
    pub authorization: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub referer: Option<&'a str>,
    /// An HLS/DASH request (many per listener): a URL backend is asked once a minute.
    pub adaptive: bool,
}

impl<'a> ListenerRequest<'a> {
    pub fn of(req: &'a crate::http::request::Request, adaptive: bool) -> ListenerRequest<'a> {
        ListenerRequest {
            request: req,
            authorization: req.header("Authorization"),
            user_agent: req.header("User-Agent"),
            referer: req.header("Referer"),
            adaptive,
        }
    }
}

/// May a request listen to `mount` (its stream, its HLS/DASH, or one of
/// its renditions, which share its `listener_auth`)? A 401 challenge, a 403
/// with the backend's message, a 429 or a 503 (backend down, fail-closed)
/// otherwise. Failed passwords count towards the address's login throttle.
pub async fn listener(
    state: &crate::state::AppState,
    mount: &str,
    req: &ListenerRequest<'_>,
    ip: IpAddr,
) -> Result<Admission, ListenerRefused> {
    // The mount's own settings (HLS asks several times a second: no
    // settings built per request). A mount without a handle is neither
    // configured nor live, so it has no listener_auth and nothing to serve.
    let Some(handle) = state.mounts.get(mount) else { return Ok(Admission::default()) };
    let config = handle.config().clone();
    let creds = req.authorization.and_then(|header| parse_basic(header).ok());
    match &config.listener_auth {
        None => Ok(Admission::default()),
        Some(crate::config::ListenerAuth::Htpasswd(file)) => {
            let creds = creds.ok_or(ListenerRefused::NeedAuth)?;
            let now = Instant::now();
            if let Some(left) = state.logins.blocked(ip, now) {
                return Err(ListenerRefused::Throttled(Refused::Blocked(left).retry_after()));
            }
            if state.htpasswd.verify(file, &creds.user, &creds.password).await {
                state.logins.succeeded(ip);
                return Ok(Admission::user_only(Some(creds.user)));
            }
            if let Some(block) = state.logins.failed(ip, now) {
                tracing::warn!(%ip, mount, block_s = block.as_secs(), "too many failed listener logins; address refused for a while");
            }
            Err(ListenerRefused::NeedAuth)
        }
        Some(crate::config::ListenerAuth::Url(auth)) => {
            let Some(add) = &auth.listener_add else { return Ok(Admission::default()) };
            let (user, pass) = creds.map_or((String::new(), String::new()), |c| (c.user, c.password));
            let remembered = (mount, &user, &pass, ip);
            if req.adaptive && state.url_auth.accepted_lately(remembered) {
                return Ok(Admission::user_only(Some(user)));
            }
            let listeners = handle.stats().listeners.load(std::sync::atomic::Ordering::Relaxed);
            let form: Vec<(&'static str, String)> = vec![
                ("action", "listener_add".into()),
                ("server", state.config.get().server.hostname.clone()),
                ("port", state.http_port.to_string()),
                ("client", state.mounts.next_listener_id().to_string()),
                ("mount", mount.to_string()),
                ("user", user.clone()),
                ("pass", pass.clone()),
                ("ip", ip.to_string()),
                ("agent", req.user_agent.unwrap_or("").to_string()),
                ("referer", req.referer.unwrap_or("").to_string()),
                ("listeners", listeners.to_string()),
            ];
            let user_name = Some(user.clone()).filter(|u| !u.is_empty());
            let admitted = |time_limit| {
                let leave = (!req.adaptive).then(|| auth.listener_remove.clone()).flatten().map(|url| {
                    // listener_remove carries listener_add's fields but referer and listeners.
                    let mut form = form.clone();
                    form[0].1 = "listener_remove".into();
                    form.truncate(9);
                    Leave { auth: auth.clone(), url, form, since: Instant::now() }
                });
                Admission::granted(user_name.clone().map(Into::into), time_limit, leave)
            };
            // The headers the backend asked to see, as Icecast names them.
            let shown: Vec<(String, String)> = (auth.headers.iter())
                .filter_map(|name| {
                    Some((format!("{}{name}", auth.header_prefix), req.request.header(name)?.to_string()))
                })
                .collect();
            let mut asked = form.clone();
            asked.extend(shown.iter().map(|(name, value)| (name.as_str(), value.clone())));
            match state.url_auth.ask(auth, add, &asked).await {
                crate::auth::url::Verdict::Accepted { time_limit } => {
                    if req.adaptive {
                        state.url_auth.remember_accepted(remembered);
                    }
                    Ok(admitted(time_limit))
                }
                crate::auth::url::Verdict::Refused { message } => {
                    let message = message.unwrap_or_else(|| "Not allowed to listen".into());
                    Err(ListenerRefused::Backend { message, had_credentials: req.authorization.is_some() })
                }
                crate::auth::url::Verdict::Failed(why) => {
                    tracing::warn!(mount, %add, on_error_allow = auth.allow_on_error, "URL auth backend: {why}");
                    match auth.allow_on_error {
                        true => Ok(admitted(None)),
                        false => Err(ListenerRefused::BackendDown),
                    }
                }
            }
        }
    }
}

/// Why a listener was not let in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListenerRefused {
    #[error("authentication required")]
    NeedAuth,
    #[error("too many failed logins from this address; retry later")]
    Throttled(u64),
    /// The URL auth backend said no, with its message: asked for
    /// credentials when none were given, refused when they were.
    #[error("{message}")]
    Backend { message: String, had_credentials: bool },
    #[error("the authentication service is not answering; try again later")]
    BackendDown,
}

impl Refusal for ListenerRefused {
    fn status(&self) -> Status {
        match self {
            ListenerRefused::NeedAuth | ListenerRefused::Backend { had_credentials: false, .. } => Status::Unauthorized,
            ListenerRefused::Backend { had_credentials: true, .. } => Status::Forbidden,
            ListenerRefused::Throttled(_) => Status::TooManyRequests,
            ListenerRefused::BackendDown => Status::ServiceUnavailable,
        }
    }

    fn realm(&self) -> &'static str {
        "Floe listeners"
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            ListenerRefused::Throttled(secs) => Some(*secs),
            _ => None,
        }
    }
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

/// Is this the relay user (`[auth] relay_user`, when it has a password)?
pub fn is_relay(config: &Config, creds: &Credentials) -> bool {
    config
        .auth
        .relay_password
        .as_deref()
        .is_some_and(|password| creds.user == config.auth.relay_user && constant_time_eq(&creds.password, password))
}

/// An `Authorization` value with Basic credentials, as this server sends them.
pub fn basic_header(user: &str, password: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
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

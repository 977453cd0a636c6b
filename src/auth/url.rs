//! Icecast's URL authentication: a form POSTed to the station's backend
//! (Icecast's exact fields), which accepts with `icecast-auth-user: 1`, may
//! give a listener a time limit (`icecast-auth-timelimit`) and a reason
//! for a refusal (`icecast-auth-message`). A slow or dead backend costs
//! one request its timeout, never anyone else: requests to backends are
//! bounded in number, time and size.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Semaphore;

use crate::client::{post_form, Head};
use crate::config::UrlAuth;
use crate::http::url::HttpUrl;

/// Requests to backends in flight at once, server-wide.
const IN_FLIGHT: usize = 32;
/// How long an accepted HLS/DASH listener is not asked again.
const REMEMBER: Duration = Duration::from_secs(60);
/// Accepted HLS/DASH listeners remembered; past it the memory starts again.
const REMEMBERED: usize = 4096;

/// What the backend said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accepted {
        /// Seconds, as the backend said.
        time_limit: Option<u32>,
    },
    Refused {
        message: Option<String>,
    },
    /// Unreachable, too slow, or an answer that is not HTTP.
    Failed(String),
}

/// The server's client for every mount's backend.
pub struct UrlClient {
    in_flight: Semaphore,
    /// Accepted HLS/DASH listeners (keyed hashes) and when.
    accepted: Mutex<HashMap<u64, Instant>>,
    keys: std::collections::hash_map::RandomState,
}

impl Default for UrlClient {
    fn default() -> UrlClient {
        UrlClient { in_flight: Semaphore::new(IN_FLIGHT), accepted: Mutex::default(), keys: Default::default() }
    }
}

impl UrlClient {
    /// POST `form` to `url` and read the verdict, within `auth.timeout`.
    pub async fn ask(&self, auth: &UrlAuth, url: &HttpUrl, form: &[(&str, String)]) -> Verdict {
        let exchange = async {
            let _turn = self.in_flight.acquire().await.map_err(|_| "shutting down".to_string())?;
            let credentials = auth.username.as_deref().map(|user| (user, auth.password.as_deref().unwrap_or("")));
            post_form(url, credentials, form).await
        };
        match tokio::time::timeout(auth.timeout, exchange).await {
            Ok(Ok(head)) => verdict(auth, &head),
            Ok(Err(why)) => Verdict::Failed(why),
            Err(_) => Verdict::Failed(format!("no answer within {} s", auth.timeout.as_secs())),
        }
    }

    /// POST `form` to `url` in the background (`listener_remove`,
    /// `mount_add`, `mount_remove`: nothing waits for the answer).
    pub fn tell(
        self: &std::sync::Arc<Self>,
        auth: std::sync::Arc<UrlAuth>,
        url: HttpUrl,
        form: Vec<(&'static str, String)>,
    ) {
        let client = self.clone();
        tokio::spawn(async move {
            if let Verdict::Failed(why) = client.ask(&auth, &url, &form).await {
                let action = form.first().map_or("", |(_, v)| v.as_str());
                tracing::warn!(%url, action, "URL auth backend: {why}");
            }
        });
    }

    /// Was this (mount, user, password, address) accepted in the last minute?
    pub fn accepted_lately(&self, key: impl std::hash::Hash) -> bool {
        let key = self.keys.hash_one(key);
        self.accepted.lock().get(&key).is_some_and(|at| at.elapsed() < REMEMBER)
    }

    pub fn remember_accepted(&self, key: impl std::hash::Hash) {
        let key = self.keys.hash_one(key);
        let mut accepted = self.accepted.lock();
        if accepted.len() >= REMEMBERED {
            accepted.retain(|_, at| at.elapsed() < REMEMBER);
            if accepted.len() >= REMEMBERED {
                accepted.clear();
            }
        }
        accepted.insert(key, Instant::now());
    }
}

fn verdict(auth: &UrlAuth, head: &Head) -> Verdict {
    let header = |name: &str| head.header(name);
    let (name, value) = &auth.auth_header;
    if header(name) == Some(value.as_str()) {
        let time_limit = header(&auth.timelimit_header).and_then(|s| s.parse().ok());
        return Verdict::Accepted { time_limit };
    }
    if head.status >= 500 {
        return Verdict::Failed(format!("answered {}", head.status));
    }
    Verdict::Refused { message: header("icecast-auth-message").map(crate::escape::header_value) }
}

/// Tell the mount's backend that its source started (`mount_add`) or
/// ended (`mount_remove`), if it asked to be told.
pub fn tell_mount(state: &crate::state::AppState, mount: &str, started: bool) {
    let Some(crate::config::ListenerAuth::Url(auth)) = &state.config.get().mount(mount).listener_auth else { return };
    let (url, action) = match started {
        true => (&auth.mount_add, "mount_add"),
        false => (&auth.mount_remove, "mount_remove"),
    };
    if let Some(url) = url {
        let form = vec![
            ("action", action.to_string()),
            ("mount", mount.to_string()),
            ("server", state.config.get().server.hostname.clone()),
            ("port", state.http_port.to_string()),
        ];
        state.url_auth.tell(auth.clone(), url.clone(), form);
    }
}

/// `stream_auth`, when the mount has it: `Some(true)` if the backend lets
/// this source stream (the source password is then not checked),
/// `Some(false)` if not, `None` when the mount has no `stream_auth`.
pub async fn stream_auth(
    state: &crate::state::AppState,
    mount: &str,
    creds: Option<&super::Credentials>,
    ip: std::net::IpAddr,
) -> Option<bool> {
    let Some(crate::config::ListenerAuth::Url(auth)) = &state.config.get().credentials_mount(mount).listener_auth
    else {
        return None;
    };
    let url = auth.stream_auth.as_ref()?;
    let form = vec![
        ("action", "stream_auth".to_string()),
        ("mount", mount.to_string()),
        ("ip", ip.to_string()),
        ("server", state.config.get().server.hostname.clone()),
        ("port", state.http_port.to_string()),
        ("user", creds.map_or(String::new(), |c| c.user.clone())),
        ("pass", creds.map_or(String::new(), |c| c.password.clone())),
    ];
    Some(match state.url_auth.ask(auth, url, &form).await {
        Verdict::Accepted { .. } => true,
        Verdict::Refused { .. } => false,
        Verdict::Failed(why) => {
            tracing::warn!(mount, %url, on_error_allow = auth.allow_on_error, "stream_auth backend: {why}");
            auth.allow_on_error
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(status: u16, headers: &[(&str, &str)]) -> Head {
        Head {
            status,
            reason: String::new(),
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn verdicts_follow_icecast() {
        let auth = UrlAuth::default();
        let yes = head(200, &[("icecast-auth-user", "1"), ("icecast-auth-timelimit", "30")]);
        assert_eq!(verdict(&auth, &yes), Verdict::Accepted { time_limit: Some(30) });
        let no = head(200, &[("icecast-auth-user", "0"), ("icecast-auth-message", "Subscription\r\nexpired")]);
        assert_eq!(verdict(&auth, &no), Verdict::Refused { message: Some("Subscriptionexpired".into()) });
        assert!(matches!(verdict(&auth, &head(502, &[])), Verdict::Failed(_)));
        assert_eq!(verdict(&auth, &head(404, &[])), Verdict::Refused { message: None });
    }
}

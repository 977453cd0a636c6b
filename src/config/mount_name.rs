//! What a mount may be called. A mount name becomes a URL path, a link on
//! the status page, a playlist entry and a log field, so it must be plain
//! (no characters that need escaping in a URL, nothing invisible or
//! direction-changing) and must not stand in for a path the server answers
//! itself: a source streaming to `/admin/stats` or `/live.mp3.m3u` would put
//! its bytes where an admin or a listener expects the server's.

/// Why a name cannot be a mount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MountNameError {
    #[error("invalid mount name: {0}")]
    Invalid(&'static str),
    #[error("mount name reserved for the server's own pages: {0}")]
    Reserved(&'static str),
}

/// Longest mount name, in bytes.
const MAX_LEN: usize = 256;

/// Paths the server answers itself (see `server::routes`).
const RESERVED_PATHS: [&str; 11] = [
    "/",
    "/status.xsl",
    "/status-events",
    "/index.html",
    "/status-json.xsl",
    "/admin.cgi",
    "/7.html",
    "/stats",
    "/currentsong",
    "/favicon.ico",
    "/metrics",
];
/// Path prefixes of the server's own pages: admin, the adaptive streams,
/// the page's scripts.
const RESERVED_PREFIXES: [&str; 4] = ["/admin", "/hls", "/dash", "/web"];
/// A mount with these endings would shadow another mount's playlist.
const PLAYLIST_SUFFIXES: [&str; 3] = [".m3u", ".pls", ".xspf"];

/// Check a mount name against every rule.
pub fn check(name: &str) -> Result<(), MountNameError> {
    use MountNameError::{Invalid, Reserved};
    if !name.starts_with('/') {
        return Err(Invalid("it must start with \"/\""));
    }
    if name.len() > MAX_LEN {
        return Err(Invalid("it is longer than 256 bytes"));
    }
    if name.contains("//") {
        return Err(Invalid("it has an empty segment (\"//\")"));
    }
    if name.split('/').any(|segment| segment == ".." || segment == ".") {
        return Err(Invalid("it has a \".\" or \"..\" segment"));
    }
    if let Some(c) = name.chars().find(|&c| !allowed(c)) {
        return Err(Invalid(if c.is_ascii() {
            "it has a control character, a space or one of \" # % ' < > ? \\ ^ ` { | }"
        } else {
            "it has an invisible, direction-changing or non-character code point"
        }));
    }
    if RESERVED_PATHS.contains(&name) {
        return Err(Reserved("the status pages"));
    }
    let lower = name.to_ascii_lowercase();
    if RESERVED_PREFIXES
        .iter()
        .any(|p| lower == *p || lower.starts_with(&format!("{p}/")) || lower == format!("{p}.cgi"))
    {
        return Err(Reserved("/admin, /hls, /dash and /web"));
    }
    if PLAYLIST_SUFFIXES.iter().any(|s| lower.ends_with(s)) {
        return Err(Reserved("names ending in .m3u, .pls or .xspf are playlists"));
    }
    Ok(())
}

/// A character a mount name may hold: printable, needing no escaping in a
/// URL path, and visible.
fn allowed(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_graphic() && !"\"#%'<>?\\^`{|}".contains(c);
    }
    crate::escape::visible(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_pass() {
        for name in ["/live.mp3", "/a/b.ogg", "/radio-1_hq.aac", "/радио.mp3", "/~dj/set(1).opus", "/live/"] {
            assert_eq!(check(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn malformed_names_are_invalid() {
        for name in [
            "live",
            "/a//b",
            "//evil.example/x",
            "/a/../b",
            "/a/./b",
            "/a b",
            "/a\"b",
            "/a%20b",
            "/a'b",
            "/a<b>",
            "/a\\b",
            "/a\u{202e}3pm.exe",
            "/a\u{200b}b",
            "/a\u{feff}",
            "/a\u{ffff}",
            "/a\u{85}b",
            "/a\0b",
        ] {
            assert!(matches!(check(name), Err(MountNameError::Invalid(_))), "{name:?}");
        }
        assert!(check(&format!("/{}", "a".repeat(256))).is_err());
    }

    #[test]
    fn server_paths_are_reserved() {
        for name in [
            "/",
            "/admin",
            "/admin/stats",
            "/Admin/killsource",
            "/admin.cgi",
            "/status-json.xsl",
            "/index.html",
            "/7.html",
            "/metrics",
            "/hls/live.mp3/master.m3u8",
            "/dash",
            "/live.mp3.m3u",
            "/x.PLS",
            "/y.xspf",
        ] {
            assert!(matches!(check(name), Err(MountNameError::Reserved(_))), "{name}");
        }
        assert_eq!(check("/administrator.mp3"), Ok(()));
        assert_eq!(check("/hlsradio"), Ok(()));
    }
}

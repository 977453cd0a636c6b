//! Playlists pointing at a mount's stream: `.m3u`, `.pls` and `.xspf`.

use crate::escape::{escape_xml, header_value};

/// Playlist kinds, by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Playlist {
    M3u,
    Pls,
    Xspf,
}

impl Playlist {
    /// Split `/live.mp3.m3u` into the playlist kind and `/live.mp3`.
    pub fn split(path: &str) -> Option<(Playlist, &str)> {
        let (mount, ext) = path.rsplit_once('.')?;
        let kind = match ext {
            "m3u" => Playlist::M3u,
            "pls" => Playlist::Pls,
            "xspf" => Playlist::Xspf,
            _ => return None,
        };
        Some((kind, mount))
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Playlist::M3u => "audio/x-mpegurl",
            Playlist::Pls => "audio/x-scpls",
            Playlist::Xspf => "application/xspf+xml",
        }
    }

    /// The playlist body for a stream at `url` titled `title` (a line of
    /// its own in `.m3u` and `.pls`: no control character survives);
    /// `.xspf` also carries what is playing now (`song`, if any).
    pub fn render(self, url: &str, title: &str, song: &str) -> String {
        let title = &header_value(title);
        let url = &header_value(url);
        match self {
            Playlist::M3u => format!("#EXTM3U\n#EXTINF:-1,{title}\n{url}\n"),
            Playlist::Pls => {
                format!("[playlist]\nNumberOfEntries=1\nFile1={url}\nTitle1={title}\nLength1=-1\nVersion=2\n")
            }
            Playlist::Xspf => {
                let now = match song.trim() {
                    "" => String::new(),
                    song => format!("<annotation>{}</annotation>", escape_xml(&header_value(song))),
                };
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<playlist version=\"1\" xmlns=\"http://xspf.org/ns/0/\">\n\
                     <trackList><track><location>{}</location><title>{}</title>{now}</track></trackList>\n</playlist>\n",
                    escape_xml(url),
                    escape_xml(title)
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_renders() {
        assert_eq!(Playlist::split("/live.mp3.m3u"), Some((Playlist::M3u, "/live.mp3")));
        assert_eq!(Playlist::split("/live.pls"), Some((Playlist::Pls, "/live")));
        assert_eq!(Playlist::split("/live.mp3"), None);
        let pls = Playlist::Pls.render("http://h:8000/a", "A", "");
        assert!(pls.contains("File1=http://h:8000/a\n"));
        assert!(Playlist::M3u.render("http://h/a", "T", "").ends_with("http://h/a\n"));
        assert!(Playlist::Xspf.render("http://h/a?x&y", "T", "").contains("http://h/a?x&amp;y"));
        let xspf = Playlist::Xspf.render("http://h/a", "T", "A & B");
        assert!(xspf.contains("<annotation>A &amp; B</annotation>"), "{xspf}");
        // A title cannot add a line (an entry) to the playlist.
        let m3u = Playlist::M3u.render("http://h/a", "T\rhttp://evil/\n", "");
        assert_eq!(m3u.lines().count(), 3, "{m3u:?}");
        assert!(!Playlist::Pls.render("http://h/a", "x\rFile2=http://evil/", "").contains('\r'));
    }
}

//! What every admin command answers with: one of a closed set of serde
//! documents in Icecast's element names, and their three renderings:
//! Icecast's XML (through `xml`), the JSON of Icecast 2.5's `.json`
//! endpoints (through serde_json), and the plain mount list relays read
//! (`.txt`). Commands build a document; they never format output.

use serde::{Serialize, Serializer};

use super::commands::{ClientList, FallbackList, SourceList};
use super::status::AdminStats;
use super::xml;

/// An admin command's answer.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Document {
    /// `/admin/stats`.
    Stats(Box<Icestats<AdminStats>>),
    /// `listmounts`, `streamlist`, and `moveclients` without a destination.
    Sources(Icestats<SourceList>),
    /// `listclients`.
    Clients(Icestats<ClientList>),
    /// `fallbacks` without a new fallback.
    Fallback(Icestats<FallbackList>),
    /// What an action answers: Icecast's `<iceresponse>`.
    Outcome(IceResponse),
}

/// Icecast's root element for every listing.
#[derive(Serialize)]
pub struct Icestats<T> {
    pub icestats: T,
}

/// `<iceresponse><message>…</message><return>1</return></iceresponse>`.
#[derive(Serialize)]
pub struct IceResponse {
    iceresponse: Outcome,
}

#[derive(Serialize)]
struct Outcome {
    message: String,
    /// 1 when done, 0 when well-formed but not carried out.
    #[serde(rename = "return")]
    done: u8,
}

impl Document {
    /// An action that was carried out.
    pub fn done(message: impl Into<String>) -> Document {
        Document::Outcome(IceResponse { iceresponse: Outcome { message: message.into(), done: 1 } })
    }

    /// Icecast's answer to a well-formed command that could not be carried
    /// out (`<return>0</return>`): panels read the message.
    pub fn failed(message: impl Into<String>) -> Document {
        Document::Outcome(IceResponse { iceresponse: Outcome { message: message.into(), done: 0 } })
    }

    pub fn to_xml(&self) -> Result<String, xml::Error> {
        xml::to_string(self)
    }

    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    /// The plain-text form (`.txt`; relays read `streamlist.txt`): the
    /// mounts a listing names, one per CRLF-ended line, or an action's
    /// message.
    pub fn to_text(&self) -> String {
        let line = |text: &str| format!("{text}\r\n");
        match self {
            Document::Stats(stats) => stats.icestats.mounts().map(line).collect(),
            Document::Sources(list) => list.icestats.source.iter().map(|s| line(&s.mount.0)).collect(),
            Document::Clients(clients) => clients.icestats.mounts().map(line).collect(),
            Document::Fallback(fallback) => fallback.icestats.mounts().map(line).collect(),
            Document::Outcome(response) => line(&response.iceresponse.message),
        }
    }
}

/// A value the server does not have: Icecast writes an empty element, and
/// the JSON has always said `""` for it (the admin page and panels read
/// that), so both renderings get an empty string.
pub fn or_empty<T: Serialize, S: Serializer>(value: &Option<T>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => value.serialize(serializer),
        None => serializer.serialize_str(""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_in_icecast_shape() {
        assert_eq!(
            Document::done("Source Removed").to_xml().unwrap(),
            "<?xml version=\"1.0\"?>\n<iceresponse><message>Source Removed</message><return>1</return></iceresponse>\n"
        );
        let failed: serde_json::Value =
            serde_json::from_str(&Document::failed("Client 7 not found").to_json().unwrap()).unwrap();
        assert_eq!(failed["iceresponse"]["return"], 0);
        assert_eq!(failed["iceresponse"]["message"], "Client 7 not found");
        assert_eq!(Document::done("Source Removed").to_text(), "Source Removed\r\n");
    }
}

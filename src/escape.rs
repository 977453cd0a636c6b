//! Every string from outside (a source's stream information and titles, a
//! request's path and headers) is escaped for where it lands: XML, a
//! response header, an ICY metadata block, a log line. One place for the
//! rules, so no output path invents its own. (JSON goes through serde_json,
//! HTML through the status page's `textContent`.)

/// Is a non-ASCII character visible and harmless in text shown to people:
/// not a C1 control, not invisible or direction-changing (bidi controls that
/// reorder what an operator reads), not a non-character?
pub fn visible(c: char) -> bool {
    let code = u32::from(c);
    let invisible = matches!(
        code,
        0x80..=0xA0 | 0xAD | 0x034F | 0x061C | 0x115F..=0x1160 | 0x17B4..=0x17B5 | 0x180B..=0x180F
            | 0x2000..=0x200F | 0x2028..=0x202F | 0x205F..=0x206F | 0x3000 | 0x3164 | 0xFE00..=0xFE0F
            | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFFB | 0xE0000..=0xE0FFF
    );
    // Non-characters: U+FDD0..U+FDEF and the last two code points of every plane.
    let non_character = (0xFDD0..=0xFDEF).contains(&code) || code & 0xFFFE == 0xFFFE;
    !invisible && !non_character
}

/// Text for XML content and attribute values. Characters XML 1.0 does not
/// allow (control characters but tab and newline, U+FFFE, U+FFFF) are
/// dropped: one of them would make the whole document ill-formed.
pub fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Text for one response header value: control characters dropped, so a
/// value can neither end the header nor start another.
pub fn header_value(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

/// Text for one field of a log line: quotes and backslashes escaped, control
/// characters (C0 and C1), invisible and direction-changing characters
/// written as `\x{…}`, so a request cannot forge a line, colour a terminal
/// or reorder what an operator reads.
pub fn escape_log(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_ascii_graphic() || c == ' ' => out.push(c),
            c if c.is_ascii() || c.is_control() || !visible(c) => out.push_str(&format!("\\x{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// A value inside an ICY block (`StreamTitle='…';`): the format has no
/// escapes, so `'` — which with a `;` after it would end the value and let
/// the rest pose as another field — becomes the typographic apostrophe in
/// a title, `%27` in a URL. Control characters are dropped.
pub fn icy_value(text: &str, url: bool) -> String {
    let quote = if url { "%27" } else { "\u{2019}" };
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\'' => out.push_str(quote),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A label value in the Prometheus text format: backslash, double quote
/// and line feed escaped as the format defines.
pub fn prometheus_label(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_stays_well_formed() {
        assert_eq!(escape_xml("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;");
        assert_eq!(escape_xml("a\u{0}b\u{1b}c\u{ffff}d\u{fffe}\u{85}e\tf\ng"), "abcde\tf\ng");
    }

    #[test]
    fn log_fields_are_escaped() {
        assert_eq!(escape_log("a\"b\\c"), "a\\\"b\\\\c");
        assert_eq!(escape_log("x\ny\r\u{1b}[31m"), "x\\x{a}y\\x{d}\\x{1b}[31m");
        assert_eq!(escape_log("\u{85}\u{9b}"), "\\x{85}\\x{9b}");
        assert_eq!(escape_log("evil\u{202e}gnp.exe\u{200b}"), "evil\\x{202e}gnp.exe\\x{200b}");
        assert_eq!(escape_log("café ☕"), "café ☕");
    }

    #[test]
    fn header_values_stay_one_header() {
        assert_eq!(header_value("Radio\r\nSet-Cookie: x\u{85}"), "RadioSet-Cookie: x");
    }

    #[test]
    fn icy_values_cannot_end_early() {
        assert_eq!(
            icy_value("Guns N' Roses';StreamUrl='http://evil", false),
            "Guns N\u{2019} Roses\u{2019};StreamUrl=\u{2019}http://evil"
        );
        assert_eq!(icy_value("http://x/?a='b'", true), "http://x/?a=%27b%27");
        assert_eq!(icy_value("a\nb", false), "ab");
    }

    #[test]
    fn prometheus_labels() {
        assert_eq!(prometheus_label("/a\\b\"c\nd"), "/a\\\\b\\\"c\\nd");
    }
}

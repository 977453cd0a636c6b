//! A small element tree from an XML document (icecast.xml is a few KB):
//! names, attributes, text and children, comments dropped.

use quick_xml::events::Event;
use quick_xml::Reader;

#[derive(Debug, Default, Clone)]
pub struct Node {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The trimmed text of child `name`, if present and not empty.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim()).filter(|t| !t.is_empty())
    }
}

/// Largest document read.
const MAX_XML: usize = 4 << 20;
/// Deepest nesting accepted.
const MAX_DEPTH: usize = 32;

/// The document's root element.
pub fn parse(text: &str) -> Result<Node, String> {
    if text.len() > MAX_XML {
        return Err(format!("{} bytes is too large for an icecast.xml", text.len()));
    }
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Node> = vec![Node::default()];
    loop {
        let event = reader.read_event().map_err(|e| format!("at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(start) | Event::Empty(start) if stack.len() > MAX_DEPTH => {
                return Err(format!("<{}> nested too deeply", start.name().as_ref()));
            }
            Event::Start(start) => stack.push(element(&start)?),
            Event::Empty(start) => {
                let node = element(&start)?;
                stack.last_mut().expect("the document node").children.push(node);
            }
            Event::End(_) => {
                let node = stack.pop().expect("matched by the reader");
                stack.last_mut().ok_or("unbalanced end tag")?.children.push(node);
            }
            Event::Text(text) => {
                stack.last_mut().expect("the document node").text.push_str(&text.xml10_content());
            }
            Event::CData(data) => {
                stack.last_mut().expect("the document node").text.push_str(&data);
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref().map_err(|e| e.to_string())? {
                    Some(c) => c.to_string(),
                    None => {
                        let name: &str = &reference;
                        quick_xml::escape::resolve_xml_entity(name)
                            .ok_or_else(|| format!("unknown entity &{name};"))?
                            .to_string()
                    }
                };
                stack.last_mut().expect("the document node").text.push_str(&resolved);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let document = stack.pop().filter(|_| stack.is_empty()).ok_or("unclosed element")?;
    document.children.into_iter().next().ok_or_else(|| "no root element".to_string())
}

fn element(start: &quick_xml::events::BytesStart<'_>) -> Result<Node, String> {
    let name = start.name().as_ref().to_string();
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| e.to_string())?;
        let value = attr.normalized_value(quick_xml::XmlVersion::Implicit1_0).map_err(|e| e.to_string())?.into_owned();
        attrs.push((attr.key.as_ref().to_string(), value));
    }
    Ok(Node { name, attrs, ..Node::default() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_text_entities_and_comments() {
        let root =
            parse("<?xml version=\"1.0\"?><a><!-- <b>x</b> --><b k=\"v&amp;w\">1 &lt; 2 &#x41;</b><c/></a>").unwrap();
        assert_eq!(root.name, "a");
        assert_eq!(root.children.len(), 2);
        assert_eq!(root.text_of("b"), Some("1 < 2 A"));
        assert_eq!(root.child("b").unwrap().attr("k"), Some("v&w"));
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("<a>&bogus;</a>").is_err());
    }
}

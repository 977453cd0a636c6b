//! The typed result every admin command returns, and its two renderings:
//! Icecast's XML and the JSON of Icecast 2.5's `.json` endpoints. Commands
//! build one `Elem` tree; they never format output themselves.

use serde_json::{Map, Value};

use crate::escape::escape_xml;

/// A leaf value: numbers stay numbers in JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum Leaf {
    Int(u64),
    Text(String),
}

impl From<u64> for Leaf {
    fn from(n: u64) -> Leaf {
        Leaf::Int(n)
    }
}

impl From<usize> for Leaf {
    fn from(n: usize) -> Leaf {
        Leaf::Int(n as u64)
    }
}

impl From<&str> for Leaf {
    fn from(s: &str) -> Leaf {
        Leaf::Text(s.to_string())
    }
}

impl From<String> for Leaf {
    fn from(s: String) -> Leaf {
        Leaf::Text(s)
    }
}

impl Leaf {
    fn text(&self) -> String {
        match self {
            Leaf::Int(n) => n.to_string(),
            Leaf::Text(s) => s.clone(),
        }
    }

    fn json(&self) -> Value {
        match self {
            Leaf::Int(n) => Value::from(*n),
            Leaf::Text(s) => Value::from(s.as_str()),
        }
    }
}

/// An element: attributes, then either a leaf or child elements.
#[derive(Debug, Clone, PartialEq)]
pub struct Elem {
    pub name: &'static str,
    pub attrs: Vec<(&'static str, Leaf)>,
    pub leaf: Option<Leaf>,
    pub children: Vec<Elem>,
    /// In JSON, siblings of this name always form an array (even of one).
    pub repeated: bool,
}

impl Elem {
    pub fn new(name: &'static str) -> Elem {
        Elem { name, attrs: Vec::new(), leaf: None, children: Vec::new(), repeated: false }
    }

    /// A repeated element (`source`, `listener`): an array in JSON.
    pub fn item(name: &'static str) -> Elem {
        Elem { repeated: true, ..Elem::new(name) }
    }

    pub fn attr(mut self, name: &'static str, value: impl Into<Leaf>) -> Elem {
        self.attrs.push((name, value.into()));
        self
    }

    /// Add a child holding one value.
    pub fn field(mut self, name: &'static str, value: impl Into<Leaf>) -> Elem {
        self.children.push(Elem { leaf: Some(value.into()), ..Elem::new(name) });
        self
    }

    /// Add a child holding an optional value (empty element when absent).
    pub fn opt(self, name: &'static str, value: Option<impl Into<Leaf>>) -> Elem {
        match value {
            Some(v) => self.field(name, v),
            None => self.field(name, ""),
        }
    }

    pub fn child(mut self, child: Elem) -> Elem {
        self.children.push(child);
        self
    }

    pub fn children(mut self, children: impl IntoIterator<Item = Elem>) -> Elem {
        self.children.extend(children);
        self
    }

    /// Icecast's XML.
    pub fn to_xml(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\"?>\n");
        self.write_xml(&mut out);
        out.push('\n');
        out
    }

    fn write_xml(&self, out: &mut String) {
        out.push('<');
        out.push_str(self.name);
        for (name, value) in &self.attrs {
            out.push_str(&format!(" {name}=\"{}\"", escape_xml(&value.text())));
        }
        if self.leaf.is_none() && self.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        if let Some(leaf) = &self.leaf {
            out.push_str(&escape_xml(&leaf.text()));
        }
        for child in &self.children {
            child.write_xml(out);
        }
        out.push_str(&format!("</{}>", self.name));
    }

    /// `{"<name>": …}`, as Icecast 2.5's JSON admin output.
    pub fn to_json(&self) -> String {
        let mut root = Map::new();
        root.insert(self.name.to_string(), self.json_value());
        Value::Object(root).to_string()
    }

    fn json_value(&self) -> Value {
        if let (Some(leaf), true, true) = (&self.leaf, self.attrs.is_empty(), self.children.is_empty()) {
            return leaf.json();
        }
        let mut map = Map::new();
        for (name, value) in &self.attrs {
            map.insert(name.to_string(), value.json());
        }
        if let Some(leaf) = &self.leaf {
            map.insert("value".into(), leaf.json());
        }
        for child in &self.children {
            let value = child.json_value();
            match map.get_mut(child.name) {
                Some(Value::Array(items)) if child.repeated => items.push(value),
                _ if child.repeated => {
                    map.insert(child.name.to_string(), Value::Array(vec![value]));
                }
                _ => {
                    map.insert(child.name.to_string(), value);
                }
            }
        }
        Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Elem {
        Elem::new("icestats").child(
            Elem::item("source")
                .attr("mount", "/a&b")
                .field("Listeners", 2u64)
                .child(Elem::item("listener").attr("id", 7u64).field("IP", "127.0.0.1")),
        )
    }

    #[test]
    fn renders_xml() {
        assert_eq!(
            sample().to_xml(),
            "<?xml version=\"1.0\"?>\n<icestats><source mount=\"/a&amp;b\"><Listeners>2</Listeners>\
             <listener id=\"7\"><IP>127.0.0.1</IP></listener></source></icestats>\n"
        );
    }

    #[test]
    fn renders_json_with_arrays_for_repeated() {
        let json: Value = serde_json::from_str(&sample().to_json()).unwrap();
        assert_eq!(json["icestats"]["source"][0]["mount"], "/a&b");
        assert_eq!(json["icestats"]["source"][0]["Listeners"], 2);
        assert_eq!(json["icestats"]["source"][0]["listener"][0]["IP"], "127.0.0.1");
    }
}

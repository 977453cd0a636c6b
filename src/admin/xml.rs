//! Icecast's XML from the same serde types the JSON is made from, so the
//! two renderings of a document cannot drift apart.
//!
//! The mapping: a document is a struct whose fields are its root elements
//! (`{"icestats": {…}}` is `<icestats>…</icestats>`); a struct is an element
//! with children; a sequence is its element repeated (an array in JSON); a
//! field wrapped in [`Attr`] is an attribute of the element holding it (a
//! plain field in JSON); `None` and `()` are an empty element; numbers and
//! strings are text, escaped by `escape_xml`. Maps, tuples and data-carrying
//! enum variants have no Icecast shape and are refused.

use std::borrow::Cow;
use std::fmt;

use serde::ser::{self, Impossible, Serialize};

use crate::escape::escape_xml;

/// The newtype name that marks an attribute to this serializer; any other
/// serializer (serde_json) sees a plain newtype and writes its value.
const ATTR: &str = "$floe::admin::xml::Attr";

/// A value written as an XML attribute of its parent element (`<source
/// mount="/a">`); in JSON, a field like any other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr<T>(pub T);

impl<T: Serialize> Serialize for Attr<T> {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_newtype_struct(ATTR, &self.0)
    }
}

/// A document shape this serializer has no XML for (a programming error,
/// caught by the documents' unit tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Error {
        Error(msg.to_string())
    }
}

/// The document as Icecast's XML, with its declaration.
pub fn to_string<T: Serialize + ?Sized>(document: &T) -> Result<String, Error> {
    render(document, Case::AsNamed)
}

/// The document with every element and attribute name in capitals: SHOUTcast
/// DNAS writes its XML so, and its JSON with the same names in lower case.
pub fn to_string_uppercase<T: Serialize + ?Sized>(document: &T) -> Result<String, Error> {
    render(document, Case::Upper)
}

fn render<T: Serialize + ?Sized>(document: &T, case: Case) -> Result<String, Error> {
    let mut out = String::from("<?xml version=\"1.0\"?>\n");
    document.serialize(Node { name: None, case, into: Target::Element { attrs: None, out: &mut out } })?;
    out.push('\n');
    Ok(out)
}

/// How names are written.
#[derive(Debug, Clone, Copy)]
enum Case {
    AsNamed,
    Upper,
}

impl Case {
    fn apply(self, name: &'static str) -> Cow<'static, str> {
        match self {
            Case::AsNamed => Cow::Borrowed(name),
            Case::Upper => Cow::Owned(name.to_ascii_uppercase()),
        }
    }
}

/// Where a value lands.
enum Target<'a> {
    /// As an element (or elements, for a sequence) appended to `out`;
    /// `attrs` are its parent's attributes, for an [`Attr`] field.
    Element { attrs: Option<&'a mut String>, out: &'a mut String },
    /// As an attribute appended to its element's attribute list.
    Attribute(&'a mut String),
}

/// Serializes one value named `name` (the field it is in). The document
/// itself has no name: its fields are written at the top.
struct Node<'a> {
    name: Option<&'static str>,
    case: Case,
    into: Target<'a>,
}

impl Node<'_> {
    fn named(&self) -> Result<Cow<'static, str>, Error> {
        let name = self.name.ok_or_else(|| Error("a document must be a struct of root elements".into()))?;
        Ok(self.case.apply(name))
    }

    fn text(self, text: &str) -> Result<(), Error> {
        let name = self.named()?;
        let text = escape_xml(text);
        match self.into {
            Target::Element { out, .. } => {
                out.push_str(&format!("<{name}>{text}</{name}>"));
            }
            Target::Attribute(attrs) => attrs.push_str(&format!(" {name}=\"{text}\"")),
        }
        Ok(())
    }

    fn empty(self) -> Result<(), Error> {
        let name = self.named()?;
        match self.into {
            Target::Element { out, .. } => out.push_str(&format!("<{name}/>")),
            // `Attr(None)` is left out. (An `Option<Attr<_>>` that is
            // `None` never gets here: it is an empty element, so documents
            // put the `Option` inside the `Attr`.)
            Target::Attribute(_) => {}
        }
        Ok(())
    }

    fn unsupported<T>(what: &str) -> Result<T, Error> {
        Err(Error(format!("{what} has no Icecast XML shape")))
    }
}

macro_rules! as_text {
    ($($method:ident: $ty:ty),* $(,)?) => {
        $(fn $method(self, value: $ty) -> Result<(), Error> {
            self.text(&value.to_string())
        })*
    };
}

impl<'a> ser::Serializer for Node<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Repeated<'a>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Element<'a>;
    type SerializeStructVariant = Impossible<(), Error>;

    as_text!(
        serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64,
        serialize_f32: f32, serialize_f64: f64, serialize_char: char, serialize_str: &str,
    );

    /// Icecast writes flags as 0 and 1.
    fn serialize_bool(self, value: bool) -> Result<(), Error> {
        self.text(if value { "1" } else { "0" })
    }

    fn serialize_bytes(self, _: &[u8]) -> Result<(), Error> {
        Node::unsupported("bytes")
    }

    fn serialize_none(self) -> Result<(), Error> {
        self.empty()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Error> {
        self.empty()
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        self.empty()
    }

    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<(), Error> {
        self.text(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, name: &'static str, value: &T) -> Result<(), Error> {
        match (name, self.into) {
            (ATTR, Target::Element { attrs: Some(attrs), .. }) => {
                value.serialize(Node { name: self.name, case: self.case, into: Target::Attribute(attrs) })
            }
            (ATTR, _) => Node::unsupported("an attribute outside an element"),
            (_, into) => value.serialize(Node { name: self.name, case: self.case, into }),
        }
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Node::unsupported("an enum variant with data")
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Repeated<'a>, Error> {
        let name = self.name.ok_or_else(|| Error("a document must be a struct of root elements".into()))?;
        match self.into {
            Target::Element { out, .. } => Ok(Repeated { name, case: self.case, out }),
            Target::Attribute(_) => Node::unsupported("a list in an attribute"),
        }
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        Node::unsupported("a tuple")
    }

    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, Error> {
        Node::unsupported("a tuple struct")
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Node::unsupported("an enum variant with data")
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Node::unsupported("a map")
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Element<'a>, Error> {
        match self.into {
            Target::Element { out, .. } => Ok(Element {
                name: self.name.map(|n| self.case.apply(n)),
                case: self.case,
                attrs: String::new(),
                body: String::new(),
                out,
            }),
            Target::Attribute(_) => Node::unsupported("a struct in an attribute"),
        }
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Node::unsupported("an enum variant with data")
    }
}

/// A sequence: its element repeated under the field's name.
struct Repeated<'a> {
    name: &'static str,
    case: Case,
    out: &'a mut String,
}

impl ser::SerializeSeq for Repeated<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(Node {
            name: Some(self.name),
            case: self.case,
            into: Target::Element { attrs: None, out: self.out },
        })
    }

    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

/// A struct: attributes and children gathered, then written as one element
/// (or, for the unnamed document, its children alone).
struct Element<'a> {
    name: Option<Cow<'static, str>>,
    case: Case,
    attrs: String,
    body: String,
    out: &'a mut String,
}

impl ser::SerializeStruct for Element<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        let attrs = self.name.is_some().then_some(&mut self.attrs);
        value.serialize(Node { name: Some(key), case: self.case, into: Target::Element { attrs, out: &mut self.body } })
    }

    fn end(self) -> Result<(), Error> {
        let Element { name, attrs, body, out, .. } = self;
        match name {
            None => out.push_str(&body),
            Some(name) if body.is_empty() => out.push_str(&format!("<{name}{attrs}/>")),
            Some(name) => out.push_str(&format!("<{name}{attrs}>{body}</{name}>")),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::*;

    #[derive(Serialize)]
    struct Doc {
        icestats: Stats,
    }

    #[derive(Serialize)]
    struct Stats {
        host: &'static str,
        source: Vec<Source>,
    }

    #[derive(Serialize)]
    struct Source {
        mount: Attr<&'static str>,
        #[serde(rename = "Listeners")]
        listeners: u64,
        fallback: Option<&'static str>,
        public: bool,
        listener: Vec<Listener>,
    }

    #[derive(Serialize)]
    struct Listener {
        id: Attr<u64>,
        #[serde(rename = "IP")]
        ip: &'static str,
    }

    fn doc(sources: Vec<Source>) -> Doc {
        Doc { icestats: Stats { host: "h<1>", source: sources } }
    }

    fn source(mount: &'static str, listeners: Vec<Listener>) -> Source {
        Source { mount: Attr(mount), listeners: 2, fallback: None, public: true, listener: listeners }
    }

    #[test]
    fn one_type_renders_icecast_xml_and_json() {
        let document = doc(vec![source("/a&b", vec![Listener { id: Attr(7), ip: "127.0.0.1" }])]);
        assert_eq!(
            to_string(&document).unwrap(),
            "<?xml version=\"1.0\"?>\n<icestats><host>h&lt;1&gt;</host><source mount=\"/a&amp;b\">\
             <Listeners>2</Listeners><fallback/><public>1</public>\
             <listener id=\"7\"><IP>127.0.0.1</IP></listener></source></icestats>\n"
        );
        let json: serde_json::Value = serde_json::to_value(&document).unwrap();
        assert_eq!(json["icestats"]["source"][0]["mount"], "/a&b", "an attribute is a plain field in JSON");
        assert_eq!(json["icestats"]["source"][0]["listener"][0]["id"], 7);
    }

    #[test]
    fn sequences_repeat_and_empty_ones_vanish() {
        let document = doc(vec![source("/a", vec![]), source("/b", vec![])]);
        let xml = to_string(&document).unwrap();
        assert_eq!(xml.matches("<source mount=").count(), 2);
        assert!(!xml.contains("<listener"), "{xml}");
        let none = to_string(&doc(vec![])).unwrap();
        assert_eq!(none, "<?xml version=\"1.0\"?>\n<icestats><host>h&lt;1&gt;</host></icestats>\n");
    }

    #[test]
    fn control_characters_cannot_break_the_document() {
        let document = doc(vec![source("/a\u{1}\"x", vec![])]);
        assert!(to_string(&document).unwrap().contains("<source mount=\"/a&quot;x\">"));
    }

    #[test]
    fn shapes_without_xml_are_refused() {
        assert!(to_string(&std::collections::HashMap::from([("a", 1)])).is_err());
        assert!(to_string(&7u32).is_err(), "a document is a struct of root elements");
        #[derive(Serialize)]
        struct Loose {
            id: Attr<u64>,
        }
        assert!(to_string(&Loose { id: Attr(1) }).is_err(), "an attribute needs an element");
    }
}

//! A parsed JSON document that keeps what Go's decoder looks at and `serde_json::Value` loses:
//! the order of object keys (with duplicates, so the last one wins as in Go) and whether a
//! number was written as an integer literal (`1`) or with a fraction or exponent (`1.0`, `1e9`),
//! which Go refuses for integer fields.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON number as written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Num {
    /// A non-negative integer literal that fits in u64.
    U(u64),
    /// A negative integer literal that fits in i64.
    I(i64),
    /// A literal with a fraction or an exponent, or an integer beyond 64 bits, with its text
    /// when the document was parsed here (Go's errors quote it: `number 1e9`).
    F(f64, Option<Box<str>>),
}

impl Num {
    /// The literal as Go's error messages quote it (`number 1.5`).
    pub(crate) fn literal(&self) -> String {
        match self {
            Num::U(u) => u.to_string(),
            Num::I(i) => i.to_string(),
            Num::F(_, Some(text)) => text.to_string(),
            Num::F(f, None) if f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.1}"),
            Num::F(f, None) => f.to_string(),
        }
    }

    pub(crate) fn as_f64(&self) -> f64 {
        match self {
            Num::U(u) => *u as f64,
            Num::I(i) => *i as f64,
            Num::F(f, _) => *f,
        }
    }
}

/// The number literals of a JSON document, in document order (strings skipped).
fn number_literals(body: &[u8]) -> Vec<&str> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'"' => {
                i += 1;
                while i < body.len() && body[i] != b'"' {
                    if body[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < body.len()
                    && matches!(body[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    i += 1;
                }
                out.push(std::str::from_utf8(&body[start..i]).unwrap_or_default());
            }
            _ => i += 1,
        }
    }
    out
}

/// Parses `body`, keeping the text of non-integer number literals.
pub(crate) fn parse(body: &[u8]) -> serde_json::Result<Node> {
    let mut node: Node = serde_json::from_slice(body)?;
    let literals = number_literals(body);
    if count_numbers(&node) == literals.len() {
        attach(&mut node, &mut literals.into_iter());
    }
    Ok(node)
}

fn count_numbers(n: &Node) -> usize {
    match n {
        Node::Num(_) => 1,
        Node::Arr(a) => a.iter().map(count_numbers).sum(),
        Node::Obj(o) => o.iter().map(|(_, v)| count_numbers(v)).sum(),
        _ => 0,
    }
}

fn attach<'a>(n: &mut Node, literals: &mut impl Iterator<Item = &'a str>) {
    match n {
        Node::Num(num) => {
            let text = literals.next();
            if let (Num::F(_, slot), Some(text)) = (num, text) {
                *slot = Some(text.into());
            }
        }
        Node::Arr(a) => a.iter_mut().for_each(|v| attach(v, literals)),
        Node::Obj(o) => o.iter_mut().for_each(|(_, v)| attach(v, literals)),
        _ => {}
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Num(Num),
    Str(String),
    Arr(Vec<Node>),
    /// Keys in document order, duplicates kept.
    Obj(Vec<(String, Node)>),
}

impl Node {
    /// Go's name for the JSON kind in `cannot unmarshal <kind> into ...`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "bool",
            Node::Num(_) => "number",
            Node::Str(_) => "string",
            Node::Arr(_) => "array",
            Node::Obj(_) => "object",
        }
    }

    /// A `serde_json::Value` as a node (key order as the map iterates).
    pub(crate) fn from_value(v: serde_json::Value) -> Node {
        use serde_json::Value;
        match v {
            Value::Null => Node::Null,
            Value::Bool(b) => Node::Bool(b),
            Value::Number(n) => Node::Num(if let Some(u) = n.as_u64() {
                Num::U(u)
            } else if let Some(i) = n.as_i64() {
                Num::I(i)
            } else {
                Num::F(n.as_f64().unwrap_or(f64::NAN), None)
            }),
            Value::String(s) => Node::Str(s),
            Value::Array(a) => Node::Arr(a.into_iter().map(Node::from_value).collect()),
            Value::Object(m) => Node::Obj(
                m.into_iter()
                    .map(|(k, v)| (k, Node::from_value(v)))
                    .collect(),
            ),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Node, E> {
        Ok(Node::Bool(b))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Node, E> {
        Ok(Node::Num(Num::U(u)))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Node, E> {
        // serde_json hands non-negative integers to visit_u64; keep one form per value anyway.
        Ok(Node::Num(match u64::try_from(i) {
            Ok(u) => Num::U(u),
            Err(_) => Num::I(i),
        }))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Node, E> {
        Ok(Node::Num(Num::F(f, None)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Node, E> {
        Ok(Node::Str(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Node, E> {
        Ok(Node::Str(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(n) = seq.next_element()? {
            out.push(n);
        }
        Ok(Node::Arr(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut out = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Node>()? {
            out.push((k, v));
        }
        Ok(Node::Obj(out))
    }
}

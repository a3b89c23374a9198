//! The deserializer over a [`Node`] that applies encoding/json's rules while serde's derived
//! impls drive it. Only `deserialize_struct` is told a type's field names, so that is where keys
//! are matched to fields (exact match first, else case-folded), unknown keys dropped, duplicates
//! resolved last-wins and every field not given (or given as `null`) handed over as `null`,
//! which every other method reads as the Go zero value of what it was asked for. Maps keep
//! their keys as sent (labels are not case-folded). Numbers are checked as Go's `strconv`
//! would for the integer width asked for.

use serde::de::value::{StrDeserializer, StringDeserializer};
use serde::de::{
    DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

use super::node::{Node, Num};
use super::Error;

/// Where a value sits, for Go's `into Go struct field <Struct>.<path> of type <T>`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ctx {
    /// The innermost struct being decoded.
    strukt: &'static str,
    /// JSON field names from the document's root, dotted.
    path: String,
    /// The JSON pointer of the value, kept only while [`struct_pointers`] traces a decode.
    ptr: Option<String>,
}

thread_local! {
    /// The pointers of the objects decoded as structs, while a trace runs on this thread.
    static TRACE: std::cell::RefCell<Option<Vec<String>>> = const { std::cell::RefCell::new(None) };
}

/// The JSON pointers (RFC 6901) of the objects in `node` that decoding `T` reads as structs,
/// whose keys Go's rules apply to (the others are maps or untyped JSON, kept as sent).
pub(crate) fn struct_pointers<T: serde::de::DeserializeOwned>(
    node: Node,
) -> Result<Vec<String>, Error> {
    TRACE.with(|t| *t.borrow_mut() = Some(Vec::new()));
    let res = T::deserialize(De {
        node,
        ctx: Ctx {
            ptr: Some(String::new()),
            ..Ctx::default()
        },
    });
    let found = TRACE.with(|t| t.borrow_mut().take()).unwrap_or_default();
    res.map(|_| found)
}

fn child_ptr(ptr: &Option<String>, token: &str) -> Option<String> {
    ptr.as_ref()
        .map(|p| format!("{p}/{}", token.replace('~', "~0").replace('/', "~1")))
}

impl Ctx {
    fn field(&self, strukt: &'static str, name: &str) -> Ctx {
        let path = if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.path)
        };
        Ctx {
            strukt,
            path,
            ptr: child_ptr(&self.ptr, name),
        }
    }

    /// A map value or an array element: the same Go field path, a deeper pointer.
    fn item(&self, token: &str) -> Ctx {
        Ctx {
            strukt: self.strukt,
            path: self.path.clone(),
            ptr: child_ptr(&self.ptr, token),
        }
    }

    fn mismatch(&self, what: &str, go_type: &str) -> Error {
        if self.path.is_empty() {
            Error::type_error(format!(
                "json: cannot unmarshal {what} into Go value of type {go_type}"
            ))
        } else {
            Error::type_error(format!(
                "json: cannot unmarshal {what} into Go struct field {}.{} of type {go_type}",
                self.strukt, self.path
            ))
        }
    }
}

pub(crate) struct De {
    pub(crate) node: Node,
    pub(crate) ctx: Ctx,
}

impl De {
    pub(crate) fn root(node: Node) -> De {
        De {
            node,
            ctx: Ctx::default(),
        }
    }

    fn wrong(&self, go_type: &str) -> Error {
        self.ctx.mismatch(self.node.kind(), go_type)
    }

    /// An integer of `bits` width: Go's `strconv.ParseInt`/`ParseUint` on the literal, so
    /// `1.0`, `1e3` and out-of-range values are refused.
    fn int(&self, signed: bool, bits: u32, go_type: &str) -> Result<i128, Error> {
        let n = match &self.node {
            Node::Null => return Ok(0),
            Node::Num(n) => n,
            _ => return Err(self.wrong(go_type)),
        };
        let v = match n {
            Num::U(u) => i128::from(*u),
            Num::I(i) => i128::from(*i),
            Num::F(..) => {
                return Err(self
                    .ctx
                    .mismatch(&format!("number {}", n.literal()), go_type))
            }
        };
        let (min, max) = if signed {
            (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
        } else {
            (0, (1i128 << bits) - 1)
        };
        if v < min || v > max {
            return Err(self
                .ctx
                .mismatch(&format!("number {}", n.literal()), go_type));
        }
        Ok(v)
    }

    fn float(&self, go_type: &str, max: f64) -> Result<f64, Error> {
        match &self.node {
            Node::Null => Ok(0.0),
            Node::Num(n) if n.as_f64().abs() <= max => Ok(n.as_f64()),
            Node::Num(n) => Err(self
                .ctx
                .mismatch(&format!("number {}", n.literal()), go_type)),
            _ => Err(self.wrong(go_type)),
        }
    }
}

macro_rules! int_method {
    ($method:ident, $visit:ident, $t:ty, $signed:expr, $bits:expr, $go:expr) => {
        fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
            let n = self.int($signed, $bits, $go)?;
            // The range was checked against the width asked for: this cannot fail.
            v.$visit(<$t>::try_from(n).map_err(|_| self.wrong($go))?)
        }
    };
}

impl<'de> Deserializer<'de> for De {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let ctx = self.ctx;
        match self.node {
            Node::Null => v.visit_unit(),
            Node::Bool(b) => v.visit_bool(b),
            Node::Num(Num::U(u)) => v.visit_u64(u),
            Node::Num(Num::I(i)) => v.visit_i64(i),
            Node::Num(Num::F(f, _)) => v.visit_f64(f),
            Node::Str(s) => v.visit_string(s),
            Node::Arr(a) => v.visit_seq(Seq::new(a, ctx)),
            Node::Obj(o) => v.visit_map(Map::raw(o, ctx)),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.node {
            Node::Null => v.visit_bool(false),
            Node::Bool(b) => v.visit_bool(b),
            _ => Err(self.wrong("bool")),
        }
    }

    int_method!(deserialize_i8, visit_i64, i64, true, 8, "int8");
    int_method!(deserialize_i16, visit_i64, i64, true, 16, "int16");
    int_method!(deserialize_i32, visit_i64, i64, true, 32, "int32");
    int_method!(deserialize_i64, visit_i64, i64, true, 64, "int64");
    int_method!(deserialize_u8, visit_u64, u64, false, 8, "uint8");
    int_method!(deserialize_u16, visit_u64, u64, false, 16, "uint16");
    int_method!(deserialize_u32, visit_u64, u64, false, 32, "uint32");
    int_method!(deserialize_u64, visit_u64, u64, false, 64, "uint64");

    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let f = self.float("float32", f64::from(f32::MAX))?;
        // Within f32's range (checked): the cast only rounds, as Go's conversion does.
        #[allow(clippy::cast_possible_truncation)]
        let f = f as f32;
        v.visit_f32(f)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_f64(self.float("float64", f64::MAX)?)
    }

    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_string(v)
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_string(v)
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.node {
            Node::Null => v.visit_str(""),
            Node::Str(s) => v.visit_string(s),
            _ => Err(self.wrong("string")),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_any(v)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_any(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.node {
            Node::Null => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        v.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.node {
            Node::Null => v.visit_seq(Seq::new(Vec::new(), self.ctx)),
            Node::Arr(a) => v.visit_seq(Seq::new(a, self.ctx)),
            _ => Err(self.wrong("slice")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, Error> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        v: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.node {
            Node::Null => v.visit_map(Map::raw(Vec::new(), self.ctx)),
            Node::Obj(o) => v.visit_map(Map::raw(o, self.ctx)),
            _ => Err(self.wrong("map")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        let entries = match self.node {
            Node::Null => Vec::new(),
            Node::Obj(o) => {
                if let Some(p) = &self.ctx.ptr {
                    TRACE.with(|t| t.borrow_mut().as_mut().map(|t| t.push(p.clone())));
                }
                o
            }
            _ => return Err(self.wrong(name)),
        };
        v.visit_map(Map::fields(entries, fields, name, &self.ctx))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        match self.node {
            Node::Str(s) => v.visit_enum(IntoDeserializer::<Error>::into_deserializer(s)),
            Node::Obj(mut o) if o.len() == 1 => {
                let (variant, node) = o.remove(0);
                v.visit_enum(Enum {
                    variant,
                    value: De {
                        node,
                        ctx: self.ctx,
                    },
                })
            }
            _ => Err(self.wrong(name)),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_string(v)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_unit()
    }
}

/// Go's key folding (encoding/json `foldName`): ASCII letters upper-cased, other runes mapped
/// through lower then upper case, so `k`, `K` and the Kelvin sign all fold alike.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c.to_ascii_uppercase());
        } else {
            for l in c.to_lowercase() {
                out.extend(l.to_uppercase());
            }
        }
    }
    out
}

/// The declared field a JSON key sets: the exact name if there is one, else the first field
/// whose name folds to the same string (Go's rule).
fn match_field(key: &str, fields: &'static [&'static str]) -> Option<&'static str> {
    if let Some(f) = fields.iter().find(|f| **f == key) {
        return Some(f);
    }
    let folded = fold(key);
    fields.iter().find(|f| fold(f) == folded).copied()
}

/// Keys and values of an object, handed to a struct's or a map's visitor.
struct Map {
    entries: std::vec::IntoIter<(Key, Node)>,
    value: Option<(Node, Ctx)>,
    ctx: Ctx,
    strukt: Option<&'static str>,
}

enum Key {
    Field(&'static str),
    Raw(String),
}

impl Map {
    /// A map's entries: keys as sent, duplicates left to the map's own insert (last wins).
    fn raw(entries: Vec<(String, Node)>, ctx: Ctx) -> Map {
        Map {
            entries: entries
                .into_iter()
                .map(|(k, v)| (Key::Raw(k), v))
                .collect::<Vec<_>>()
                .into_iter(),
            value: None,
            ctx,
            strukt: None,
        }
    }

    /// A struct's entries: each key set to its field's name, unknown keys and nulls dropped, a
    /// later key for the same field replacing an earlier one, then every field not given added
    /// as null (the zero value), so no derived impl sees a missing or duplicate field.
    fn fields(
        entries: Vec<(String, Node)>,
        fields: &'static [&'static str],
        strukt: &'static str,
        ctx: &Ctx,
    ) -> Map {
        let mut out: Vec<(Key, Node)> = Vec::with_capacity(fields.len());
        for (k, v) in entries {
            let Some(f) = match_field(&k, fields) else {
                continue;
            };
            if v == Node::Null {
                continue;
            }
            match out
                .iter_mut()
                .find(|(have, _)| matches!(have, Key::Field(h) if *h == f))
            {
                Some(slot) => slot.1 = v,
                None => out.push((Key::Field(f), v)),
            }
        }
        // serde lists a field's aliases with its name: one that folds like a field already
        // present is taken for that field, not added again (which serde calls a duplicate).
        for f in fields {
            let folded = fold(f);
            if !out
                .iter()
                .any(|(have, _)| matches!(have, Key::Field(h) if fold(h) == folded))
            {
                out.push((Key::Field(f), Node::Null));
            }
        }
        Map {
            entries: out.into_iter(),
            value: None,
            ctx: ctx.clone(),
            strukt: Some(strukt),
        }
    }
}

impl<'de> MapAccess<'de> for Map {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, node)) = self.entries.next() else {
            return Ok(None);
        };
        match key {
            Key::Field(f) => {
                let strukt = self.strukt.unwrap_or_default();
                self.value = Some((node, self.ctx.field(strukt, f)));
                seed.deserialize(StrDeserializer::<Error>::new(f)).map(Some)
            }
            Key::Raw(k) => {
                self.value = Some((node, self.ctx.item(&k)));
                seed.deserialize(StringDeserializer::<Error>::new(k))
                    .map(Some)
            }
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, Error> {
        let (node, ctx) = self
            .value
            .take()
            .ok_or_else(|| Error::type_error("json: value asked for before its key"))?;
        seed.deserialize(De { node, ctx })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct Seq {
    items: std::iter::Enumerate<std::vec::IntoIter<Node>>,
    ctx: Ctx,
}

impl Seq {
    fn new(items: Vec<Node>, ctx: Ctx) -> Seq {
        Seq {
            items: items.into_iter().enumerate(),
            ctx,
        }
    }
}

impl<'de> SeqAccess<'de> for Seq {
    type Error = Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Error> {
        match self.items.next() {
            None => Ok(None),
            Some((i, node)) => seed
                .deserialize(De {
                    node,
                    ctx: self.ctx.item(&i.to_string()),
                })
                .map(Some),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// `{"Variant": value}` for an externally tagged enum.
struct Enum {
    variant: String,
    value: De,
}

impl<'de> EnumAccess<'de> for Enum {
    type Error = Error;
    type Variant = De;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, De), Error> {
        let v = seed.deserialize(StringDeserializer::<Error>::new(self.variant))?;
        Ok((v, self.value))
    }
}

impl<'de> VariantAccess<'de> for De {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, Error> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, Error> {
        self.deserialize_seq(v)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_struct("", fields, v)
    }
}

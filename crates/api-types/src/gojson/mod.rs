//! Request bodies decoded by Go's encoding/json rules, as dockerd decodes them.
//!
//! dockerd is a Go program, so what clients send is whatever Go's decoder accepts: `null` for a
//! field leaves its zero value, object keys match struct fields case-insensitively (an exact
//! match preferred), unknown keys are ignored, a repeated key replaces the earlier one, missing
//! fields are zero, and an integer field refuses `1.5`, `1.0`, `1e9` and values out of its
//! range (`json: cannot unmarshal number 1.5 into Go struct field HostConfig.HostConfig.Memory
//! of type int64`). serde's derived impls are strict on all of these, so every request body
//! goes through [`from_slice`] (or [`from_str`] / [`from_value`]): the JSON is parsed into a
//! tree that keeps key order and number literals, and the target type is deserialized from it
//! by a deserializer that applies those rules in the one place that knows a type's field
//! names, `deserialize_struct` (see `de.rs`). The wire types keep plain serde derives.
//!
//! Limits, by serde's design: `#[serde(flatten)]` and untagged enums buffer values into serde's
//! private content type and decode them without these rules, so request types express Go's
//! struct embedding with [`promoted`] instead of `flatten`, and one-of types (`StrSlice`) are
//! written as visitors.

mod de;
mod node;
pub mod variants;

use std::fmt;

use serde::de::{DeserializeOwned, IntoDeserializer, MapAccess, Visitor};
use serde::Deserializer;

pub use de::fold;
use node::Node;

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    syntax: bool,
    message: String,
}

impl Error {
    pub(crate) fn type_error(message: impl Into<String>) -> Error {
        Error {
            syntax: false,
            message: message.into(),
        }
    }

    /// The text is not JSON at all (the message is serde_json's); otherwise it is JSON whose
    /// values do not fit the type (the message is Go's).
    pub fn is_syntax(&self) -> bool {
        self.syntax
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl serde::de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::type_error(msg.to_string())
    }
}

/// Decodes `T` from a JSON document by Go's rules. Malformed JSON, and text after the
/// document, fail with serde_json's message.
pub fn from_slice<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    let node = node::parse(body).map_err(|e| Error {
        syntax: true,
        message: e.to_string(),
    })?;
    T::deserialize(de::De::root(node))
}

/// [`from_slice`] for text (JSON query parameters, decoded headers).
pub fn from_str<T: DeserializeOwned>(s: &str) -> Result<T, Error> {
    from_slice(s.as_bytes())
}

/// Decodes `T` by Go's rules from an already parsed value. `serde_json::Value` sorts object
/// keys, so among keys that differ only in case the last in sort order wins, not the last sent.
pub fn from_value<T: DeserializeOwned>(v: serde_json::Value) -> Result<T, Error> {
    T::deserialize(de::De::root(Node::from_value(v)))
}

/// The JSON pointers (RFC 6901, `""` for the root) of the objects in `body` that decoding `T`
/// reads as structs: the objects Go's key rules apply to. Maps (labels, options, endpoint
/// names) and untyped JSON are not listed. For tests that vary bodies ([`variants`]).
pub fn struct_pointers<T: DeserializeOwned>(body: &[u8]) -> Result<Vec<String>, Error> {
    let node = node::parse(body).map_err(|e| Error {
        syntax: true,
        message: e.to_string(),
    })?;
    de::struct_pointers::<T>(node)
}

/// The field names serde's derived impl of `T` declares (what it passes to
/// `deserialize_struct`), with renames applied. Empty for a type that is not a struct.
pub fn fields_of<'de, T: serde::Deserialize<'de>>() -> &'static [&'static str] {
    let mut probe = FieldsProbe(&[]);
    let _ = T::deserialize(&mut probe);
    probe.0
}

/// Records the field list `deserialize_struct` is given, then stops the derived impl.
struct FieldsProbe(&'static [&'static str]);

impl<'de> Deserializer<'de> for &mut FieldsProbe {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(Error::type_error("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _v: V,
    ) -> Result<V::Value, Error> {
        self.0 = fields;
        Err(Error::type_error("probed"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// Go's struct embedding (`type Wrapper struct { *Config; HostConfig *HostConfig }`): the
/// embedded struct's fields sit at the outer object's top level. Decodes the embedded `T` from
/// `map`, handing each key for which `own` returns true (after `own` has read its value with
/// `map.next_value()`) to the outer struct instead. Used in place of `#[serde(flatten)]`,
/// which would decode the embedded values without Go's rules; the outer type's
/// `deserialize_struct` call must list the embedded type's fields ([`fields_of`]) with its own.
pub fn promoted<'de, A, T, F>(map: A, own: F) -> Result<T, A::Error>
where
    A: MapAccess<'de>,
    T: serde::Deserialize<'de>,
    F: FnMut(&str, &mut A) -> Result<bool, A::Error>,
{
    T::deserialize(serde::de::value::MapAccessDeserializer::new(Promoted {
        map,
        own,
    }))
}

struct Promoted<A, F> {
    map: A,
    own: F,
}

impl<'de, A, F> MapAccess<'de> for Promoted<A, F>
where
    A: MapAccess<'de>,
    F: FnMut(&str, &mut A) -> Result<bool, A::Error>,
{
    type Error = A::Error;

    fn next_key_seed<K: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        loop {
            let Some(key) = self.map.next_key::<String>()? else {
                return Ok(None);
            };
            if (self.own)(&key, &mut self.map)? {
                continue;
            }
            let key: serde::de::value::StringDeserializer<A::Error> = key.into_deserializer();
            return seed.deserialize(key).map(Some);
        }
    }

    fn next_value_seed<S: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

/// A field list made of an embedded struct's fields and the outer struct's own, built once.
pub fn concat_fields(
    cell: &'static std::sync::OnceLock<Vec<&'static str>>,
    embedded: &'static [&'static str],
    own: &[&'static str],
) -> &'static [&'static str] {
    cell.get_or_init(|| embedded.iter().chain(own).copied().collect())
        .as_slice()
}

#[cfg(test)]
mod tests;

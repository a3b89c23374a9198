//! Docker's `StrSlice`: a JSON array of strings, a single string, or null.

use std::fmt;

use serde::de::{SeqAccess, Visitor};
use serde::Deserializer;

/// Deserializes `"a b"` as `["a b"]`, `["a","b"]` as is, and `null` as `None` (moby's
/// `StrSlice.UnmarshalJSON`). Written as a visitor rather than an untagged enum so the value is
/// read by the deserializer at hand (Go's rules under [`crate::gojson`]), not buffered by serde.
pub fn deserialize<'de, D>(d: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: Deserializer<'de>,
{
    d.deserialize_option(Optional)
}

struct Optional;

impl<'de> Visitor<'de> for Optional {
    type Value = Option<Vec<String>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string, an array of strings or null")
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(OneOrMany).map(Some)
    }
}

struct OneOrMany;

impl<'de> Visitor<'de> for OneOrMany {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or an array of strings")
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(vec![s.to_string()])
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(s) = seq.next_element::<String>()? {
            out.push(s);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct T {
        #[serde(default, deserialize_with = "super::deserialize")]
        v: Option<Vec<String>>,
    }

    #[test]
    fn accepts_string_array_null_and_missing() {
        let t: T = serde_json::from_str(r#"{"v":"echo hi"}"#).expect("string");
        assert_eq!(t.v, Some(vec!["echo hi".to_string()]));
        let t: T = serde_json::from_str(r#"{"v":["a","b"]}"#).expect("array");
        assert_eq!(t.v, Some(vec!["a".to_string(), "b".to_string()]));
        let t: T = serde_json::from_str(r#"{"v":null}"#).expect("null");
        assert_eq!(t.v, None);
        let t: T = serde_json::from_str(r#"{}"#).expect("missing");
        assert_eq!(t.v, None);
        assert!(serde_json::from_str::<T>(r#"{"v":3}"#).is_err());
    }
}

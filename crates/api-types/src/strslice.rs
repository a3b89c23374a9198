//! Docker's `StrSlice`: a JSON array of strings, a single string, or null.

use serde::{Deserialize, Deserializer};

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// Deserializes `"a b"` as `["a b"]`, `["a","b"]` as is, and `null` as `None`.
pub fn deserialize<'de, D>(d: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => None,
        Some(OneOrMany::One(s)) => Some(vec![s]),
        Some(OneOrMany::Many(v)) => Some(v),
    })
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

//! Query strings as Docker clients send them.

use berth_api_types::ApiError;

/// Decoded query parameters in order; keys may repeat (`t=a&t=b`).
#[derive(Debug, Default, Clone)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        Query(
            raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Booleans as dockerd reads them (its `httputils.BoolValue`): absent, empty, `0`, `no`,
    /// `false` and `none` (any case, spaces trimmed) are false, every other value is true.
    /// The docker CLI sends `1`/`0`, the SDKs `true`/`false`/`True`; nothing is refused.
    pub fn bool(&self, key: &str) -> Result<bool, ApiError> {
        Ok(self.get(key).is_some_and(parse_bool))
    }

    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, ApiError> {
        if self.get(key).is_none() {
            Ok(default)
        } else {
            self.bool(key)
        }
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                ApiError::invalid(format!("invalid value for {key}: {v:?}: not an integer"))
            }),
        }
    }

    pub fn string(&self, key: &str) -> Option<String> {
        self.get(key).filter(|v| !v.is_empty()).map(str::to_string)
    }

    /// Docker's `filters` parameter: JSON `{"key": ["v"]}` or the legacy `{"key": {"v": true}}`.
    pub fn filters(&self) -> Result<Vec<(String, Vec<String>)>, ApiError> {
        let Some(raw) = self.get("filters").filter(|v| !v.is_empty()) else {
            return Ok(Vec::new());
        };
        let v: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| ApiError::invalid(format!("invalid filter: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| ApiError::invalid("invalid filter: not an object"))?;
        let mut out = Vec::new();
        for (k, vals) in obj {
            let values = match vals {
                serde_json::Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
                serde_json::Value::Object(m) => m
                    .iter()
                    .filter(|(_, on)| on.as_bool().unwrap_or(false))
                    .map(|(k, _)| k.clone())
                    .collect(),
                serde_json::Value::String(s) => vec![s.clone()],
                _ => return Err(ApiError::invalid(format!("invalid filter value for {k:?}"))),
            };
            out.push((k.clone(), values));
        }
        Ok(out)
    }
}

/// dockerd's reading of a boolean query value (see [`Query::bool`]).
pub fn parse_bool(v: &str) -> bool {
    let v = v.trim().to_ascii_lowercase();
    !matches!(v.as_str(), "" | "0" | "no" | "false" | "none")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_in_every_spelling() {
        let q = Query::parse(Some(
            "a=1&b=true&c=True&d=0&e=false&f=yes&g=maybe&h=No&i=NONE&j=%20false%20&k=",
        ));
        for key in ["a", "b", "c", "f", "g"] {
            assert!(q.bool(key).unwrap(), "{key}");
        }
        for key in ["d", "e", "h", "i", "j", "k", "zz"] {
            assert!(!q.bool(key).unwrap(), "{key}");
        }
    }

    #[test]
    fn filters_both_shapes() {
        let q = Query::parse(Some(
            "filters=%7B%22status%22%3A%5B%22exited%22%5D%2C%22label%22%3A%7B%22a%3Db%22%3Atrue%7D%7D",
        ));
        let f = q.filters().unwrap();
        assert!(f.contains(&("status".to_string(), vec!["exited".to_string()])));
        assert!(f.contains(&("label".to_string(), vec!["a=b".to_string()])));
        assert!(Query::parse(Some("filters=nope")).filters().is_err());
    }

    #[test]
    fn repeated_keys() {
        let q = Query::parse(Some("t=a&t=b"));
        assert_eq!(q.all("t"), vec!["a", "b"]);
    }
}

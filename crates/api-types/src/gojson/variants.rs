//! Variants of a recorded request body that Go's decoder reads as the original: for the
//! property tests of the wire types (api-types' fixture test, the daemon's update body).
//!
//! For every key of every object decoded as a struct ([`super::struct_pointers`]): the key's
//! value set to `null` (Go: the field's zero value, as if the key were absent), the key in
//! lower case and in upper case; for every such object, an unknown key added; and the whole
//! body with every struct key's case swapped. Each variant comes with the body a strict serde
//! decode must read to the same value: the original, or the original without the key.

use serde_json::Value;

/// One way of sending the same request.
#[derive(Debug, Clone)]
pub struct Variant {
    /// What was changed, for failure messages.
    pub what: String,
    /// The body to decode by Go's rules.
    pub body: Value,
    /// The body whose strict decode it must equal.
    pub expect: Value,
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn tokens(ptr: &str) -> Vec<String> {
    ptr.split('/').skip(1).map(unescape).collect()
}

fn object_at<'a>(
    v: &'a mut Value,
    toks: &[String],
) -> Option<&'a mut serde_json::Map<String, Value>> {
    let mut cur = v;
    for t in toks {
        cur = match cur {
            Value::Object(m) => m.get_mut(t)?,
            Value::Array(a) => a.get_mut(t.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    cur.as_object_mut()
}

/// Renames `key` in `m` keeping its position (serde_json without `preserve_order` sorts keys,
/// so the position does not matter; with it, key order is kept).
fn rename(m: &mut serde_json::Map<String, Value>, key: &str, to: String) {
    if let Some(v) = m.remove(key) {
        m.insert(to, v);
    }
}

fn swap_case(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_uppercase() {
                c.to_ascii_lowercase()
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect()
}

/// The variants of `original`, whose struct objects sit at `structs` (JSON pointers).
/// Deeper pointers come first in the whole-body case swap, so outer renames do not move them.
pub fn variants(original: &Value, structs: &[String]) -> Vec<Variant> {
    let mut out = Vec::new();
    for ptr in structs {
        let toks = tokens(ptr);
        let keys: Vec<String> = {
            let mut v = original.clone();
            match object_at(&mut v, &toks) {
                Some(m) => m.keys().cloned().collect(),
                None => continue,
            }
        };
        for key in &keys {
            let mut body = original.clone();
            let mut expect = original.clone();
            if let Some(m) = object_at(&mut body, &toks) {
                m.insert(key.clone(), Value::Null);
            }
            if let Some(m) = object_at(&mut expect, &toks) {
                m.remove(key);
            }
            out.push(Variant {
                what: format!("{ptr}/{key} set to null"),
                body,
                expect,
            });
            for (how, to) in [("lower", key.to_lowercase()), ("upper", key.to_uppercase())] {
                if &to == key {
                    continue;
                }
                let mut body = original.clone();
                if let Some(m) = object_at(&mut body, &toks) {
                    rename(m, key, to);
                }
                out.push(Variant {
                    what: format!("{ptr}/{key} in {how} case"),
                    body,
                    expect: original.clone(),
                });
            }
        }
        let mut body = original.clone();
        if let Some(m) = object_at(&mut body, &toks) {
            m.insert(
                "XBerthUnknownField".into(),
                serde_json::json!({"Nested": [1, null, {"A": "b"}], "Null": null}),
            );
        }
        out.push(Variant {
            what: format!("{ptr} with an unknown key"),
            body,
            expect: original.clone(),
        });
    }
    let mut body = original.clone();
    let mut deepest_first: Vec<&String> = structs.iter().collect();
    deepest_first.sort_by_key(|p| std::cmp::Reverse(tokens(p).len()));
    for ptr in deepest_first {
        if let Some(m) = object_at(&mut body, &tokens(ptr)) {
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                rename(m, &k, swap_case(&k));
            }
        }
    }
    out.push(Variant {
        what: "every struct key with its case swapped".into(),
        body,
        expect: original.clone(),
    });
    out
}

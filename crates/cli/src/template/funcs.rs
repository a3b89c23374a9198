//! The template functions docker's users type (`json`, `join`, `printf`, `eq`, ...).

use std::fmt::Write as _;

use serde_json::Value;

use super::exec::{go_string, go_type, truthy};
use super::{err, TemplateError};

const FUNCTIONS: &[&str] = &[
    "json", "join", "split", "index", "len", "upper", "lower", "title", "println", "print",
    "printf", "eq", "ne", "lt", "le", "gt", "ge", "not", "and", "or", "pad", "truncate", "slice",
    "html", "urlquery",
];

pub(super) fn is_function(name: &str) -> bool {
    FUNCTIONS.contains(&name)
}

fn want(args: &[Value], n: usize) -> Result<(), TemplateError> {
    if args.len() != n {
        return err(format!("wrong number of args: want {n} got {}", args.len()));
    }
    Ok(())
}

fn as_str(v: &Value) -> String {
    go_string(v)
}

/// A count or index: negative ones are 0.
fn index(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

fn as_int(v: &Value) -> Result<i64, TemplateError> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(berth_go::trunc_i64))
            .ok_or_else(|| TemplateError("bad number".into())),
        Value::String(s) => s
            .parse()
            .map_err(|_| TemplateError(format!("{s:?} is not an integer"))),
        other => err(format!("can't use {} as an integer", go_string(other))),
    }
}

fn compare(a: &Value, b: &Value) -> Result<std::cmp::Ordering, TemplateError> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.partial_cmp(&y)
                .ok_or_else(|| TemplateError("incomparable numbers".into()))
        }
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Ok(x.cmp(y)),
        _ => err("incompatible types for comparison"),
    }
}

pub(super) fn call(name: &str, args: Vec<Value>) -> Result<Value, TemplateError> {
    use std::cmp::Ordering::*;
    Ok(match name {
        "json" => {
            want(&args, 1)?;
            // Go's encoding/json escapes HTML characters; docker's `json` function keeps that.
            let s = serde_json::to_string(&args[0]).map_err(|e| TemplateError(e.to_string()))?;
            Value::String(
                s.replace('<', "\\u003c")
                    .replace('>', "\\u003e")
                    .replace('&', "\\u0026"),
            )
        }
        "join" => {
            want(&args, 2)?;
            let parts: Vec<String> = match &args[0] {
                Value::Array(a) => a.iter().map(as_str).collect(),
                Value::Null => Vec::new(),
                other => return err(format!("can't join {}", go_string(other))),
            };
            Value::String(parts.join(&as_str(&args[1])))
        }
        "split" => {
            want(&args, 2)?;
            let s = as_str(&args[0]);
            let sep = as_str(&args[1]);
            let parts: Vec<Value> = if sep.is_empty() {
                s.chars().map(|c| Value::String(c.to_string())).collect()
            } else {
                s.split(sep.as_str())
                    .map(|p| Value::String(p.to_string()))
                    .collect()
            };
            Value::Array(parts)
        }
        "index" => {
            if args.is_empty() {
                return err("wrong number of args for index: want at least 1 got 0");
            }
            let mut cur = args[0].clone();
            for key in &args[1..] {
                cur = match (&cur, key) {
                    (Value::Object(m), k) => m
                        .get(&as_str(k))
                        .cloned()
                        .unwrap_or(Value::String(String::new())),
                    (Value::Array(a), k) => {
                        let i = as_int(k)?;
                        let Some(item) = usize::try_from(i).ok().and_then(|n| a.get(n)) else {
                            return err(format!("index out of range: {i}"));
                        };
                        item.clone()
                    }
                    (Value::Null, _) => Value::String(String::new()),
                    (other, _) => {
                        return err(format!("can't index item of type {}", go_type(other)))
                    }
                };
            }
            cur
        }
        "slice" => {
            if args.is_empty() {
                return err("wrong number of args for slice");
            }
            match &args[0] {
                Value::String(s) => {
                    let chars: Vec<char> = s.chars().collect();
                    let a = index(args.get(1).map(as_int).transpose()?.unwrap_or(0));
                    let b = args
                        .get(2)
                        .map(as_int)
                        .transpose()?
                        // A negative end is out of range.
                        .map(|b| usize::try_from(b).unwrap_or(usize::MAX))
                        .unwrap_or(chars.len());
                    if a > b || b > chars.len() {
                        return err("slice index out of range");
                    }
                    Value::String(chars[a..b].iter().collect())
                }
                Value::Array(arr) => {
                    let a = index(args.get(1).map(as_int).transpose()?.unwrap_or(0));
                    let b = args
                        .get(2)
                        .map(as_int)
                        .transpose()?
                        // A negative end is out of range.
                        .map(|b| usize::try_from(b).unwrap_or(usize::MAX))
                        .unwrap_or(arr.len());
                    if a > b || b > arr.len() {
                        return err("slice index out of range");
                    }
                    Value::Array(arr[a..b].to_vec())
                }
                other => return err(format!("can't slice item of type {}", go_type(other))),
            }
        }
        "len" => {
            want(&args, 1)?;
            Value::from(match &args[0] {
                Value::String(s) => s.len(),
                Value::Array(a) => a.len(),
                Value::Object(m) => m.len(),
                Value::Null => 0,
                other => return err(format!("len of type {}", go_type(other))),
            })
        }
        "upper" => {
            want(&args, 1)?;
            Value::String(as_str(&args[0]).to_uppercase())
        }
        "lower" => {
            want(&args, 1)?;
            Value::String(as_str(&args[0]).to_lowercase())
        }
        "title" => {
            want(&args, 1)?;
            let s = as_str(&args[0]);
            let mut out = String::new();
            let mut start = true;
            for c in s.chars() {
                if start && c.is_alphabetic() {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
                start = !c.is_alphanumeric();
            }
            Value::String(out)
        }
        "println" => Value::String(format!(
            "{}\n",
            args.iter().map(as_str).collect::<Vec<_>>().join(" ")
        )),
        "print" => {
            // Go's Sprint adds spaces between operands when neither is a string.
            let mut out = String::new();
            for (i, a) in args.iter().enumerate() {
                if i > 0 && !args[i - 1].is_string() && !a.is_string() {
                    out.push(' ');
                }
                out.push_str(&as_str(a));
            }
            Value::String(out)
        }
        "printf" => {
            if args.is_empty() {
                return err("wrong number of args for printf");
            }
            Value::String(sprintf(&as_str(&args[0]), &args[1..]))
        }
        "html" | "urlquery" => Value::String(args.iter().map(as_str).collect::<Vec<_>>().join("")),
        "eq" => {
            if args.len() < 2 {
                return err("missing argument for comparison");
            }
            let first = &args[0];
            Value::Bool(args[1..].iter().any(|b| match (first, b) {
                (Value::Number(_), Value::Number(_)) => {
                    compare(first, b).map(|o| o == Equal).unwrap_or(false)
                }
                _ => first == b,
            }))
        }
        "ne" => {
            want(&args, 2)?;
            Value::Bool(match (&args[0], &args[1]) {
                (Value::Number(_), Value::Number(_)) => compare(&args[0], &args[1])? != Equal,
                (a, b) => a != b,
            })
        }
        "lt" => {
            want(&args, 2)?;
            Value::Bool(compare(&args[0], &args[1])? == Less)
        }
        "le" => {
            want(&args, 2)?;
            Value::Bool(compare(&args[0], &args[1])? != Greater)
        }
        "gt" => {
            want(&args, 2)?;
            Value::Bool(compare(&args[0], &args[1])? == Greater)
        }
        "ge" => {
            want(&args, 2)?;
            Value::Bool(compare(&args[0], &args[1])? != Less)
        }
        "not" => {
            want(&args, 1)?;
            Value::Bool(!truthy(&args[0]))
        }
        "and" => {
            if args.is_empty() {
                return err("wrong number of args for and");
            }
            args.iter()
                .find(|a| !truthy(a))
                .cloned()
                .unwrap_or_else(|| args[args.len() - 1].clone())
        }
        "or" => {
            if args.is_empty() {
                return err("wrong number of args for or");
            }
            args.iter()
                .find(|a| truthy(a))
                .cloned()
                .unwrap_or_else(|| args[args.len() - 1].clone())
        }
        "pad" => {
            want(&args, 3)?;
            let l = index(as_int(&args[1])?);
            let r = index(as_int(&args[2])?);
            Value::String(format!(
                "{}{}{}",
                " ".repeat(l),
                as_str(&args[0]),
                " ".repeat(r)
            ))
        }
        "truncate" => {
            want(&args, 2)?;
            let s = as_str(&args[0]);
            let n = index(as_int(&args[1])?);
            Value::String(s.chars().take(n).collect())
        }
        other => return err(format!("function {other:?} not defined")),
    })
}

/// A subset of Go's `fmt.Sprintf`: verbs `v s d q t x f %` with flags `-`, `0` and a width.
fn sprintf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut left = false;
        let mut zero = false;
        while let Some(&f) = chars.peek() {
            match f {
                '-' => left = true,
                '0' => zero = true,
                '+' | ' ' | '#' => {}
                _ => break,
            }
            chars.next();
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut prec: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                chars.next();
            }
            prec = Some(p.parse().unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.next() else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        let s = match verb {
            'q' => serde_json::to_string(&as_str(arg)).unwrap_or_default(),
            'd' => as_int(arg)
                .map(|i| i.to_string())
                .unwrap_or_else(|_| format!("%!d({})", as_str(arg))),
            'x' => as_int(arg)
                .map(|i| format!("{i:x}"))
                .unwrap_or_else(|_| as_str(arg).bytes().map(|b| format!("{b:02x}")).collect()),
            'f' => {
                let f = arg.as_f64().unwrap_or(0.0);
                format!("{f:.*}", prec.unwrap_or(6))
            }
            _ => {
                let s = as_str(arg);
                match prec {
                    Some(p) if verb == 's' => s.chars().take(p).collect(),
                    _ => s,
                }
            }
        };
        let w: usize = width.parse().unwrap_or(0);
        let len = s.chars().count();
        if len >= w {
            out.push_str(&s);
        } else if left {
            out.push_str(&s);
            out.push_str(&" ".repeat(w - len));
        } else {
            out.push_str(&(if zero { "0" } else { " " }).repeat(w - len));
            out.push_str(&s);
        }
    }
    let extra: Vec<&Value> = args.collect();
    if !extra.is_empty() {
        let _ = write!(
            out,
            "%!(EXTRA {})",
            extra
                .iter()
                .map(|v| as_str(v))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    out
}

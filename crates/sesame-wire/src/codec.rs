//! What the generated decoders and encoders (`generated/*.rs`) call: reading
//! one value from the Query form, the v2 path, query string or JSON body;
//! checking a model constraint in AWS's wording; writing a scalar.
//!
//! A decoder returns `Err` at once for input it cannot read (a malformed
//! number, a JSON value of the wrong type, bad base64) and collects
//! constraint failures (missing required members, enums, lengths, patterns,
//! ranges) in [`Violations`], which become one `ValidationError` listing
//! them all, as AWS reports them.

use crate::query::QueryParams;
use crate::router::Matched;
use base64::Engine;
use serde_json::Value;
use sesame_model::{Error, ErrorKind, Millis};
use std::collections::HashMap;
use std::sync::{LazyLock, RwLock};

/// Constraint failures found while decoding one input.
#[derive(Debug, Default)]
pub struct Violations(Vec<String>);

/// The most of a value a violation message repeats.
const SHOWN: usize = 256;

fn shown(value: &str, sensitive: bool) -> String {
    if sensitive {
        return "*** Sensitive Data Redacted ***".to_owned();
    }
    if value.chars().count() <= SHOWN {
        return value.to_owned();
    }
    let mut s: String = value.chars().take(SHOWN).collect();
    s.push('…');
    s
}

impl Violations {
    pub fn null(&mut self, path: &Path<'_>) {
        self.0.push(format!(
            "Value null at '{path}' failed to satisfy constraint: Member must not be null"
        ));
    }

    pub fn value(&mut self, value: &str, path: &Path<'_>, constraint: &str, sensitive: bool) {
        self.0.push(format!(
            "Value '{}' at '{path}' failed to satisfy constraint: {constraint}",
            shown(value, sensitive)
        ));
    }

    /// The decoded input, or AWS's `N validation error(s) detected: …`.
    pub fn finish<T>(self, input: Option<T>) -> Result<T, Error> {
        match self.0.len() {
            0 => input.ok_or_else(|| Error::internal("the input could not be decoded")),
            n => Err(Error::new(
                ErrorKind::Validation,
                format!(
                    "{n} validation error{} detected: {}",
                    if n == 1 { "" } else { "s" },
                    self.0.join("; ")
                ),
            )),
        }
    }
}

/// Concatenates without the formatting machinery (keys are built for every
/// member of every request).
fn join(parts: &[&str]) -> String {
    let mut s = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        s.push_str(p);
    }
    s
}

/// A member's Query key under `key` (the form's top level when empty,
/// where the key is the member's name and nothing is allocated).
pub fn key<'a>(key: &str, member: &'a str) -> std::borrow::Cow<'a, str> {
    if key.is_empty() {
        std::borrow::Cow::Borrowed(member)
    } else {
        std::borrow::Cow::Owned(join(&[key, ".", member]))
    }
}

/// Where a value is, as a validation message names it
/// (`message.subject.data`, `destinations.1.member.destination`): built
/// without allocating as decoding descends, and written out only when a
/// message needs it.
#[derive(Debug, Clone, Copy)]
pub enum Path<'a> {
    /// The input itself.
    Root,
    /// A member, by the model's name (written with a lower-case first letter).
    Member(&'a Path<'a>, &'a str),
    /// The Nth member of a list, from 1.
    Item(&'a Path<'a>, usize),
    /// A map's entry, by its key or its position.
    Entry(&'a Path<'a>, &'a str),
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Root => Ok(()),
            Self::Member(parent, name) => {
                if !matches!(parent, Self::Root) {
                    write!(f, "{parent}.")?;
                }
                let mut c = name.chars();
                if let Some(first) = c.next() {
                    write!(f, "{}{}", first.to_lowercase(), c.as_str())?;
                }
                Ok(())
            }
            Self::Item(parent, n) => write!(f, "{parent}.{n}.member"),
            Self::Entry(parent, k) => write!(f, "{parent}.{k}"),
        }
    }
}

/// An operation Sesame does not implement (yet).
pub fn not_implemented(api: &str, op: &str) -> Error {
    Error::new(
        ErrorKind::NotImplemented,
        format!("Sesame does not implement the {api} operation {op} yet."),
    )
}

// ------------------------------------------------------------ constraints

/// Smithy's `@length` on a string: counted in characters.
pub fn check_len(
    v: &mut Violations,
    s: &str,
    path: &Path<'_>,
    min: Option<usize>,
    max: Option<usize>,
    sensitive: bool,
) {
    let n = s.chars().count();
    if let Some(min) = min.filter(|m| n < *m) {
        v.value(
            s,
            path,
            &format!("Member must have length greater than or equal to {min}"),
            sensitive,
        );
    }
    if let Some(max) = max.filter(|m| n > *m) {
        v.value(
            s,
            path,
            &format!("Member must have length less than or equal to {max}"),
            sensitive,
        );
    }
}

/// `@length` on a list or map: its number of members.
pub fn check_count(
    v: &mut Violations,
    n: usize,
    path: &Path<'_>,
    min: Option<usize>,
    max: Option<usize>,
) {
    if let Some(min) = min.filter(|m| n < *m) {
        v.value(
            &format!("{n} members"),
            path,
            &format!("Member must have length greater than or equal to {min}"),
            false,
        );
    }
    if let Some(max) = max.filter(|m| n > *m) {
        v.value(
            &format!("{n} members"),
            path,
            &format!("Member must have length less than or equal to {max}"),
            false,
        );
    }
}

/// `@range` on a number.
pub fn check_range(
    v: &mut Violations,
    n: i64,
    path: &Path<'_>,
    min: Option<i64>,
    max: Option<i64>,
) {
    if let Some(min) = min.filter(|m| n < *m) {
        v.value(
            &n.to_string(),
            path,
            &format!("Member must have value greater than or equal to {min}"),
            false,
        );
    }
    if let Some(max) = max.filter(|m| n > *m) {
        v.value(
            &n.to_string(),
            path,
            &format!("Member must have value less than or equal to {max}"),
            false,
        );
    }
}

static PATTERNS: LazyLock<RwLock<HashMap<&'static str, Option<regex::Regex>>>> =
    LazyLock::new(Default::default);

/// `@pattern`: searched for, not anchored, as Smithy defines it. The
/// models' patterns are compiled once; the regex crate matches in linear
/// time, so no input can make a check slow.
pub fn check_pattern(
    v: &mut Violations,
    s: &str,
    path: &Path<'_>,
    pattern: &'static str,
    sensitive: bool,
) {
    let cached = PATTERNS.read().ok().and_then(|m| m.get(pattern).cloned());
    let re = match cached {
        Some(re) => re,
        None => {
            let re = regex::Regex::new(pattern).ok();
            if let Ok(mut m) = PATTERNS.write() {
                m.insert(pattern, re.clone());
            }
            re
        }
    };
    if let Some(re) = re
        && !re.is_match(s)
    {
        v.value(
            s,
            path,
            &format!("Member must satisfy regular expression pattern: {pattern}"),
            sensitive,
        );
    }
}

// ------------------------------------------------------------ Query form

/// Whether anything was sent at `key` or under it.
pub fn q_present(q: &QueryParams, key: &str) -> bool {
    q.get(key).is_some() || q.has_under(key)
}

pub fn q_string(q: &QueryParams, key: &str) -> Option<String> {
    q.get(key).map(str::to_owned)
}

pub fn q_bool(q: &QueryParams, key: &str) -> Result<Option<bool>, Error> {
    q.bool(key)
}

pub fn q_i64(q: &QueryParams, key: &str) -> Result<Option<i64>, Error> {
    q.int(key)
}

pub fn q_i32(q: &QueryParams, key: &str) -> Result<Option<i32>, Error> {
    match q.int(key)? {
        None => Ok(None),
        Some(n) => i32::try_from(n).map(Some).map_err(|_| {
            Error::invalid(format!(
                "Value {n} for parameter {key} is invalid. It must be an integer."
            ))
        }),
    }
}

pub fn q_f64(q: &QueryParams, key: &str) -> Result<Option<f64>, Error> {
    match q.get(key) {
        None => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| {
            Error::invalid(format!(
                "Value {s} for parameter {key} is invalid. It must be a number."
            ))
        }),
    }
}

pub fn q_timestamp(q: &QueryParams, key: &str) -> Result<Option<Millis>, Error> {
    q.get(key).map(|s| timestamp_text(s, &key)).transpose()
}

pub fn q_blob(q: &QueryParams, key: &str) -> Result<Option<Vec<u8>>, Error> {
    q.get(key).map(|s| unbase64(s, &key)).transpose()
}

/// A string as one of an enum's values, or a violation naming the set.
fn enum_value<T>(
    s: &str,
    path: &Path<'_>,
    v: &mut Violations,
    parse: fn(&str) -> Option<T>,
    set: &str,
) -> Option<T> {
    let e = parse(s);
    if e.is_none() {
        v.value(s, path, set, false);
    }
    e
}

pub fn q_enum<T>(
    q: &QueryParams,
    key: &str,
    path: &Path<'_>,
    v: &mut Violations,
    parse: fn(&str) -> Option<T>,
    set: &str,
) -> Option<T> {
    enum_value(q.get(key)?, path, v, parse, set)
}

/// `key.member.N` in order; the bare `key=` is an empty list. The form's
/// lists were checked when it was parsed: numbered from 1 without gaps.
pub fn q_list<T>(
    q: &QueryParams,
    key: &str,
    path: &Path<'_>,
    v: &mut Violations,
    item: impl Fn(&QueryParams, &str, &Path<'_>, &mut Violations) -> Result<Option<T>, Error>,
) -> Result<Option<Vec<T>>, Error> {
    let count = q.list_len(key);
    if count == 0 {
        return Ok(q.get(key).map(|_| Vec::new()));
    }
    let mut out = Vec::with_capacity(count);
    for n in 1..=count {
        let k = join(&[key, ".member.", &n.to_string()]);
        let p = Path::Item(path, n);
        match item(q, &k, &p, v)? {
            Some(x) => out.push(x),
            None if !q_present(q, &k) => v.null(&p),
            None => {}
        }
    }
    Ok(Some(out))
}

/// `key.entry.N.<key name>` / `.<value name>`.
#[allow(clippy::too_many_arguments)]
pub fn q_map<K, V>(
    q: &QueryParams,
    key: &str,
    path: &Path<'_>,
    v: &mut Violations,
    key_name: &str,
    value_name: &str,
    k_item: impl Fn(&QueryParams, &str, &Path<'_>, &mut Violations) -> Result<Option<K>, Error>,
    v_item: impl Fn(&QueryParams, &str, &Path<'_>, &mut Violations) -> Result<Option<V>, Error>,
) -> Result<Option<Vec<(K, V)>>, Error> {
    let prefix = format!("{key}.entry.");
    let mut indexes: Vec<u32> = q
        .under(&prefix)
        .filter_map(|(k, _)| k.strip_prefix(&prefix)?.split('.').next()?.parse().ok())
        .collect();
    indexes.sort_unstable();
    indexes.dedup();
    if indexes.is_empty() {
        return Ok(q.get(key).map(|_| Vec::new()));
    }
    let mut out = Vec::with_capacity(indexes.len());
    for n in indexes {
        let base = format!("{key}.entry.{n}");
        let n = n.to_string();
        let p = Path::Entry(path, &n);
        let (kk, vk) = (format!("{base}.{key_name}"), format!("{base}.{value_name}"));
        let (kp, vp) = (Path::Entry(&p, "key"), Path::Entry(&p, "value"));
        let k = k_item(q, &kk, &kp, v)?;
        let val = v_item(q, &vk, &vp, v)?;
        if k.is_none() && !q_present(q, &kk) {
            v.null(&kp);
        }
        if val.is_none() && !q_present(q, &vk) {
            v.null(&vp);
        }
        if let (Some(k), Some(val)) = (k, val) {
            out.push((k, val));
        }
    }
    Ok(Some(out))
}

// ------------------------------------------------------------ v2 path and query

pub fn h_label(m: &Matched, name: &str) -> Option<String> {
    m.label(name).map(str::to_owned)
}

pub fn h_label_enum<T>(
    m: &Matched,
    name: &str,
    path: &Path<'_>,
    v: &mut Violations,
    parse: fn(&str) -> Option<T>,
    set: &str,
) -> Option<T> {
    enum_value(m.label(name)?, path, v, parse, set)
}

pub fn h_query_list_enum<T>(
    query: &[(String, String)],
    name: &str,
    path: &Path<'_>,
    v: &mut Violations,
    parse: fn(&str) -> Option<T>,
    set: &str,
) -> Option<Vec<T>> {
    let all = h_query_list(query, name)?;
    let mut out = Vec::with_capacity(all.len());
    for (n, s) in all.iter().enumerate() {
        if let Some(e) = enum_value(s, &Path::Item(path, n + 1), v, parse, set) {
            out.push(e);
        }
    }
    Some(out)
}

pub fn h_query_present(query: &[(String, String)], name: &str) -> bool {
    query.iter().any(|(k, _)| k == name)
}

pub fn h_query_string(query: &[(String, String)], name: &str) -> Option<String> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

pub fn h_query_list(query: &[(String, String)], name: &str) -> Option<Vec<String>> {
    let all: Vec<String> = query
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .collect();
    (!all.is_empty()).then_some(all)
}

fn query_number<T: std::str::FromStr>(
    query: &[(String, String)],
    name: &str,
) -> Result<Option<T>, Error> {
    match h_query_string(query, name) {
        None => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| {
            Error::new(
                ErrorKind::Validation,
                format!("The query parameter {name} is not a number: '{s}'."),
            )
        }),
    }
}

pub fn h_query_i32(query: &[(String, String)], name: &str) -> Result<Option<i32>, Error> {
    query_number(query, name)
}

pub fn h_query_i64(query: &[(String, String)], name: &str) -> Result<Option<i64>, Error> {
    query_number(query, name)
}

pub fn h_query_f64(query: &[(String, String)], name: &str) -> Result<Option<f64>, Error> {
    query_number(query, name)
}

pub fn h_query_bool(query: &[(String, String)], name: &str) -> Result<Option<bool>, Error> {
    match h_query_string(query, name).as_deref() {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(s) => Err(Error::new(
            ErrorKind::Validation,
            format!("The query parameter {name} must be true or false, not '{s}'."),
        )),
    }
}

pub fn h_query_timestamp(query: &[(String, String)], name: &str) -> Result<Option<Millis>, Error> {
    h_query_string(query, name)
        .map(|s| timestamp_text(&s, &name))
        .transpose()
}

pub fn h_query_enum<T>(
    query: &[(String, String)],
    name: &str,
    path: &Path<'_>,
    v: &mut Violations,
    parse: fn(&str) -> Option<T>,
    set: &str,
) -> Option<T> {
    enum_value(&h_query_string(query, name)?, path, v, parse, set)
}

// ------------------------------------------------------------ JSON body

/// Whether a body is empty or only whitespace.
pub fn blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

/// A v2 request body: an empty body is `{}`; anything else must be a JSON
/// object.
pub fn json_body(body: &[u8]) -> Result<Value, Error> {
    if blank(body) {
        return Ok(Value::Object(Default::default()));
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        Error::new(
            ErrorKind::Validation,
            format!("The request body is not valid: {e}"),
        )
    })?;
    j_object(&v, &Path::Root)?;
    Ok(v)
}

/// A response body.
pub fn json_out(v: Value) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap_or_default()
}

fn wrong_type(path: &Path<'_>, expected: &str, got: &Value) -> Error {
    let found = match got {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let at = match path {
        Path::Root => "the body".to_owned(),
        p => p.to_string(),
    };
    Error::new(
        ErrorKind::Validation,
        format!(
            "The request body is not valid: invalid type: {found}, expected {expected} at '{at}'"
        ),
    )
}

/// A member of an object; `null` is absent.
pub fn j_field<'a>(j: &'a Value, name: &str) -> Option<&'a Value> {
    j.get(name).filter(|v| !v.is_null())
}

pub fn j_object(j: &Value, path: &Path<'_>) -> Result<(), Error> {
    match j {
        Value::Object(_) => Ok(()),
        other => Err(wrong_type(path, "an object", other)),
    }
}

pub fn j_string(j: &Value, path: &Path<'_>) -> Result<Option<String>, Error> {
    match j {
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(wrong_type(path, "a string", other)),
    }
}

pub fn j_bool(j: &Value, path: &Path<'_>) -> Result<Option<bool>, Error> {
    match j {
        Value::Bool(b) => Ok(Some(*b)),
        other => Err(wrong_type(path, "a boolean", other)),
    }
}

pub fn j_i64(j: &Value, path: &Path<'_>) -> Result<Option<i64>, Error> {
    j.as_i64()
        .map(Some)
        .ok_or_else(|| wrong_type(path, "an integer", j))
}

pub fn j_i32(j: &Value, path: &Path<'_>) -> Result<Option<i32>, Error> {
    j.as_i64()
        .and_then(|n| i32::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| wrong_type(path, "an integer", j))
}

pub fn j_f64(j: &Value, path: &Path<'_>) -> Result<Option<f64>, Error> {
    j.as_f64()
        .map(Some)
        .ok_or_else(|| wrong_type(path, "a number", j))
}

/// Epoch seconds, or an ISO-8601 string.
pub fn j_timestamp(j: &Value, path: &Path<'_>) -> Result<Option<Millis>, Error> {
    match j {
        Value::Number(n) => n
            .as_f64()
            .map(|s| Some((s * 1000.0) as Millis))
            .ok_or_else(|| wrong_type(path, "a timestamp", j)),
        Value::String(s) => timestamp_text(s, path).map(Some),
        other => Err(wrong_type(path, "a timestamp", other)),
    }
}

pub fn j_blob(j: &Value, path: &Path<'_>) -> Result<Option<Vec<u8>>, Error> {
    match j {
        Value::String(s) => unbase64(s, path).map(Some),
        other => Err(wrong_type(path, "base64 text", other)),
    }
}

pub fn j_enum<T>(
    j: &Value,
    path: &Path<'_>,
    v: &mut Violations,
    parse: fn(&str) -> Option<T>,
    set: &str,
) -> Result<Option<T>, Error> {
    let Value::String(s) = j else {
        return Err(wrong_type(path, "a string", j));
    };
    Ok(enum_value(s, path, v, parse, set))
}

pub fn j_list<T>(
    j: &Value,
    path: &Path<'_>,
    v: &mut Violations,
    item: impl Fn(&Value, &Path<'_>, &mut Violations) -> Result<Option<T>, Error>,
) -> Result<Option<Vec<T>>, Error> {
    let Value::Array(items) = j else {
        return Err(wrong_type(path, "an array", j));
    };
    let mut out = Vec::with_capacity(items.len());
    for (n, x) in items.iter().enumerate() {
        let p = Path::Item(path, n + 1);
        if x.is_null() {
            v.null(&p);
            continue;
        }
        if let Some(x) = item(x, &p, v)? {
            out.push(x);
        }
    }
    Ok(Some(out))
}

pub fn j_map<K, V>(
    j: &Value,
    path: &Path<'_>,
    v: &mut Violations,
    key: impl Fn(&str, &Path<'_>, &mut Violations) -> Option<K>,
    item: impl Fn(&Value, &Path<'_>, &mut Violations) -> Result<Option<V>, Error>,
) -> Result<Option<Vec<(K, V)>>, Error> {
    let Value::Object(map) = j else {
        return Err(wrong_type(path, "an object", j));
    };
    let mut out = Vec::with_capacity(map.len());
    for (k, x) in map {
        let p = Path::Entry(path, k);
        let k = key(k, &p, v);
        if x.is_null() {
            v.null(&p);
            continue;
        }
        if let (Some(k), Some(x)) = (k, item(x, &p, v)?) {
            out.push((k, x));
        }
    }
    Ok(Some(out))
}

pub fn j_map_key_enum<T>(
    k: &str,
    path: &Path<'_>,
    v: &mut Violations,
    parse: fn(&str) -> Option<T>,
    set: &str,
) -> Option<T> {
    enum_value(k, path, v, parse, set)
}

// ------------------------------------------------------------ scalars

fn timestamp_text(s: &str, at: &dyn std::fmt::Display) -> Result<Millis, Error> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as Millis)
        .map_err(|_| Error::invalid(format!("The value of {at} is not an ISO-8601 timestamp.")))
}

fn unbase64(s: &str, at: &dyn std::fmt::Display) -> Result<Vec<u8>, Error> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|_| Error::invalid(format!("The value of {at} is not valid base64.")))
}

pub fn base64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// A double as SES writes one in XML: always with a decimal point.
pub fn xml_double(v: f64) -> String {
    format!("{v:?}")
}

pub fn json_double(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    static ROOT: Path<'static> = Path::Root;

    /// A top-level member's path.
    fn at(name: &'static str) -> Path<'static> {
        Path::Member(&ROOT, name)
    }

    #[test]
    fn violations_read_as_aws_writes_them() {
        let mut v = Violations::default();
        v.null(&at("message"));
        v.value(
            "Unknown",
            &at("identityType"),
            "Member must satisfy enum value set: [Domain, EmailAddress]",
            false,
        );
        let e = v.finish::<()>(None).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Validation);
        assert_eq!(
            e.message,
            "2 validation errors detected: Value null at 'message' failed to satisfy constraint: Member must not be null; Value 'Unknown' at 'identityType' failed to satisfy constraint: Member must satisfy enum value set: [Domain, EmailAddress]"
        );
        assert_eq!(Violations::default().finish(Some(1)).unwrap(), 1);
    }

    #[test]
    fn constraints() {
        let mut v = Violations::default();
        check_len(&mut v, "ab", &at("name"), Some(3), Some(5), false);
        check_len(&mut v, "ééé", &at("name"), Some(1), Some(3), false);
        check_range(&mut v, 0, &at("pageSize"), Some(1), Some(1000));
        check_pattern(&mut v, "a:b", &at("header"), "^[!-9;-@A-~]+$", false);
        check_pattern(&mut v, "abc", &at("header"), "^[!-9;-@A-~]+$", false);
        check_len(&mut v, "secret", &at("key"), Some(10), None, true);
        let m = v.finish::<()>(None).unwrap_err().message;
        assert!(m.starts_with("4 validation errors detected: "), "{m}");
        assert!(m.contains("Value 'ab' at 'name' failed to satisfy constraint: Member must have length greater than or equal to 3"));
        assert!(m.contains("Value '0' at 'pageSize' failed to satisfy constraint: Member must have value greater than or equal to 1"));
        assert!(m.contains("Value 'a:b' at 'header' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[!-9;-@A-~]+$"));
        assert!(m.contains("Value '*** Sensitive Data Redacted ***' at 'key'"));
    }

    #[test]
    fn paths_and_keys() {
        let root = Path::Root;
        assert_eq!(
            Path::Member(&root, "IdentityType").to_string(),
            "identityType"
        );
        let message = Path::Member(&root, "Message");
        assert_eq!(
            Path::Member(&message, "Subject").to_string(),
            "message.subject"
        );
        let d = Path::Member(&root, "Destinations");
        let one = Path::Item(&d, 1);
        assert_eq!(
            Path::Member(&one, "Destination").to_string(),
            "destinations.1.member.destination"
        );
        assert_eq!(key("", "Message"), "Message");
        assert_eq!(key("Message", "Subject"), "Message.Subject");
    }

    #[test]
    fn json_types_are_strict() {
        let e = j_string(&serde_json::json!(5), &at("emailIdentity")).unwrap_err();
        assert!(
            e.message
                .contains("invalid type: number, expected a string at 'emailIdentity'")
        );
        assert!(json_body(b"[1]").is_err());
        assert!(
            json_body(b"{nope")
                .unwrap_err()
                .message
                .starts_with("The request body is not valid")
        );
        assert_eq!(json_body(b"  ").unwrap(), serde_json::json!({}));
    }

    use crate::generated::{ses_v1, sesv2};

    type Decoder<T> =
        fn(&QueryParams, &str, &Path<'_>, &mut Violations) -> Result<Option<T>, Error>;

    fn v1<T>(form: &str, decode: Decoder<T>) -> Result<T, Error> {
        let q = QueryParams::parse(form.as_bytes())?;
        let mut v = Violations::default();
        let input = decode(&q, "", &Path::Root, &mut v)?;
        v.finish(input)
    }

    #[test]
    fn v1_inputs_are_decoded_and_checked_as_the_model_says() {
        let e = v1(
            "Action=ListIdentities&IdentityType=Unknown",
            ses_v1::ListIdentitiesRequest::from_query,
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "1 validation error detected: Value 'Unknown' at 'identityType' failed to satisfy constraint: Member must satisfy enum value set: [Domain, EmailAddress]"
        );
        let e = v1(
            "Action=SendEmail&Source=a%40b.c",
            ses_v1::SendEmailRequest::from_query,
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "2 validation errors detected: Value null at 'destination' failed to satisfy constraint: Member must not be null; Value null at 'message' failed to satisfy constraint: Member must not be null"
        );
        let ok = v1(
            "Source=a%40b.c&Destination.ToAddresses.member.1=x%40y.z&Destination.ToAddresses.member.2=w%40y.z\
             &Message.Subject.Data=Hi&Message.Body.Text.Data=t&Tags.member.1.Name=n&Tags.member.1.Value=v",
            ses_v1::SendEmailRequest::from_query,
        )
        .unwrap();
        assert_eq!(ok.source, "a@b.c");
        assert_eq!(
            ok.destination.to_addresses.as_deref(),
            Some(&["x@y.z".to_owned(), "w@y.z".to_owned()][..])
        );
        assert_eq!(ok.message.subject.data, "Hi");
        assert_eq!(ok.tags.unwrap()[0].value, "v");
        let e = v1(
            "Source=a&Destination.ToAddresses=&Message.Subject.Data=s&Message.Body.Text.Data=t&Tags.member.1.Name=n",
            ses_v1::SendEmailRequest::from_query,
        )
        .unwrap_err();
        assert!(
            e.message
                .contains("Value null at 'tags.1.member.value' failed to satisfy constraint"),
            "{}",
            e.message
        );
        let e = v1(
            "Action=ListCustomVerificationEmailTemplates&MaxResults=51",
            ses_v1::ListCustomVerificationEmailTemplatesRequest::from_query,
        )
        .unwrap_err();
        assert!(e.message.contains(
            "Value '51' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 50"
        ));
        let e = v1(
            "SendBounce=1&MaxItems=x",
            ses_v1::ListIdentitiesRequest::from_query,
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidParameter, "a malformed number");
    }

    #[test]
    fn v2_inputs_come_from_the_path_query_and_body() {
        let m = crate::router::route("PUT", "/v2/email/identities/example.com/mail-from").unwrap();
        let j = json_body(
            br#"{"MailFromDomain":"m.example.com","BehaviorOnMxFailure":"REJECT_MESSAGE"}"#,
        )
        .unwrap();
        let mut v = Violations::default();
        let i = sesv2::PutEmailIdentityMailFromAttributesRequest::from_http(
            &m,
            &[],
            &j,
            &Path::Root,
            &mut v,
        )
        .unwrap();
        let i = v.finish(i).unwrap();
        assert_eq!(i.email_identity, "example.com");
        assert_eq!(
            i.behavior_on_mx_failure,
            Some(sesv2::BehaviorOnMxFailure::RejectMessage)
        );
        let m = crate::router::route("DELETE", "/v2/email/tags").unwrap();
        let q = vec![
            ("ResourceArn".to_owned(), "arn".to_owned()),
            ("TagKeys".to_owned(), "a".to_owned()),
            ("TagKeys".to_owned(), "b".to_owned()),
        ];
        let mut v = Violations::default();
        let i = sesv2::UntagResourceRequest::from_http(
            &m,
            &q,
            &serde_json::Value::Null,
            &Path::Root,
            &mut v,
        )
        .unwrap();
        assert_eq!(v.finish(i).unwrap().tag_keys, vec!["a", "b"]);
        let m = crate::router::route("POST", "/v2/email/outbound-emails").unwrap();
        let j = json_body(br#"{"Content":{"Simple":{"Subject":{"Data":"s"},"Body":{},"Headers":[{"Name":"Bad:Name","Value":"v"}]}}}"#).unwrap();
        let mut v = Violations::default();
        let i = sesv2::SendEmailRequest::from_http(&m, &[], &j, &Path::Root, &mut v).unwrap();
        let e = v.finish(i).unwrap_err();
        assert!(
            e.message.contains("at 'content.simple.headers.1.member.name' failed to satisfy constraint: Member must satisfy regular expression pattern"),
            "{}",
            e.message
        );
        let j = json_body(br#"{"Content":{"Raw":{"Data":5}}}"#).unwrap();
        let mut v = Violations::default();
        let e = sesv2::SendEmailRequest::from_http(&m, &[], &j, &Path::Root, &mut v).unwrap_err();
        assert!(
            e.message
                .contains("invalid type: number, expected base64 text at 'content.raw.data'"),
            "{}",
            e.message
        );
    }

    #[test]
    fn v1_outputs_are_written_as_ses_writes_them() {
        let mut x = crate::xml::XmlOut::new();
        ses_v1::GetSendQuotaResponse {
            max24_hour_send: Some(200.0),
            max_send_rate: Some(-1.0),
            sent_last24_hours: Some(3.0),
        }
        .to_xml(&mut x);
        assert_eq!(
            String::from_utf8(x.finish()).unwrap(),
            "<Max24HourSend>200.0</Max24HourSend><MaxSendRate>-1.0</MaxSendRate><SentLast24Hours>3.0</SentLast24Hours>"
        );
        let mut x = crate::xml::XmlOut::new();
        ses_v1::GetIdentityVerificationAttributesResponse {
            verification_attributes: vec![(
                "me@example.com".into(),
                ses_v1::IdentityVerificationAttributes {
                    verification_status: ses_v1::VerificationStatus::Pending,
                    verification_token: None,
                },
            )],
        }
        .to_xml(&mut x);
        assert_eq!(
            String::from_utf8(x.finish()).unwrap(),
            "<VerificationAttributes><entry><key>me@example.com</key><value><VerificationStatus>Pending</VerificationStatus></value></entry></VerificationAttributes>",
            "an address has no token"
        );
    }
}

//! v1 Query request parameters: a form-encoded body (`+` is a space there),
//! with dotted structure paths and `X.member.N` lists. An empty list arrives
//! as the bare key `X=`.

use sesame_model::Error;
use std::collections::BTreeMap;

/// Kept sorted, so that a list's members (`key.member.…`) are one range.
#[derive(Debug, Clone, Default)]
pub struct QueryParams {
    map: BTreeMap<String, String>,
}

impl QueryParams {
    /// Parses a form body; a repeated key keeps its last value.
    pub fn parse(body: &[u8]) -> Self {
        Self {
            map: form_urlencoded::parse(body).into_owned().collect(),
        }
    }

    /// Adds pairs from the URL query string, without overriding the body.
    pub fn merge_url_query(&mut self, raw_query: &str) {
        for (k, v) in form_urlencoded::parse(raw_query.as_bytes()).into_owned() {
            self.map.entry(k).or_insert(v);
        }
    }

    pub fn action(&self) -> Option<&str> {
        self.get("Action")
    }

    /// Every parameter, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    /// A required member; its absence is AWS's "Value null" validation error.
    pub fn required(&self, key: &str) -> Result<&str, Error> {
        self.get(key).ok_or_else(|| Error::missing(key))
    }

    /// `key.member.1`, `key.member.2`, … in index order. `None` when the list
    /// is absent, `Some(vec![])` for the bare `key=`.
    pub fn list(&self, key: &str) -> Option<Vec<String>> {
        let prefix = format!("{key}.member.");
        let mut items = BTreeMap::new();
        for (k, v) in self.under(&prefix) {
            if let Some(n) = k.strip_prefix(&prefix).and_then(|n| n.parse::<u32>().ok()) {
                items.insert(n, v.clone());
            }
        }
        if items.is_empty() {
            return self.map.contains_key(key).then(Vec::new);
        }
        Some(items.into_values().collect())
    }

    /// The indexes N present under `key.member.N.…`, ascending.
    pub fn indexes(&self, key: &str) -> Vec<u32> {
        let prefix = format!("{key}.member.");
        let mut out: Vec<u32> = self
            .under(&prefix)
            .filter_map(|(k, _)| k.strip_prefix(&prefix))
            .filter_map(|rest| rest.split('.').next()?.parse().ok())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The parameters whose keys start with `prefix`.
    fn under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a String, &'a String)> {
        self.map
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(move |(k, _)| k.starts_with(prefix))
    }

    pub fn required_list(&self, key: &str) -> Result<Vec<String>, Error> {
        self.list(key).ok_or_else(|| Error::missing(key))
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(v) => Err(Error::invalid(format!(
                "Value {v} for parameter {key} is invalid. It must be true or false."
            ))),
        }
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                Error::invalid(format!(
                    "Value {v} for parameter {key} is invalid. It must be an integer."
                ))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_empty_lists() {
        let q = QueryParams::parse(
            b"Action=SendEmail&Destination.ToAddresses.member.2=b%40x.com&Destination.ToAddresses.member.1=a%40x.com&Destination.CcAddresses=&Source=Sender+%3Cs%40x.com%3E",
        );
        assert_eq!(q.action(), Some("SendEmail"));
        assert_eq!(
            q.list("Destination.ToAddresses").unwrap(),
            vec!["a@x.com", "b@x.com"]
        );
        assert_eq!(
            q.list("Destination.CcAddresses").unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(q.list("Destination.BccAddresses"), None);
        assert_eq!(q.get("Source"), Some("Sender <s@x.com>"));
    }

    #[test]
    fn member_indexes_sort_numerically() {
        let body: String = (1..=11).map(|i| format!("I.member.{i}=v{i}&")).collect();
        // Neighbours in key order that are not members of I.
        let body =
            format!("{body}H.member.1=h&I.members.1=x&I.member=y&J.member.1=j&I.member.2.Name=n");
        let q = QueryParams::parse(body.as_bytes());
        let l = q.list("I").unwrap();
        assert_eq!(l.len(), 11);
        assert_eq!(l.first().unwrap(), "v1");
        assert_eq!(l.last().unwrap(), "v11");
        assert_eq!(q.indexes("I"), (1..=11).collect::<Vec<u32>>());
    }

    #[test]
    fn scalars() {
        let q = QueryParams::parse(b"A=true&B=nope&C=12&D=x");
        assert_eq!(q.bool("A").unwrap(), Some(true));
        assert!(q.bool("B").is_err());
        assert_eq!(q.int("C").unwrap(), Some(12));
        assert!(q.int("D").is_err());
        assert_eq!(
            q.required("Missing").unwrap_err().message,
            "1 validation error detected: Value null at 'missing' failed to satisfy constraint: Member must not be null"
        );
    }
}

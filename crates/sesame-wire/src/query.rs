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

/// The most members a list may have. No SES v1 input list allows more
/// than 100 (GetIdentityVerificationAttributes), so a longer one is refused
/// before any work is done on it.
pub const MAX_LIST_MEMBERS: usize = 1000;

/// The form's pairs, decoded strictly: a key or value that is not UTF-8
/// once percent-decoded is refused, never replaced.
fn decode(form: &[u8]) -> Result<Vec<(String, String)>, Error> {
    let text = |raw: &[u8]| -> Result<String, Error> {
        let plus: Vec<u8> = raw
            .iter()
            .map(|b| if *b == b'+' { b' ' } else { *b })
            .collect();
        let bytes: Vec<u8> = percent_encoding::percent_decode(&plus).collect();
        String::from_utf8(bytes).map_err(|_| {
            let shown = String::from_utf8_lossy(raw);
            let shown: String = shown.chars().take(64).collect();
            Error::invalid(format!(
                "The request parameter '{shown}' is not valid UTF-8 once decoded."
            ))
        })
    };
    form.split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            Ok((text(k)?, text(v)?))
        })
        .collect()
}

impl QueryParams {
    /// Parses a form body; a repeated key keeps its last value. Refuses
    /// what cannot be read without guessing: bytes that are not UTF-8, and
    /// lists whose members are not numbered 1, 2, 3, … without gaps or are
    /// more than [`MAX_LIST_MEMBERS`].
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        let p = Self {
            map: decode(body)?.into_iter().collect(),
        };
        p.check_lists()?;
        Ok(p)
    }

    /// Adds pairs from the URL query string, without overriding the body.
    pub fn merge_url_query(&mut self, raw_query: &str) -> Result<(), Error> {
        // The usual case (the SDKs POST everything): the lists were checked
        // when the body was parsed, and nothing is added.
        if raw_query.is_empty() {
            return Ok(());
        }
        for (k, v) in decode(raw_query.as_bytes())? {
            self.map.entry(k).or_insert(v);
        }
        self.check_lists()
    }

    /// Every list (`X.member.N…`) and map (`X.entry.N…`) is numbered from 1
    /// without gaps, with at most [`MAX_LIST_MEMBERS`] members. One pass
    /// over the keys, which are sorted, so each list's keys come together.
    fn check_lists(&self) -> Result<(), Error> {
        let mut lists: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for k in self.map.keys() {
            for marker in [".member.", ".entry."] {
                let mut from = 0;
                while let Some(at) = k[from..].find(marker).map(|a| a + from) {
                    let rest = &k[at + marker.len()..];
                    let n = rest.split('.').next().unwrap_or_default();
                    let canonical = !n.is_empty()
                        && n.bytes().all(|b| b.is_ascii_digit())
                        && !n.starts_with('0');
                    let list = &k[..at + marker.len() - 1];
                    match n.parse::<u64>() {
                        Ok(i) if canonical && i as usize <= MAX_LIST_MEMBERS => {
                            lists.entry(list).or_default().push(i)
                        }
                        _ => {
                            return Err(Error::invalid(format!(
                                "The list {list} has a member numbered '{n}': members are numbered 1, 2, 3, … (at most {MAX_LIST_MEMBERS})."
                            )));
                        }
                    }
                    from = at + marker.len();
                }
            }
        }
        for (list, mut idx) in lists {
            idx.sort_unstable();
            idx.dedup();
            if let Some((pos, _)) = idx
                .iter()
                .enumerate()
                .find(|(pos, i)| **i != *pos as u64 + 1)
            {
                return Err(Error::invalid(format!(
                    "The list {list} has no member {}: members are numbered 1, 2, 3, … without gaps.",
                    pos + 1
                )));
            }
        }
        Ok(())
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

    /// Whether any parameter's key is `key` followed by `.`; nothing is
    /// allocated (the keys after `key` in order are those that start with it).
    pub fn has_under(&self, key: &str) -> bool {
        self.map
            .range::<str, _>((std::ops::Bound::Excluded(key), std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(key))
            .any(|(k, _)| k.as_bytes().get(key.len()) == Some(&b'.'))
    }

    /// How many members the list `key.member.N` has: the form's lists are
    /// numbered 1, 2, 3, … without gaps (checked when it was parsed), so
    /// that is the highest N.
    pub fn list_len(&self, key: &str) -> usize {
        self.map
            .range::<str, _>((std::ops::Bound::Excluded(key), std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(key))
            .filter_map(|(k, _)| k[key.len()..].strip_prefix(".member."))
            .filter_map(|rest| rest.split('.').next()?.parse::<usize>().ok())
            .max()
            .unwrap_or(0)
    }

    /// The parameters whose keys start with `prefix`, in key order.
    pub fn under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a String, &'a String)> {
        self.map
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(move |(k, _)| k.starts_with(prefix))
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
        )
        .unwrap();
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
        let q = QueryParams::parse(body.as_bytes()).unwrap();
        let l = q.list("I").unwrap();
        assert_eq!(l.len(), 11);
        assert_eq!(l.first().unwrap(), "v1");
        assert_eq!(l.last().unwrap(), "v11");
        assert_eq!(q.indexes("I"), (1..=11).collect::<Vec<u32>>());
    }

    #[test]
    fn lists_are_numbered_without_gaps_and_bounded() {
        let refused = |body: &str| QueryParams::parse(body.as_bytes()).unwrap_err().message;
        assert!(refused("L.member.1=a&L.member.3=c").contains("no member 2"));
        assert!(refused("L.member.2=b").contains("no member 1"));
        assert!(refused("L.member.1=a&L.member.4294967296=b").contains("4294967296"));
        assert!(refused("L.member.0=a").contains("'0'"));
        assert!(refused("L.member.01=a").contains("'01'"));
        assert!(refused("L.member.x=a").contains("'x'"));
        assert!(
            refused("D.member.1.Destination.ToAddresses.member.2=a&D.member.1.Source=s")
                .contains("no member 1")
        );
        let many: String = (1..=MAX_LIST_MEMBERS + 1)
            .map(|i| format!("L.member.{i}=v&"))
            .collect();
        assert!(refused(&many).contains("at most 1000"));
        let ok: String = (1..=MAX_LIST_MEMBERS)
            .map(|i| format!("L.member.{i}=v&"))
            .collect();
        assert_eq!(
            QueryParams::parse(ok.as_bytes())
                .unwrap()
                .list("L")
                .unwrap()
                .len(),
            MAX_LIST_MEMBERS
        );
        let mut q = QueryParams::parse(b"L.member.1=a").unwrap();
        assert!(
            q.merge_url_query("L.member.3=c").is_err(),
            "the URL query too"
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_are_refused() {
        let e =
            QueryParams::parse(b"Action=VerifyEmailIdentity&EmailAddress=a%FF%FE%FD%40dev.example")
                .unwrap_err();
        assert!(e.message.contains("not valid UTF-8"), "{}", e.message);
        assert!(QueryParams::parse(b"A=\xff").is_err(), "raw bytes too");
        let q = QueryParams::parse("A=%C3%A9t%C3%A9+x&B=a%2Bb".as_bytes()).unwrap();
        assert_eq!((q.get("A"), q.get("B")), (Some("été x"), Some("a+b")));
    }

    #[test]
    fn scalars() {
        let q = QueryParams::parse(b"A=true&B=nope&C=12&D=x").unwrap();
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

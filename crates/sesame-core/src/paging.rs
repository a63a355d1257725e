//! Opaque NextTokens for listings: the position of the last item shown.

use base64::Engine;
use sesame_model::Error;

/// The token that resumes a listing after position `seq`.
pub fn token(seq: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("sesame:{seq}"))
}

/// The position a token resumes after; 0 without one.
pub fn after(token: Option<&str>) -> Result<i64, Error> {
    let Some(t) = token.filter(|t| !t.is_empty()) else {
        return Ok(0);
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("sesame:").and_then(|n| n.parse().ok()))
        .ok_or_else(|| Error::invalid(format!("Invalid NextToken: {t}")))
}

/// One page from `rows` fetched with a limit of `max + 1`: at most `max`
/// items, and a token when more follow.
pub fn page<T>(mut rows: Vec<(i64, T)>, max: u32, after: i64) -> (Vec<T>, Option<String>) {
    let more = rows.len() > max as usize;
    rows.truncate(max as usize);
    let next = more.then(|| token(rows.last().map(|(s, _)| *s).unwrap_or(after)));
    (rows.into_iter().map(|(_, t)| t).collect(), next)
}

/// A page of a listing by position: `fetch(after, limit)` reads the rows
/// after a position, and one more than `max` is asked for to know whether
/// more follow.
pub async fn list<T, Fut>(
    next_token: Option<&str>,
    max: u32,
    fetch: impl FnOnce(i64, u32) -> Fut,
) -> Result<(Vec<T>, Option<String>), Error>
where
    Fut: std::future::Future<Output = Result<Vec<(i64, T)>, sesame_store::StoreError>>,
{
    let after = after(next_token)?;
    let rows = fetch(after, max + 1).await.map_err(crate::internal)?;
    Ok(page(rows, max, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_pages() {
        assert_eq!(after(Some(&token(42))).unwrap(), 42);
        assert_eq!(after(None).unwrap(), 0);
        assert!(after(Some("garbage!")).is_err());
        let (items, next) = page(vec![(3, 'a'), (5, 'b'), (9, 'c')], 2, 0);
        assert_eq!(items, vec!['a', 'b']);
        assert_eq!(after(next.as_deref()).unwrap(), 5);
        assert_eq!(page(vec![(3, 'a')], 2, 0).1, None);
    }
}

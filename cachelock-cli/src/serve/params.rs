//! Query parameters: parsed by hand from the raw pairs, so that every mistake (an unknown
//! name, a repeated one, a bad value) gets its own 400 message.

use std::time::Duration;

use super::reply::ApiError;
use crate::duration::{check_ttl, parse_duration};

/// The parameters of one request, by name; each may appear once.
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Checks the names against `allowed` and refuses repeats.
    pub fn new(pairs: Vec<(String, String)>, allowed: &[&str]) -> Result<Params, ApiError> {
        for (i, (name, _)) in pairs.iter().enumerate() {
            if !allowed.contains(&name.as_str()) {
                let allowed = if allowed.is_empty() {
                    "none".to_owned()
                } else {
                    allowed.join(", ")
                };
                return Err(ApiError::bad_request(format!(
                    "unknown parameter {name:?} (allowed: {allowed})"
                )));
            }
            if pairs[..i].iter().any(|(earlier, _)| earlier == name) {
                return Err(ApiError::bad_request(format!(
                    "parameter {name:?} is given more than once"
                )));
            }
        }
        Ok(Params(pairs))
    }

    /// The value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean flag: `true`/`false` in any case (Locker's Python `True`/`False`), `1`/`0`,
    /// `yes`/`no`; `default` when absent.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        let Some(value) = self.get(name) else {
            return Ok(default);
        };
        match value.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(ApiError::bad_request(format!(
                "parameter {name}={value:?} is not a boolean (use true or false)"
            ))),
        }
    }

    /// The `ttl` parameter: a duration (`30s`, `5m`, `1h`, or seconds) in `(0, max]`;
    /// `default` when absent.
    pub fn ttl(&self, default: Duration, max: Duration) -> Result<Duration, ApiError> {
        let Some(value) = self.get("ttl") else {
            return Ok(default);
        };
        let ttl = parse_duration(value).map_err(|e| ApiError::bad_request(format!("ttl: {e}")))?;
        check_ttl(ttl, max).map_err(|e| ApiError::bad_request(format!("ttl: {e}")))?;
        Ok(ttl)
    }
}

/// The longest `id` accepted, in bytes.
pub const MAX_ID_LEN: usize = 256;

/// The `id` parameter: `None` when absent or empty; refused when too long or with control
/// characters.
pub fn id(params: &Params) -> Result<Option<String>, ApiError> {
    let Some(id) = params.get("id").filter(|id| !id.is_empty()) else {
        return Ok(None);
    };
    if id.len() > MAX_ID_LEN {
        return Err(ApiError::bad_request(format!(
            "id is longer than {MAX_ID_LEN} bytes"
        )));
    }
    if id.chars().any(char::is_control) {
        return Err(ApiError::bad_request("id contains a control character"));
    }
    Ok(Some(id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)], allowed: &[&str]) -> Result<Params, ApiError> {
        let pairs = pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        Params::new(pairs, allowed)
    }

    #[test]
    fn flags_accept_locker_spellings_and_refuse_the_rest() {
        let p = params(
            &[("lockParents", "False"), ("lockChildren", "TRUE")],
            &["lockParents", "lockChildren"],
        )
        .unwrap();
        assert!(!p.flag("lockParents", true).unwrap());
        assert!(p.flag("lockChildren", false).unwrap());
        assert!(p.flag("absent", true).unwrap());
        let bad = params(&[("lockParents", "nope")], &["lockParents"]).unwrap();
        assert!(bad.flag("lockParents", true).is_err());
    }

    #[test]
    fn unknown_and_repeated_names_are_refused() {
        assert!(params(&[("lockparents", "false")], &["lockParents"]).is_err());
        assert!(params(&[("id", "a"), ("id", "b")], &["id"]).is_err());
        assert!(params(&[("x", "1")], &[]).is_err());
    }

    #[test]
    fn ttls_are_parsed_and_bounded() {
        let max = Duration::from_secs(3600);
        let default = Duration::from_secs(60);
        let ttl = |v: &str| params(&[("ttl", v)], &["ttl"]).unwrap().ttl(default, max);
        assert_eq!(ttl("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(ttl("90").unwrap(), Duration::from_secs(90));
        assert!(ttl("0").is_err());
        assert!(ttl("2h").is_err());
        assert!(ttl("later").is_err());
        assert_eq!(
            params(&[], &["ttl"]).unwrap().ttl(default, max).unwrap(),
            default
        );
    }

    #[test]
    fn ids_are_bounded() {
        let id_of = |v: &str| id(&params(&[("id", v)], &["id"]).unwrap());
        assert_eq!(id_of("timmy").unwrap().as_deref(), Some("timmy"));
        assert_eq!(id_of("").unwrap(), None);
        assert!(id_of(&"x".repeat(MAX_ID_LEN + 1)).is_err());
        assert!(id_of("a\nb").is_err());
    }
}

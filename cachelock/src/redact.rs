//! [`redact_url`]: a store URL fit to show, its password hidden.

/// A URL with its password replaced by `***`, fit to log or show.
///
/// Covers `scheme://user:password@host`, `scheme://password@host` (a lone user-info part is
/// hidden whole: it may be a password), and the `pass=` / `password=` query parameters of
/// `redis+unix://` URLs. Works on malformed URLs too: they are the ones that end up in
/// error messages.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    // The user-info ends at the last `@` before the query: a password may hold `/` or `@`.
    let query_start = rest.find('?').unwrap_or(rest.len());
    let (userinfo, after) = match rest[..query_start].rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let mut out = String::with_capacity(url.len());
    out.push_str(scheme);
    if let Some(userinfo) = userinfo {
        match userinfo.split_once(':') {
            Some((user, _password)) => {
                out.push_str(user);
                out.push_str(":***@");
            }
            None => out.push_str("***@"),
        }
    }
    match after.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((name, _))
                        if name.eq_ignore_ascii_case("pass")
                            || name.eq_ignore_ascii_case("password") =>
                    {
                        format!("{name}=***")
                    }
                    _ => param.to_owned(),
                })
                .collect();
            out.push_str(&params.join("&"));
        }
        None => out.push_str(after),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_hidden_in_every_form() {
        assert_eq!(redact_url("redis://:pw@h:1/0"), "redis://:***@h:1/0");
        assert_eq!(
            redact_url("postgres://u:p%40ss@db/app"),
            "postgres://u:***@db/app"
        );
        assert_eq!(redact_url("mysql://secret@db"), "mysql://***@db");
        assert_eq!(
            redact_url("redis+unix:///s?db=1&pass=x"),
            "redis+unix:///s?db=1&pass=***"
        );
        assert_eq!(redact_url("memory://"), "memory://");
    }
}

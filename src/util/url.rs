//! Connection URLs (`REDIS_URL`, `DATABASE_URL`, `[app] database_url`): split into parts the way PHP's
//! `parse_url` does for Laravel's `ConfigurationUrlParser`, percent coding (`rawurlencode` /
//! `rawurldecode`), and the one password masker every log line, error and report uses.
//!
//! Pure text functions: nothing here opens a connection or knows what a part means to Redis or SQL.

/// A URL split into its raw parts (still percent-encoded): `scheme://user:password@host:port/path?query#fragment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Parts<'a> {
    pub scheme: &'a str,
    pub user: Option<&'a str>,
    /// `Some("")` for `user:@host`.
    pub password: Option<&'a str>,
    /// Without the brackets of an IPv6 literal.
    pub host: &'a str,
    pub port: Option<&'a str>,
    /// What follows the first `/` after the host, without that `/`.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub fragment: Option<&'a str>,
}

/// Splits `scheme://…`. The user info ends at the last `@` before the query, so a raw `/` or `@` in a
/// password does not cut it short; the fragment starts at the first `#`, as in PHP.
pub fn split(url: &str) -> Result<Parts<'_>, &'static str> {
    let (scheme, rest) = url.split_once("://").ok_or("missing scheme://")?;
    let (rest, fragment) = match rest.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (rest, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (userinfo, rest) = match rest.rsplit_once('@') {
        Some((u, r)) => (Some(u), r),
        None => (None, rest),
    };
    let (hostport, path) = match rest.split_once('/') {
        Some((h, p)) => (h, p),
        None => (rest, ""),
    };
    let (host, port) = match hostport.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or("unclosed [ in host")?;
            (host, after.strip_prefix(':'))
        }
        None => match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        },
    };
    let (user, password) = match userinfo {
        Some(info) => match info.split_once(':') {
            Some((u, p)) => (Some(u), Some(p)),
            None => (Some(info), None),
        },
        None => (None, None),
    };
    Ok(Parts {
        scheme,
        user,
        password,
        host,
        port: port.filter(|p| !p.is_empty()),
        path,
        query,
        fragment,
    })
}

/// Percent-encodes everything but RFC 3986's unreserved characters (PHP's `rawurlencode`).
pub fn encode(s: &str) -> String {
    encode_keeping(s, |_| false)
}

/// Like [`encode`], keeping `/` (a file path inside a `sqlite://` URL).
pub fn encode_path(s: &str) -> String {
    encode_keeping(s, |b| b == b'/')
}

fn encode_keeping(s: &str, keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') || keep(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (PHP's `rawurldecode`, strict: a bad escape is an error, not kept as is).
pub fn decode(s: &str) -> Result<String, &'static str> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or("truncated %-escape")?;
            let hex = std::str::from_utf8(hex).map_err(|_| "invalid %-escape")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "invalid %-escape")?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "%-escapes are not UTF-8")
}

/// `url` with its password replaced by `***`: the one in the user info (up to the last `@` before the
/// query, even when a raw password holds `/` or `@`) and `pass=` / `password=` query parameters. Text
/// that is not a URL comes back unchanged.
pub fn mask_password(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let mut out = match head.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host_and_path)) => match userinfo.split_once(':') {
                Some((user, pass)) if !pass.is_empty() => {
                    format!("{scheme}://{user}:***@{host_and_path}")
                }
                _ => head.to_owned(),
            },
            None => head.to_owned(),
        },
        None => head.to_owned(),
    };
    if let Some(query) = query {
        let masked: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, v)) if (k == "pass" || k == "password") && !v.is_empty() => {
                    format!("{k}=***")
                }
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&masked.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_parse_url() {
        let p = split("rediss://u%40x:p/w@d@[::1]:6380/2?timeout=1#insecure").unwrap();
        assert_eq!(p.scheme, "rediss");
        assert_eq!(p.user, Some("u%40x"));
        assert_eq!(p.password, Some("p/w@d"));
        assert_eq!((p.host, p.port), ("::1", Some("6380")));
        assert_eq!(p.path, "2");
        assert_eq!(p.query, Some("timeout=1"));
        assert_eq!(p.fragment, Some("insecure"));
        let p = split("mysql://db.internal/app").unwrap();
        assert_eq!(
            (p.user, p.password, p.host, p.port),
            (None, None, "db.internal", None)
        );
        assert_eq!(p.path, "app");
        assert_eq!(split("db.internal:3306"), Err("missing scheme://"));
        assert_eq!(split("redis://[::1:6379"), Err("unclosed [ in host"));
    }

    #[test]
    fn percent_coding_round_trips_and_rejects_bad_escapes() {
        assert_eq!(encode("p@ss w/rd"), "p%40ss%20w%2Frd");
        assert_eq!(encode_path("/var/db file"), "/var/db%20file");
        assert_eq!(decode("p%40ss%20w%2Frd").as_deref(), Ok("p@ss w/rd"));
        assert_eq!(decode("%4"), Err("truncated %-escape"));
        assert_eq!(decode("%zz"), Err("invalid %-escape"));
        assert_eq!(decode("%ff"), Err("%-escapes are not UTF-8"));
    }

    #[test]
    fn masks_user_info_and_query_passwords_only() {
        assert_eq!(mask_password("redis://u:p@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(mask_password("mysql://u:p/a@ss@h/db"), "mysql://u:***@h/db");
        assert_eq!(mask_password("redis://h:1/0"), "redis://h:1/0");
        assert_eq!(mask_password("redis://u:@h"), "redis://u:@h");
        assert_eq!(
            mask_password("redis+unix:///run/r.sock?db=0&pass=s3&user=u"),
            "redis+unix:///run/r.sock?db=0&pass=***&user=u"
        );
        assert_eq!(mask_password("not a url"), "not a url");
    }
}

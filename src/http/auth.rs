//! Who may use the console, and how a request proves it.
//!
//! - Two tokens, given by the command (from `DEFER_WORKER_CONSOLE_TOKEN` or the file
//!   `DEFER_WORKER_CONSOLE_TOKEN_FILE` names, and `DEFER_WORKER_CONSOLE_READ_TOKEN`): the admin token
//!   may do everything, the read token only look. With no token at all the console is open, which
//!   the command allows on a loopback address only; then every request's `Host` must be a loopback
//!   name too, so a page of another site cannot reach it through DNS rebinding.
//! - A request carries a token as `Authorization: Bearer <token>`, or as the `dw_console` cookie the
//!   login form sets (HttpOnly, SameSite=Strict). The cookie holds a SHA-256 of the token, not the
//!   token. Every comparison is constant-time.
//! - Every POST is refused when its `Origin` (or, without one, its `Referer`) is not the console's own
//!   (`http(s)://` + the request's `Host`), token or not; a POST with neither header is accepted only
//!   with a bearer token (a script, not a browser: browsers send `Origin` on every POST).
//!
//! The log names the role (`admin`, `read`, `local`), never a token.

use hyper::header::{HeaderMap, AUTHORIZATION, COOKIE, HOST, ORIGIN, REFERER};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The cookie the login form sets.
pub const COOKIE_NAME: &str = "dw_console";

/// The console's tokens. Debug never prints them.
#[derive(Clone, Default)]
pub struct Tokens {
    admin: Option<String>,
    read: Option<String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("admin", &self.admin.as_ref().map(|_| "***"))
            .field("read", &self.read.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Why the tokens cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("{0} is empty")]
    Empty(&'static str),
    #[error("{0} is shorter than 16 characters")]
    Short(&'static str),
    #[error("DEFER_WORKER_CONSOLE_READ_TOKEN is set but DEFER_WORKER_CONSOLE_TOKEN (the admin token) is not")]
    ReadWithoutAdmin,
    #[error("DEFER_WORKER_CONSOLE_READ_TOKEN equals the admin token")]
    SameTokens,
}

/// The shortest token accepted.
const MIN_TOKEN: usize = 16;

impl Tokens {
    /// `admin` and `read` as given (trimmed, as a token file's final newline); `admin_name` names
    /// where the admin token came from, for errors.
    pub fn new(
        admin: Option<&str>,
        admin_name: &'static str,
        read: Option<&str>,
    ) -> Result<Tokens, TokenError> {
        let check = |t: Option<&str>, name: &'static str| -> Result<Option<String>, TokenError> {
            match t.map(str::trim) {
                None => Ok(None),
                Some("") => Err(TokenError::Empty(name)),
                Some(t) if t.chars().count() < MIN_TOKEN => Err(TokenError::Short(name)),
                Some(t) => Ok(Some(t.to_owned())),
            }
        };
        let admin = check(admin, admin_name)?;
        let read = check(read, "DEFER_WORKER_CONSOLE_READ_TOKEN")?;
        match (&admin, &read) {
            (None, Some(_)) => return Err(TokenError::ReadWithoutAdmin),
            (Some(a), Some(r)) if a == r => return Err(TokenError::SameTokens),
            _ => {}
        }
        Ok(Tokens { admin, read })
    }

    /// True when no token is set: the console is open (loopback only).
    pub fn is_open(&self) -> bool {
        self.admin.is_none()
    }

    /// The role a presented token (or cookie value) has, compared in constant time.
    fn role_of(&self, presented: &[u8], as_cookie: bool) -> Option<Role> {
        let matches = |token: &Option<String>| {
            token.as_deref().is_some_and(|t| {
                let expected = if as_cookie {
                    cookie_value(t).into_bytes()
                } else {
                    t.as_bytes().to_vec()
                };
                bool::from(expected.ct_eq(presented))
            })
        };
        // Both are compared, so the time does not tell which one matched.
        let admin = matches(&self.admin);
        let read = matches(&self.read);
        if admin {
            Some(Role::Admin)
        } else if read {
            Some(Role::Read)
        } else {
            None
        }
    }

    /// The cookie value a correct login with `token` gets, or None for a wrong token.
    pub fn login(&self, token: &str) -> Option<String> {
        self.role_of(token.trim().as_bytes(), false)
            .map(|_| cookie_value(token.trim()))
    }
}

/// The cookie's value for a token: not the token itself.
fn cookie_value(token: &str) -> String {
    let digest = Sha256::digest(format!("defer-worker console v1\n{token}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a request may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The admin token, or no token configured on a loopback console.
    Admin,
    /// The read-only token: GET only.
    Read,
}

/// Who made a request, as the log names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Who {
    pub role: Role,
    /// Without any token configured (the open loopback console).
    pub local: bool,
    /// With `Authorization: Bearer` rather than the cookie.
    pub bearer: bool,
}

impl Who {
    pub fn name(&self) -> &'static str {
        match (self.local, self.role) {
            (true, _) => "local",
            (false, Role::Admin) => "admin",
            (false, Role::Read) => "read",
        }
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No token, or a wrong one (401).
    Unauthenticated,
    /// The open console was reached under a non-loopback host name (403).
    ForeignHost,
}

/// Who sent a request with these headers, or why it is refused.
pub fn identify(tokens: &Tokens, headers: &HeaderMap) -> Result<Who, Refused> {
    if tokens.is_open() {
        let host = header(headers, HOST.as_str()).unwrap_or_default();
        return if is_loopback_host(host) {
            Ok(Who {
                role: Role::Admin,
                local: true,
                bearer: false,
            })
        } else {
            Err(Refused::ForeignHost)
        };
    }
    if let Some(auth) = header(headers, AUTHORIZATION.as_str()) {
        let token = auth
            .strip_prefix("Bearer ")
            .or_else(|| auth.strip_prefix("bearer "))
            .unwrap_or_default()
            .trim();
        return tokens
            .role_of(token.as_bytes(), false)
            .map(|role| Who {
                role,
                local: false,
                bearer: true,
            })
            .ok_or(Refused::Unauthenticated);
    }
    let cookie = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim());
    cookie
        .and_then(|c| tokens.role_of(c.as_bytes(), true))
        .map(|role| Who {
            role,
            local: false,
            bearer: false,
        })
        .ok_or(Refused::Unauthenticated)
}

/// True when a POST with these headers comes from the console's own pages (or from a script holding
/// the bearer token, which sends neither `Origin` nor `Referer`).
pub fn same_origin(headers: &HeaderMap, who: &Who) -> bool {
    let Some(host) = header(headers, HOST.as_str()) else {
        return false;
    };
    let own =
        |origin: &str| origin == format!("http://{host}") || origin == format!("https://{host}");
    if let Some(origin) = header(headers, ORIGIN.as_str()) {
        return own(origin);
    }
    if let Some(referer) = header(headers, REFERER.as_str()) {
        // The origin of the referring page: scheme://host[:port], before the path.
        let origin = referer
            .split_once("://")
            .map(|(scheme, rest)| {
                let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
                format!("{scheme}://{authority}")
            })
            .unwrap_or_default();
        return own(&origin);
    }
    who.bearer || who.local
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `127.0.0.1:port`, `localhost:port`, `[::1]:port` (or without a port).
fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    const ADMIN: &str = "admin-token-0123456789";
    const READ: &str = "read-token-0123456789";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn tokens_are_checked() {
        assert_eq!(
            Tokens::new(Some(" "), "T", None).unwrap_err(),
            TokenError::Empty("T")
        );
        assert_eq!(
            Tokens::new(Some("short"), "T", None).unwrap_err(),
            TokenError::Short("T")
        );
        assert_eq!(
            Tokens::new(None, "T", Some(READ)).unwrap_err(),
            TokenError::ReadWithoutAdmin
        );
        assert_eq!(
            Tokens::new(Some(ADMIN), "T", Some(ADMIN)).unwrap_err(),
            TokenError::SameTokens
        );
        let t = Tokens::new(Some(ADMIN), "T", Some(READ)).unwrap();
        assert!(!format!("{t:?}").contains("token-"));
    }

    #[test]
    fn bearer_and_cookie_roles() {
        let t = Tokens::new(Some(ADMIN), "T", Some(READ)).unwrap();
        let who = |h: &[(&'static str, &str)]| identify(&t, &headers(h));
        assert_eq!(
            who(&[("authorization", &format!("Bearer {ADMIN}"))])
                .unwrap()
                .role,
            Role::Admin
        );
        assert_eq!(
            who(&[("authorization", &format!("Bearer {READ}"))])
                .unwrap()
                .name(),
            "read"
        );
        assert_eq!(
            who(&[("authorization", "Bearer nope")]),
            Err(Refused::Unauthenticated)
        );
        assert_eq!(who(&[]), Err(Refused::Unauthenticated));
        let cookie = t.login(READ).unwrap();
        assert!(!cookie.contains(READ));
        let c = format!("x=1; {COOKIE_NAME}={cookie}");
        assert_eq!(who(&[("cookie", &c)]).unwrap().role, Role::Read);
        // The raw token is not a valid cookie.
        let raw = format!("{COOKIE_NAME}={ADMIN}");
        assert_eq!(who(&[("cookie", &raw)]), Err(Refused::Unauthenticated));
        assert_eq!(t.login("wrong-token-0123456789"), None);
    }

    #[test]
    fn open_console_answers_loopback_hosts_only() {
        let t = Tokens::default();
        assert!(
            identify(&t, &headers(&[("host", "127.0.0.1:9091")]))
                .unwrap()
                .local
        );
        assert!(identify(&t, &headers(&[("host", "localhost:9091")])).is_ok());
        assert!(identify(&t, &headers(&[("host", "[::1]:9091")])).is_ok());
        assert_eq!(
            identify(&t, &headers(&[("host", "evil.example:9091")])),
            Err(Refused::ForeignHost)
        );
    }

    #[test]
    fn posts_need_the_own_origin() {
        let cookie = Who {
            role: Role::Admin,
            local: false,
            bearer: false,
        };
        let bearer = Who {
            bearer: true,
            ..cookie
        };
        let h = |p: &[(&'static str, &str)]| headers(p);
        assert!(same_origin(
            &h(&[("host", "c:1"), ("origin", "http://c:1")]),
            &cookie
        ));
        assert!(!same_origin(
            &h(&[("host", "c:1"), ("origin", "http://evil")]),
            &cookie
        ));
        assert!(!same_origin(
            &h(&[("host", "c:1"), ("origin", "http://evil")]),
            &bearer
        ));
        assert!(same_origin(
            &h(&[("host", "c:1"), ("referer", "http://c:1/failed?x")]),
            &cookie
        ));
        assert!(!same_origin(
            &h(&[("host", "c:1"), ("referer", "http://c:1.evil/")]),
            &cookie
        ));
        assert!(!same_origin(&h(&[("host", "c:1")]), &cookie));
        assert!(same_origin(&h(&[("host", "c:1")]), &bearer));
    }
}

//! `application/x-www-form-urlencoded` (query strings and form bodies), with [`crate::util::url`]'s
//! percent decoding. A body is read up to [`MAX_BODY`] bytes.

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::Request;

use crate::util::url;

/// The largest form body read (the console's forms carry a few short fields).
const MAX_BODY: usize = 16 * 1024;

/// Decoded `name=value` pairs, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form(Vec<(String, String)>);

impl Form {
    /// Parses `a=1&b=x+y`; pairs that do not decode are skipped.
    pub fn parse(raw: &str) -> Form {
        let decode = |s: &str| url::decode(&s.replace('+', " ")).ok();
        Form(
            raw.split('&')
                .filter(|p| !p.is_empty())
                .filter_map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    Some((decode(k)?, decode(v)?))
                })
                .collect(),
        )
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name` when it is not blank, trimmed.
    pub fn non_empty(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }
}

/// Reads a form body (at most [`MAX_BODY`] bytes).
pub async fn read_body(req: Request<Incoming>) -> Result<Form, &'static str> {
    let bytes = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|_| "the request body is too large or could not be read")?
        .to_bytes();
    let text = std::str::from_utf8(&bytes).map_err(|_| "the form is not UTF-8")?;
    Ok(Form::parse(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_query_strings() {
        let f = Form::parse("queue=emails&q=SMTP+451%21&empty=&flag");
        assert_eq!(f.get("queue"), Some("emails"));
        assert_eq!(f.get("q"), Some("SMTP 451!"));
        assert_eq!(f.non_empty("empty"), None);
        assert_eq!(f.get("flag"), Some(""));
        assert_eq!(f.get("missing"), None);
    }
}

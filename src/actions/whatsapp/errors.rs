//! What a Cloud API failure means for the job: retry later (throttling, Meta's transient errors, 5xx,
//! timeouts, connection problems) or give up (bad token, bad parameters, undeliverable, outside the
//! 24-hour window, policy blocks). The message written to failed_jobs says which code Meta gave.
//!
//! Pure classification plus message building; it never logs, and never lets a phone number through:
//! runs of 9 or more digits in Meta's texts are masked, and the request's own data is never quoted.

use std::time::Duration;

use crate::actions::ActionError;

/// Meta codes that mean "try again later".
const RETRY_CODES: &[i64] = &[
    130429, // throughput rate limit
    131056, // pair rate limit (same recipient too fast)
    80007,  // WABA rate limit
    4,      // app-level call limit
    2,      // service temporarily unavailable
    1,      // unknown API error (transient)
    131000, // something went wrong
    131016, // service unavailable
    133004, // server temporarily unavailable
];

/// Meta codes that stop a whole sender, not one message: the circuit breaker opens on them
/// (`breaker`), and the job that met one is handed back, not failed.
pub const BREAKER_CODES: &[i64] = &[
    190,    // access token invalid or expired
    368,    // sender temporarily blocked for policy violations
    131031, // business account locked
    131048, // spam rate limit: too many previous messages blocked or flagged
];

/// Meta's pair rate limit: too many messages to the same recipient; only that recipient waits.
pub const PAIR_RATE_LIMIT: i64 = 131056;

/// What the operator must do about a breaker code.
pub fn breaker_remedy(code: i64) -> &'static str {
    match code {
        190 => "the access token is invalid or expired: put a new token in WHATSAPP_API_TOKEN and restart the worker",
        368 => "the sender is temporarily blocked for policy violations: check the number in WhatsApp Manager and request a review (appeal) there",
        131031 => "the business account is locked: appeal in WhatsApp Manager (Business Support Home)",
        131048 => "spam rate limit (too many earlier messages blocked or flagged): check the number's quality rating in WhatsApp Manager and send less",
        _ => "see Meta's error-code reference",
    }
}

/// Meta codes that will not get better by retrying.
fn is_permanent_code(code: i64) -> bool {
    matches!(
        code,
        0 | 190 // authentication / access token
        | 100 // invalid parameter
        | 131008 // required parameter missing
        | 131026 // message undeliverable
        | 131047 // re-engagement: outside the 24-hour window
        | 131051 // unsupported message type
        | 368 // temporarily blocked for policy violations
        | 131031 // business account locked
        | 131048 // spam rate limit
        | 132000..=132016 // template problems
    )
}

/// A failed send, classified, with what the `whatsapp_messages_log` row needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// Retry later (`true`) or fail now.
    pub retry: bool,
    /// Meta's `Retry-After`, when it sent one.
    pub after: Option<Duration>,
    /// Meta's error code (or `http_<status>` / `timeout` / `connection`), for `error_code`.
    pub code: String,
    /// Meta's error text, for the log row's `error` column.
    pub error: String,
    /// The whole story for failed_jobs and the worker log.
    pub message: String,
}

impl SendError {
    /// Meta's numeric code, when it gave one.
    pub fn meta_code(&self) -> Option<i64> {
        self.code.parse().ok()
    }

    /// The code, when it is one that stops the whole sender ([`BREAKER_CODES`]).
    pub fn breaker_code(&self) -> Option<i64> {
        self.meta_code().filter(|c| BREAKER_CODES.contains(c))
    }
}

impl From<SendError> for ActionError {
    fn from(e: SendError) -> ActionError {
        if e.retry {
            ActionError::Retry {
                message: e.message,
                after: e.after,
            }
        } else {
            ActionError::Permanent { message: e.message }
        }
    }
}

/// Whether Meta's `code` (with the HTTP `status`) is worth retrying.
pub fn is_retryable(status: u16, code: Option<i64>) -> bool {
    if status >= 500 {
        return true;
    }
    match code {
        Some(c) if RETRY_CODES.contains(&c) => true,
        Some(c) if is_permanent_code(c) => false,
        // Unknown code or no JSON: throttling and request timeouts are transient, other 4xx are not.
        _ => matches!(status, 408 | 429),
    }
}

/// Classifies a non-2xx answer from `POST /{phone-number-id}/messages`.
pub fn from_response(status: u16, retry_after: Option<&str>, body: &[u8]) -> SendError {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let err = json.as_ref().and_then(|j| j.get("error"));
    let code = err.and_then(|e| e.get("code")).and_then(json_int);
    let retry = is_retryable(status, code);
    let after = if retry {
        retry_after.and_then(parse_retry_after)
    } else {
        None
    };
    let Some(err) = err else {
        let snippet = scrub(&one_line(&String::from_utf8_lossy(body), 200));
        let message = if snippet.is_empty() {
            format!("WhatsApp Cloud API answered HTTP {status} with an empty body")
        } else {
            format!("WhatsApp Cloud API answered HTTP {status}: {snippet}")
        };
        return SendError {
            retry,
            after,
            code: format!("http_{status}"),
            error: message.clone(),
            message,
        };
    };
    let text = |key: &str| {
        err.get(key)
            .and_then(|v| v.as_str())
            .map(|s| scrub(&one_line(s, 300)))
    };
    let meta_message = text("message").unwrap_or_else(|| "no message".into());
    let details = err
        .get("error_data")
        .and_then(|d| d.get("details"))
        .and_then(|v| v.as_str())
        .map(|s| scrub(&one_line(s, 300)))
        .filter(|d| !d.is_empty() && *d != meta_message);
    let subcode = err.get("error_subcode").and_then(json_int);
    let trace = text("fbtrace_id");
    let code_text = code.map_or_else(|| format!("http_{status}"), |c| c.to_string());
    let mut error = meta_message.clone();
    if let Some(d) = &details {
        error.push_str(": ");
        error.push_str(d);
    }
    let mut message = match code {
        Some(c) => format!("WhatsApp Cloud API error {c}: {error} (HTTP {status}"),
        None => format!("WhatsApp Cloud API error: {error} (HTTP {status}"),
    };
    if let Some(s) = subcode {
        message.push_str(&format!(", subcode {s}"));
    }
    if let Some(t) = trace {
        message.push_str(&format!(", fbtrace_id {t}"));
    }
    message.push(')');
    if let Some(c) = code.filter(|c| BREAKER_CODES.contains(c)) {
        message.push_str("; ");
        message.push_str(breaker_remedy(c));
    }
    if code == Some(131047) {
        message.push_str("; more than 24 hours since the recipient last wrote: send an approved template instead");
    }
    if let Some(a) = after {
        message.push_str(&format!("; retry after {}s", a.as_secs()));
    }
    SendError {
        retry,
        after,
        code: code_text,
        error,
        message,
    }
}

/// Classifies a request that got no HTTP answer.
pub fn from_transport(err: &reqwest::Error, timeout: Duration) -> SendError {
    let (code, message) = if err.is_timeout() {
        (
            "timeout",
            format!(
                "WhatsApp Cloud API request timed out after {}s (WHATSAPP_TIMEOUT)",
                timeout.as_secs_f64()
            ),
        )
    } else if err.is_connect() {
        (
            "connection",
            format!(
                "could not connect to the WhatsApp Cloud API: {}",
                causes(err)
            ),
        )
    } else {
        (
            "connection",
            format!("WhatsApp Cloud API request failed: {}", causes(err)),
        )
    };
    let message = scrub(&message);
    SendError {
        retry: true,
        after: None,
        code: code.into(),
        error: message.clone(),
        message,
    }
}

/// The error and its sources, without the URL.
fn causes(err: &reqwest::Error) -> String {
    let mut parts = vec![strip_url(&err.to_string())];
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

fn strip_url(s: &str) -> String {
    match s.find(" for url (") {
        Some(i) => s[..i].to_owned(),
        None => s.to_owned(),
    }
}

fn json_int(v: &serde_json::Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

/// `Retry-After` as seconds or an HTTP date; capped at one day.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    let secs = if let Ok(n) = value.parse::<u64>() {
        n
    } else {
        let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
        let delta = at.signed_duration_since(chrono::Utc::now()).num_seconds();
        u64::try_from(delta).unwrap_or(0)
    };
    Some(Duration::from_secs(secs.min(86_400)))
}

fn one_line(s: &str, max_chars: usize) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max_chars {
        let cut: String = flat.chars().take(max_chars).collect();
        format!("{cut}…")
    } else {
        flat
    }
}

/// Masks runs of 9 or more digits (phone numbers, account ids).
fn scrub(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 9 {
            out.push_str("***");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for ch in s.chars() {
        if ch.is_ascii_digit() {
            run.push(ch);
        } else {
            flush(&mut run, &mut out);
            out.push(ch);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(code: i64) -> Vec<u8> {
        serde_json::json!({"error": {"message": "(#131026) Message undeliverable", "type": "OAuthException",
            "code": code, "error_subcode": 2494010, "fbtrace_id": "AbCd"}})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn codes_are_classified() {
        for c in [130429, 131056, 80007, 4, 2, 1, 131000, 131016, 133004] {
            assert!(from_response(400, None, &meta(c)).retry, "{c}");
        }
        for c in [
            0, 190, 100, 131008, 131026, 131047, 131051, 132000, 132016, 368, 131031, 131048,
        ] {
            assert!(!from_response(400, None, &meta(c)).retry, "{c}");
        }
        assert!(from_response(503, None, &meta(190)).retry);
        assert!(from_response(429, None, b"").retry);
        assert!(!from_response(404, None, b"<html>nope</html>").retry);
    }

    #[test]
    fn messages_name_the_code_and_hide_numbers() {
        let e = from_response(400, None, &meta(131026));
        assert_eq!(e.code, "131026");
        assert_eq!(
            e.message,
            "WhatsApp Cloud API error 131026: (#131026) Message undeliverable (HTTP 400, subcode 2494010, fbtrace_id AbCd)"
        );
        let body = br#"{"error":{"message":"Recipient 2250708091011 not allowed","code":131030}}"#;
        let e = from_response(400, None, body);
        assert!(!e.message.contains("2250708091011"), "{}", e.message);
        assert!(e.message.contains("Recipient *** not allowed"));
    }

    #[test]
    fn breaker_codes_are_named_with_what_to_do() {
        for c in [190, 368, 131031, 131048] {
            let e = from_response(400, None, &meta(c));
            assert_eq!(e.breaker_code(), Some(c));
            assert!(e.message.ends_with(breaker_remedy(c)), "{}", e.message);
        }
        assert!(breaker_remedy(190).contains("WHATSAPP_API_TOKEN"));
        assert!(breaker_remedy(368).contains("appeal"));
        assert_eq!(from_response(400, None, &meta(131026)).breaker_code(), None);
        assert_eq!(from_response(429, None, b"").breaker_code(), None);
    }

    #[test]
    fn retry_after_is_honoured() {
        let e = from_response(429, Some("17"), &meta(130429));
        assert_eq!(e.after, Some(Duration::from_secs(17)));
        assert!(e.message.ends_with("retry after 17s"));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(from_response(400, Some("17"), &meta(100)).after, None);
    }
}

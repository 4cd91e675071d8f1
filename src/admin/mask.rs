//! Masking personal data and secrets in what the console shows: e-mail addresses, phone numbers and
//! tokens in a decoded payload or an exception text. Pure. Masking is one-way and keeps just enough to
//! tell two values apart (an e-mail's first letter, a phone's last two digits); the console shows the
//! unmasked job only when an admin asks for that one job.

use serde_json::Value as Json;

/// What replaces a secret's whole value.
pub const HIDDEN: &str = "***";

/// Object keys whose string values are secrets whatever they look like.
const SECRET_KEYS: &[&str] = &[
    "token",
    "password",
    "secret",
    "authorization",
    "api_key",
    "apikey",
    "access_key",
    "app_key",
];

/// Envelope keys Laravel writes whose values are ids and class names, never personal data: left as
/// they are (a job id is 32 random characters, which would look like a token).
const ENVELOPE_KEYS: &[&str] = &["id", "uuid", "displayName", "job", "commandName", "__class"];

/// The fewest digits a run needs to be taken for a phone number (E.164 numbers with their country
/// code, as WhatsApp takes them, have 10 to 15; dates like 2026-12-06 are left alone).
const PHONE_DIGITS: usize = 9;
/// The shortest unbroken run of `[A-Za-z0-9_-]` (and at least one digit and one letter) taken for a
/// token (Meta's access tokens are ~200 characters, API keys 32+).
const TOKEN_LEN: usize = 32;

/// `value` with every string masked by [`mask_text`], and the strings under secret-named keys hidden.
pub fn mask_json(value: &Json) -> Json {
    match value {
        Json::String(s) => Json::String(mask_text(s)),
        Json::Array(items) => Json::Array(items.iter().map(mask_json).collect()),
        Json::Object(map) => Json::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Json::String(_) if ENVELOPE_KEYS.contains(&k.as_str()) => v.clone(),
                        Json::String(_) | Json::Number(_) if is_secret_key(k) => {
                            Json::String(HIDDEN.to_owned())
                        }
                        other => mask_json(other),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_KEYS.iter().any(|s| key.contains(s))
}

/// `text` with e-mail addresses (`j***@***`), phone-like digit runs (`***67`) and long token-like
/// words (`***`) masked.
pub fn mask_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in split_keep(text) {
        match word {
            Piece::Sep(s) => out.push_str(s),
            Piece::Word(w) => out.push_str(&mask_word(w)),
        }
    }
    mask_phones(&out)
}

enum Piece<'a> {
    Word(&'a str),
    Sep(&'a str),
}

/// Splits on whitespace and the punctuation that surrounds values in messages and JSON.
fn split_keep(text: &str) -> Vec<Piece<'_>> {
    let is_sep = |c: char| c.is_whitespace() || "\"'<>,;()[]{}=:".contains(c);
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_sep = None;
    for (i, c) in text.char_indices() {
        let sep = is_sep(c);
        match in_sep {
            Some(prev) if prev != sep => {
                let piece = &text[start..i];
                out.push(if prev {
                    Piece::Sep(piece)
                } else {
                    Piece::Word(piece)
                });
                start = i;
            }
            _ => {}
        }
        in_sep = Some(sep);
    }
    if let Some(prev) = in_sep {
        let piece = &text[start..];
        out.push(if prev {
            Piece::Sep(piece)
        } else {
            Piece::Word(piece)
        });
    }
    out
}

fn mask_word(word: &str) -> String {
    if let Some((local, domain)) = word.split_once('@') {
        if !local.is_empty() && domain.contains('.') && !domain.starts_with('.') {
            let first: String = local.chars().take(1).collect();
            return format!("{first}{HIDDEN}@{HIDDEN}");
        }
    }
    let tokenish = word.len() >= TOKEN_LEN
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        && word.chars().any(|c| c.is_ascii_digit())
        && word.chars().any(|c| c.is_ascii_alphabetic())
        && !is_uuid(word);
    if tokenish {
        return HIDDEN.to_owned();
    }
    word.to_owned()
}

fn is_uuid(word: &str) -> bool {
    let groups: Vec<&str> = word.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Masks runs of digits (with `+`, spaces, `-`, `.`, `(`, `)` between them) holding at least
/// [`PHONE_DIGITS`] digits, keeping the last two digits.
fn mask_phones(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let starts = chars[i].is_ascii_digit() || (chars[i] == '+' && next_is_digit(&chars, i));
        let after_word = i > 0 && (chars[i - 1].is_ascii_alphanumeric() || chars[i - 1] == '_');
        if !starts || after_word {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let mut end = i + 1;
        while end < chars.len() {
            let c = chars[end];
            if c.is_ascii_digit() || (" -.()".contains(c) && next_is_digit(&chars, end)) {
                end += 1;
            } else {
                break;
            }
        }
        let run: String = chars[i..end].iter().collect();
        let digits: Vec<char> = run.chars().filter(char::is_ascii_digit).collect();
        let glued = end < chars.len() && (chars[end].is_ascii_alphabetic() || chars[end] == '_');
        if digits.len() >= PHONE_DIGITS && !glued && !is_date(&run) {
            out.push_str(HIDDEN);
            out.extend(&digits[digits.len() - 2..]);
        } else {
            out.push_str(&run);
        }
        i = end;
    }
    out
}

fn next_is_digit(chars: &[char], i: usize) -> bool {
    chars.get(i + 1).is_some_and(char::is_ascii_digit)
}

/// `2026-12-06`, `2026-12-06 18:00`: a date, not a phone number.
fn is_date(run: &str) -> bool {
    let b = run.as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn emails_phones_and_tokens_are_masked() {
        assert_eq!(
            mask_text("mail to jane.doe@example.com failed"),
            "mail to j***@*** failed"
        );
        assert_eq!(mask_text("to +1 555 123 4567."), "to ***67.");
        assert_eq!(
            mask_text("\"phone\":\"919876543210\""),
            "\"phone\":\"***10\""
        );
        let token = "EAAGm0PX4ZCpsBAKZAZCZBzP1dq7Xx1234567890abcdefZZ";
        assert_eq!(mask_text(&format!("Bearer {token}")), "Bearer ***");
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        let s = "Order 42 not found at 2026-12-06 18:00:00 (uuid 8b3c97e8-0886-4b14-b00a-26bb53cccbc3, vendor_7)";
        assert_eq!(mask_text(s), s);
        assert_eq!(
            mask_text("App\\Jobs\\DeferredJob"),
            "App\\Jobs\\DeferredJob"
        );
    }

    #[test]
    fn json_strings_and_secret_keys() {
        let v = json!({
            "data": {"customer_email": "a@b.co", "mobile": "+919876543210", "order_id": 12},
            "access_token": "short",
            "id": "bUbpAUbJgRNT7PTJXpb5hxBKZ1xm0Hf9",
            "list": ["x", "c@d.io"],
        });
        assert_eq!(
            mask_json(&v),
            json!({
                "data": {"customer_email": "a***@***", "mobile": "***10", "order_id": 12},
                "access_token": "***",
                "id": "bUbpAUbJgRNT7PTJXpb5hxBKZ1xm0Hf9",
                "list": ["x", "c***@***"],
            })
        );
    }
}

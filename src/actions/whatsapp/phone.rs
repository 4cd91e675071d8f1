//! Turning a stored phone number (`settings.contact`, `users.mobile`, `orders.mobile`…, typed by people)
//! into the digits the Cloud API's `to` wants, with `WHATSAPP_DEFAULT_COUNTRY_CODE` for local numbers.
//!
//! The app has two variants (docs/restrosaas.md §4.5); this follows `WhatsAppBusinessService`
//! (digits only, a leading `0` means a national number, short numbers get the country code, 10–15
//! digits are valid) with two decisions of ours (docs/restrosaas.md §9.12): `+` and `00` mark an international number
//! that is left alone, and the national `0` is *kept* after the country code where the numbering plan
//! keeps it (Côte d'Ivoire since 2021: `07 08 09 10 11` → `2250708091011`), which is the default when
//! the country code is 225. Pure; a number never reaches a log from here.

use serde::Deserialize;

/// What to do with the leading `0` of a national number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TrunkZero {
    /// `keep` when the default country code is 225 (Côte d'Ivoire's 10-digit plan), else `replace`.
    #[default]
    Auto,
    /// `0612…` → `<cc>612…` (the app's rule; right for FR, GB, NG, SN's 0-less plan…).
    Replace,
    /// `0712…` → `<cc>0712…`.
    Keep,
}

/// Why a number cannot be used; the message never contains the number itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("the phone number is empty")]
    Empty,
    #[error("the phone number has {0} digits after normalisation (10 to 15 expected)")]
    Length(usize),
}

/// Normalises `raw` for the `to` field: digits only, country code included, no `+`.
pub fn normalize(raw: &str, country_code: &str, trunk: TrunkZero) -> Result<String, PhoneError> {
    let trimmed = raw.trim();
    let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return Err(PhoneError::Empty);
    }
    let cc: String = country_code.chars().filter(char::is_ascii_digit).collect();
    let keep = match trunk {
        TrunkZero::Keep => true,
        TrunkZero::Replace => false,
        TrunkZero::Auto => cc == "225",
    };
    let number = if trimmed.starts_with('+') {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_owned()
    } else if let Some(rest) = digits.strip_prefix('0') {
        if keep {
            format!("{cc}{digits}")
        } else {
            format!("{cc}{rest}")
        }
    } else if digits.len() < 10 && !digits.starts_with(&cc) {
        format!("{cc}{digits}")
    } else {
        digits
    };
    if (10..=15).contains(&number.len()) {
        Ok(number)
    } else {
        Err(PhoneError::Length(number.len()))
    }
}

/// A number for logs: the last 4 digits only (`***6789`).
pub fn masked(number: &str) -> String {
    let tail: String = number
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("***{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_and_international_forms() {
        let n = |raw: &str, cc: &str, t: TrunkZero| normalize(raw, cc, t);
        // The app's rule: the national 0 becomes the country code.
        assert_eq!(
            n("06 12 34 56 78", "33", TrunkZero::Auto).unwrap(),
            "33612345678"
        );
        // Côte d'Ivoire keeps its 0 since 2021.
        assert_eq!(
            n("07 08 09 10 11", "225", TrunkZero::Auto).unwrap(),
            "2250708091011"
        );
        assert_eq!(
            n("07 08 09 10 11", "225", TrunkZero::Replace).unwrap(),
            "225708091011"
        );
        assert_eq!(
            n("+225 07-08-09-10-11", "225", TrunkZero::Auto).unwrap(),
            "2250708091011"
        );
        assert_eq!(
            n("00225 0708091011", "225", TrunkZero::Auto).unwrap(),
            "2250708091011"
        );
        assert_eq!(
            n("+1 (234) 567-890", "225", TrunkZero::Auto).unwrap(),
            "1234567890"
        );
        // Short local numbers get the country code, long ones are taken as international.
        assert_eq!(
            n("771234567", "221", TrunkZero::Auto).unwrap(),
            "221771234567"
        );
        assert_eq!(
            n("2250708091011", "225", TrunkZero::Auto).unwrap(),
            "2250708091011"
        );
    }

    #[test]
    fn unusable_numbers_say_why_without_the_number() {
        assert_eq!(
            normalize(" - ", "225", TrunkZero::Auto),
            Err(PhoneError::Empty)
        );
        let err = normalize("+12345", "225", TrunkZero::Auto).unwrap_err();
        assert_eq!(err, PhoneError::Length(5));
        assert!(!err.to_string().contains("12345"));
        assert!(normalize("+1234567890123456", "1", TrunkZero::Auto).is_err());
        assert_eq!(masked("2250708091011"), "***1011");
    }
}

//! `APP_TIMEZONE`: the zone `failed_at` and the WhatsApp log's timestamps are written in, as the app's
//! `config/app.php` reads it (UTC when unset). One parser, so the start-up check, the report and every
//! consumer accept and refuse the same names.

use chrono_tz::Tz;

/// What a bad value is told.
pub const EXPECTED: &str = "not a known time zone (e.g. UTC, Africa/Abidjan)";

/// Parses an IANA zone name.
pub fn parse(name: &str) -> Result<Tz, String> {
    name.trim().parse().map_err(|_| EXPECTED.to_owned())
}

/// `APP_TIMEZONE` looked up through `get` (values after Laravel's `env()` conversion); UTC when unset.
/// The error names the key and the value.
pub fn app_timezone(get: &dyn Fn(&str) -> Option<String>) -> Result<Tz, String> {
    match get("APP_TIMEZONE") {
        None => Ok(chrono_tz::UTC),
        Some(name) => parse(&name).map_err(|e| format!("APP_TIMEZONE={name:?} is {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_is_utc_and_bad_names_are_named() {
        assert_eq!(app_timezone(&|_| None), Ok(chrono_tz::UTC));
        let abidjan = app_timezone(&|_| Some("Africa/Abidjan".to_owned()));
        assert_eq!(abidjan, Ok(chrono_tz::Africa::Abidjan));
        let err = app_timezone(&|_| Some("Mars/Base".to_owned())).unwrap_err();
        assert_eq!(
            err,
            "APP_TIMEZONE=\"Mars/Base\" is not a known time zone (e.g. UTC, Africa/Abidjan)"
        );
    }
}

//! PHP's `date($format, strtotime($value))` for the mails' order date (`helper::date_format`, which
//! applies the vendor's `settings.date_format`; docs/restrosaas.md §4.9), in UTC as the app's
//! `config/app.php` hard-codes.
//!
//! Pure functions: no I/O, no clock. Only the date and date-time shapes the database hands back are
//! parsed (`2025-11-15`, `2025-11-15 19:30:00[.ffffff]`, with `T` too); anything else is the caller's
//! decision (PHP would print the 1970 epoch for it).

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};

/// The value as a timestamp, for the shapes a DATE/DATETIME column gives.
pub fn parse(value: &str) -> Option<NaiveDateTime> {
    let v = value.trim();
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0);
    }
    [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(v, f).ok())
}

const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn days_in_month(year: i32, month: u32) -> u32 {
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    };
    next.and_then(|n| n.pred_opt()).map_or(31, |d| d.day())
}

/// PHP's `date($format, $t)` in UTC for the format characters of `date()`; a backslash escapes the next
/// character and unknown characters are copied, as PHP does.
pub fn php_date(format: &str, t: NaiveDateTime) -> String {
    let mut out = String::with_capacity(format.len() * 2);
    let mut chars = format.chars();
    let hour12 = |h: u32| if h % 12 == 0 { 12 } else { h % 12 };
    let weekday = t.weekday().num_days_from_monday() as usize;
    while let Some(c) = chars.next() {
        match c {
            'd' => out.push_str(&format!("{:02}", t.day())),
            'D' => out.push_str(&DAYS[weekday][..3]),
            'j' => out.push_str(&t.day().to_string()),
            'l' => out.push_str(DAYS[weekday]),
            'N' => out.push_str(&(weekday + 1).to_string()),
            'S' => out.push_str(match t.day() {
                1 | 21 | 31 => "st",
                2 | 22 => "nd",
                3 | 23 => "rd",
                _ => "th",
            }),
            'w' => out.push_str(&t.weekday().num_days_from_sunday().to_string()),
            'z' => out.push_str(&t.ordinal0().to_string()),
            'W' => out.push_str(&format!("{:02}", t.iso_week().week())),
            'F' => out.push_str(MONTHS[t.month0() as usize]),
            'm' => out.push_str(&format!("{:02}", t.month())),
            'M' => out.push_str(&MONTHS[t.month0() as usize][..3]),
            'n' => out.push_str(&t.month().to_string()),
            't' => out.push_str(&days_in_month(t.year(), t.month()).to_string()),
            'L' => out.push(if t.date().leap_year() { '1' } else { '0' }),
            'o' => out.push_str(&t.iso_week().year().to_string()),
            'Y' | 'X' | 'x' => out.push_str(&t.year().to_string()),
            'y' => out.push_str(&format!("{:02}", t.year().rem_euclid(100))),
            'a' => out.push_str(if t.hour() < 12 { "am" } else { "pm" }),
            'A' => out.push_str(if t.hour() < 12 { "AM" } else { "PM" }),
            'B' => {
                let secs = (t.num_seconds_from_midnight() + 3600) % 86_400;
                out.push_str(&format!("{:03}", secs * 10 / 864));
            }
            'g' => out.push_str(&hour12(t.hour()).to_string()),
            'G' => out.push_str(&t.hour().to_string()),
            'h' => out.push_str(&format!("{:02}", hour12(t.hour()))),
            'H' => out.push_str(&format!("{:02}", t.hour())),
            'i' => out.push_str(&format!("{:02}", t.minute())),
            's' => out.push_str(&format!("{:02}", t.second())),
            'u' => out.push_str("000000"),
            'v' => out.push_str("000"),
            'e' | 'T' => out.push_str("UTC"),
            'I' | 'Z' => out.push('0'),
            'O' => out.push_str("+0000"),
            'P' => out.push_str("+00:00"),
            'p' => out.push('Z'),
            'c' => out.push_str(&php_date("Y-m-d\\TH:i:sP", t)),
            'r' => out.push_str(&php_date("D, d M Y H:i:s O", t)),
            'U' => out.push_str(&t.and_utc().timestamp().to_string()),
            '\\' => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_php_date() {
        // Expected values from PHP 8.2: php -r 'date_default_timezone_set("UTC"); echo date(F, strtotime(V));'
        let t = parse("2025-11-05 19:07:03").unwrap();
        let cases = [
            ("Y-m-d", "2025-11-05"),
            ("d.m.Y", "05.11.2025"),
            ("d/m/Y", "05/11/2025"),
            ("m/d/y", "11/05/25"),
            ("D, d M Y", "Wed, 05 Nov 2025"),
            (
                "l jS \\of F Y h:i:s A",
                "Wednesday 5th of November 2025 07:07:03 PM",
            ),
            ("N w z t L W o", "3 3 308 30 0 45 2025"),
            ("g G a B", "7 19 pm 838"),
            ("c", "2025-11-05T19:07:03+00:00"),
            ("r", "Wed, 05 Nov 2025 19:07:03 +0000"),
            ("U", "1762369623"),
        ];
        for (f, want) in cases {
            assert_eq!(php_date(f, t), want, "format {f}");
        }
        let d = parse("2024-02-29").unwrap();
        assert_eq!(php_date("t L S H:i", d), "29 1 th 00:00");
        assert_eq!(php_date("jS", parse("2025-11-22").unwrap()), "22nd");
    }

    #[test]
    fn parses_what_date_columns_give() {
        assert!(parse("2025-11-15").is_some());
        assert!(parse("2025-11-15 12:30:00.250").is_some());
        assert!(parse("2025-11-15T12:30:00").is_some());
        assert_eq!(parse(""), None);
        assert_eq!(parse("0000-00-00"), None);
        assert_eq!(parse("demain"), None);
    }
}

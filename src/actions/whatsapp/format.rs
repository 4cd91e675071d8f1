//! PHP's number, currency and string conversions as the app's WhatsApp text uses them
//! (docs/restrosaas.md §4.9): `number_format` with PHP 8.2's pre-rounding `round()`, `(float)` of a
//! string, `(string)` of a float (`precision` = 14), and `helper::currency_formate` driven by the
//! vendor's `settings` row.
//!
//! Pure functions only: no I/O, no logging. The rounding must stay PHP's, not Rust's (`1.005` → `1.01`,
//! `2.5` → `3`); the integration tests compare these functions with the real `php` binary.

use crate::app::{LinePrice, OrderLine, Row, SqlValue};

/// A PHP scalar as the app's formatter sees it (an Eloquent attribute or a piece of an `explode`).
#[derive(Debug, Clone, PartialEq)]
pub enum PhpScalar {
    Null,
    Int(i64),
    Float(f64),
    Str(String),
}

impl PhpScalar {
    /// From a database value; a missing column is PHP's `null`.
    pub fn from_sql(value: Option<&SqlValue>) -> PhpScalar {
        match value {
            None | Some(SqlValue::Null) => PhpScalar::Null,
            Some(SqlValue::Int(i)) => PhpScalar::Int(*i),
            Some(SqlValue::Float(f)) => PhpScalar::Float(*f),
            Some(SqlValue::Text(s)) => PhpScalar::Str(s.clone()),
            Some(SqlValue::Bytes(b)) => PhpScalar::Str(String::from_utf8_lossy(b).into_owned()),
        }
    }

    /// `(float)$x`.
    pub fn to_float(&self) -> f64 {
        match self {
            PhpScalar::Null => 0.0,
            PhpScalar::Int(i) => *i as f64,
            PhpScalar::Float(f) => *f,
            PhpScalar::Str(s) => floatval(s),
        }
    }

    /// `(string)$x` (what `str_replace` and `.` make of it).
    pub fn to_php_string(&self) -> String {
        match self {
            PhpScalar::Null => String::new(),
            PhpScalar::Int(i) => i.to_string(),
            PhpScalar::Float(f) => float_to_string(*f),
            PhpScalar::Str(s) => s.clone(),
        }
    }

    /// `$x == $n` for an integer `$n`, with PHP 8's loose comparison.
    pub fn loose_eq_int(&self, n: i64) -> bool {
        match self {
            PhpScalar::Null => n == 0,
            PhpScalar::Int(i) => *i == n,
            PhpScalar::Float(f) => *f == n as f64,
            PhpScalar::Str(s) => match numeric_string(s) {
                Some(v) => v == n as f64,
                None => false,
            },
        }
    }
}

/// An order line's total as the app's formatters compute it, `$qty * $price` on floats
/// (docs/restrosaas.md §4.7); a line that stores its total (`item_price` of the web checkout) gives it as
/// stored.
pub fn line_total(line: &OrderLine) -> f64 {
    match &line.price {
        LinePrice::Unit(unit) => {
            PhpScalar::from_sql(Some(&line.qty)).to_float()
                * PhpScalar::from_sql(Some(unit)).to_float()
        }
        LinePrice::Total(total) => PhpScalar::from_sql(Some(total)).to_float(),
    }
}

/// What PHP skips around numeric strings.
const PHP_WHITESPACE: [char; 6] = [' ', '\t', '\n', '\r', '\x0b', '\x0c'];

/// The value of a PHP 8 numeric string (whitespace allowed around it), or `None`.
fn numeric_string(s: &str) -> Option<f64> {
    let t = s.trim_matches(PHP_WHITESPACE);
    let (len, v) = numeric_prefix(t)?;
    (len == t.len()).then_some(v)
}

/// PHP's `(float)"…"`: leading whitespace, then the longest decimal number prefix; 0 when there is none.
pub fn floatval(s: &str) -> f64 {
    let t = s.trim_start_matches(PHP_WHITESPACE);
    numeric_prefix(t).map_or(0.0, |(_, v)| v)
}

/// Length and value of the decimal number at the start of `t` (`[+-]digits[.digits][e[+-]digits]`).
fn numeric_prefix(t: &str) -> Option<(usize, f64)> {
    let b = t.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let int_start = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let mut digits = i - int_start;
    if b.get(i) == Some(&b'.') {
        let frac_start = i + 1;
        let mut j = frac_start;
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        if digits > 0 || j > frac_start {
            digits += j - frac_start;
            i = j;
        }
    }
    if digits == 0 {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let exp_start = j;
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        if j > exp_start {
            i = j;
        }
    }
    let text = &t[..i];
    // Rust rejects "5." and ".5"-less forms only in edge cases; normalise them.
    let v = text
        .parse::<f64>()
        .or_else(|_| text.replace(".e", "e").trim_end_matches('.').parse::<f64>())
        .ok()?;
    Some((i, v))
}

/// PHP's `(string)$float` with the default `precision` of 14 (`0.1 + 0.2` → `0.3`, `1e25` → `1.0E+25`).
pub fn float_to_string(f: f64) -> String {
    crate::php::format_float_with_precision(f, 14)
}

fn intpow10(power: i32) -> f64 {
    if !(0..=22).contains(&power) {
        return 10f64.powf(f64::from(power));
    }
    let mut v = 1.0;
    for _ in 0..power {
        v *= 10.0;
    }
    v
}

/// `php_round_helper` for `PHP_ROUND_HALF_UP`.
fn round_helper(v: f64) -> f64 {
    if v >= 0.0 {
        (v + 0.5).floor()
    } else {
        (v - 0.5).ceil()
    }
}

/// PHP 8.2's `round($value, $places)` (half up, with the "pre-rounding" to 15 significant digits that
/// makes `round(1.005, 2)` give 1.01).
pub fn round(value: f64, places: i32) -> f64 {
    const MIN_PRECISION: i32 = -(4 * 15);
    if !value.is_finite() || value == 0.0 {
        return value;
    }
    let places = places.max(i32::MIN + 1);
    let precision_places = 14 - value.abs().log10().floor() as i32;
    let f1 = intpow10(places.abs());
    let mut tmp = if precision_places > places && precision_places - 15 < places {
        let use_precision = precision_places.max(MIN_PRECISION);
        let basic = if use_precision >= 0 {
            value * intpow10(use_precision)
        } else {
            value / intpow10(-use_precision)
        };
        let pre = round_helper(basic);
        let shift = (places - use_precision).max(MIN_PRECISION);
        pre / intpow10(shift.abs())
    } else {
        let t = if places >= 0 { value * f1 } else { value / f1 };
        if t.abs() >= 1e15 {
            return value;
        }
        t
    };
    tmp = round_helper(tmp);
    if places.abs() < 23 {
        if places > 0 {
            tmp / f1
        } else {
            tmp * f1
        }
    } else {
        let text = format!("{tmp:15.6}e{}", -places);
        match text.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => v,
            _ => value,
        }
    }
}

/// PHP 8.2's `number_format($num, $decimals, $dec_point, $thousands_sep)`.
pub fn number_format(num: f64, decimals: i32, dec_point: &str, thousands_sep: &str) -> String {
    let mut d = num;
    let mut negative = false;
    if d < 0.0 {
        negative = true;
        d = -d;
    }
    // `abs()` also turns -0.0 into 0.0, which PHP's printf prints without a sign.
    d = round(d, decimals).abs();
    let dec = decimals.max(0) as usize;
    let printed = format!("{d:.dec$}");
    if negative && d == 0.0 {
        negative = false;
    }
    if !printed.starts_with(|c: char| c.is_ascii_digit()) {
        return printed;
    }
    let (int_part, frac_part) = match printed.split_once('.') {
        Some((i, f)) => (i, f),
        None => (printed.as_str(), ""),
    };
    let mut out = String::with_capacity(printed.len() + 8);
    if negative {
        out.push('-');
    }
    for (i, ch) in int_part.chars().enumerate() {
        if i > 0 && (int_part.len() - i) % 3 == 0 {
            out.push_str(thousands_sep);
        }
        out.push(ch);
    }
    if dec > 0 {
        out.push_str(dec_point);
        out.push_str(frac_part);
    }
    out
}

/// Where the currency symbol goes (`settings.currency_position`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Position {
    Left,
    Right,
    /// Anything else: the app returns the price unformatted.
    Other,
}

/// `helper::currency_formate($price, $vendor_id)` for one vendor's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Currency {
    symbol: String,
    position: Position,
    space: bool,
    /// `decimal_separator == 1`: `.` for decimals and `,` for thousands; else the other way round.
    dot_decimals: bool,
    decimals: i32,
}

impl Currency {
    /// From the vendor's `settings` row; without one, the app's fallback settings object
    /// (`XOF`, left, with a space, `.` decimals, 2 decimals).
    pub fn from_settings(settings: Option<&Row>) -> Currency {
        let Some(row) = settings else {
            return Currency {
                symbol: "XOF".into(),
                position: Position::Left,
                space: true,
                dot_decimals: true,
                decimals: 2,
            };
        };
        let get = |c: &str| PhpScalar::from_sql(row.get(c));
        let position = match get("currency_position").to_php_string().as_str() {
            "left" => Position::Left,
            "right" => Position::Right,
            _ => Position::Other,
        };
        let decimals = match get("currency_formate") {
            PhpScalar::Int(i) => i.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
            PhpScalar::Float(f) => f as i32,
            PhpScalar::Str(s) => numeric_string(&s).map_or(0, |f| f as i32),
            PhpScalar::Null => 0,
        };
        Currency {
            symbol: get("currency").to_php_string(),
            position,
            space: get("currency_space").loose_eq_int(1),
            dot_decimals: get("decimal_separator").loose_eq_int(1),
            decimals,
        }
    }

    /// The formatted price, e.g. `XOF 12,500.00`.
    pub fn format(&self, price: &PhpScalar) -> String {
        let (dec, thou) = if self.dot_decimals {
            (".", ",")
        } else {
            (",", ".")
        };
        let number = || number_format(price.to_float(), self.decimals, dec, thou);
        let space = if self.space { " " } else { "" };
        match self.position {
            Position::Left => format!("{}{space}{}", self.symbol, number()),
            Position::Right => format!("{}{space}{}", number(), self.symbol),
            Position::Other => price.to_php_string(),
        }
    }

    /// [`Currency::format`] of a float.
    pub fn format_f64(&self, price: f64) -> String {
        self.format(&PhpScalar::Float(price))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_format_rounds_like_php() {
        // Values checked with PHP 8.2's CLI.
        let cases: &[(f64, i32, &str)] = &[
            (1.005, 2, "1.01"),
            (2.675, 2, "2.68"),
            (0.5, 0, "1"),
            (2.5, 0, "3"),
            (-0.004, 2, "0.00"),
            (1234567.891, 2, "1,234,567.89"),
            (0.285, 2, "0.29"),
            (1.955, 2, "1.96"),
            (8.325, 2, "8.33"),
            (0.49999999999999994, 0, "1"),
        ];
        for (v, d, want) in cases {
            assert_eq!(number_format(*v, *d, ".", ","), *want, "{v} {d}");
        }
        assert_eq!(number_format(1234567.891, 0, ",", " "), "1 234 568");
        assert_eq!(number_format(-1234.5, 1, ",", "."), "-1.234,5");
    }

    #[test]
    fn string_conversions_follow_php() {
        assert_eq!(floatval(" -.5e1x"), -5.0);
        assert_eq!(floatval("12.5abc"), 12.5);
        assert_eq!(floatval("1e"), 1.0);
        assert_eq!(floatval("5."), 5.0);
        assert_eq!(floatval("0x1A"), 0.0);
        assert_eq!(floatval(""), 0.0);
        assert_eq!(float_to_string(0.1 + 0.2), "0.3");
        assert_eq!(float_to_string(1e25), "1.0E+25");
        assert_eq!(float_to_string(1.5e-7), "1.5E-7");
        assert_eq!(float_to_string(123456789012345.0), "1.2345678901234E+14");
        assert_eq!(float_to_string(100.0), "100");
        assert!(PhpScalar::Str("1 ".into()).loose_eq_int(1));
        assert!(!PhpScalar::Str("1abc".into()).loose_eq_int(1));
        assert!(!PhpScalar::Null.loose_eq_int(1));
    }

    #[test]
    fn currency_follows_the_vendor_settings() {
        let fallback = Currency::from_settings(None);
        assert_eq!(fallback.format_f64(12500.0), "XOF 12,500.00");
        let row = Row::from_pairs([
            ("currency", SqlValue::Text("€".into())),
            ("currency_position", SqlValue::Text("right".into())),
            ("currency_space", SqlValue::Int(0)),
            ("decimal_separator", SqlValue::Int(2)),
            ("currency_formate", SqlValue::Text("1".into())),
        ]);
        let eur = Currency::from_settings(Some(&row));
        assert_eq!(eur.format_f64(1234.56), "1.234,6€");
        let odd = Row::from_pairs([("currency_position", SqlValue::Text("top".into()))]);
        assert_eq!(
            Currency::from_settings(Some(&odd)).format(&PhpScalar::Str("7.5x".into())),
            "7.5x"
        );
    }
}

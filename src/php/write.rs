//! `serialize`: writes a [`Value`] back in PHP's `serialize()` format, byte for byte as PHP 7.4–8.4
//! writes it (floats with `serialize_precision = -1`).
//!
//! It writes what the tree says and must not fix it up: back-reference numbers are written as
//! given, and a tree that PHP could not have produced (say a public property whose name starts
//! with NUL) is written as is. Strings are always written as `s:`, never as the escaped `S:` form.

use super::value::{Key, Object, Value};

/// Serializes `value` the way PHP's `serialize()` does.
///
/// Iterative: a tree of any depth is written without recursion.
pub fn serialize(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    // Work stack: either a value to write or a literal closing brace.
    enum Step<'a> {
        Value(&'a Value),
        Key(&'a Key),
        Name(Vec<u8>),
        Close,
    }
    let mut stack = vec![Step::Value(value)];
    while let Some(step) = stack.pop() {
        match step {
            Step::Close => out.push(b'}'),
            Step::Key(Key::Int(i)) => write_int(&mut out, *i),
            Step::Key(Key::Str(s)) => write_str(&mut out, s),
            Step::Name(name) => write_str(&mut out, &name),
            Step::Value(v) => match v {
                Value::Null => out.extend_from_slice(b"N;"),
                Value::Bool(b) => out.extend_from_slice(if *b { b"b:1;" } else { b"b:0;" }),
                Value::Int(i) => write_int(&mut out, *i),
                Value::Float(f) => {
                    out.extend_from_slice(b"d:");
                    out.extend_from_slice(format_float(*f).as_bytes());
                    out.push(b';');
                }
                Value::Str(s) => write_str(&mut out, s),
                Value::Array(items) => {
                    out.extend_from_slice(format!("a:{}:{{", items.len()).as_bytes());
                    stack.push(Step::Close);
                    for (k, v) in items.iter().rev() {
                        stack.push(Step::Value(v));
                        stack.push(Step::Key(k));
                    }
                }
                Value::Object(Object { class, props }) => {
                    write_class_header(&mut out, b'O', class);
                    out.extend_from_slice(format!("{}:{{", props.len()).as_bytes());
                    stack.push(Step::Close);
                    for (p, v) in props.iter().rev() {
                        stack.push(Step::Value(v));
                        stack.push(Step::Name(p.mangled()));
                    }
                }
                Value::Custom { class, data } => {
                    write_class_header(&mut out, b'C', class);
                    out.extend_from_slice(format!("{}:{{", data.len()).as_bytes());
                    out.extend_from_slice(data);
                    out.push(b'}');
                }
                Value::Enum { class, case } => {
                    let len = class.len() + 1 + case.len();
                    out.extend_from_slice(format!("E:{len}:\"{class}:{case}\";").as_bytes());
                }
                Value::ObjRef(n) => out.extend_from_slice(format!("r:{n};").as_bytes()),
                Value::Ref(n) => out.extend_from_slice(format!("R:{n};").as_bytes()),
            },
        }
    }
    out
}

fn write_int(out: &mut Vec<u8>, i: i64) {
    out.extend_from_slice(format!("i:{i};").as_bytes());
}

fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("s:{}:\"", s.len()).as_bytes());
    out.extend_from_slice(s);
    out.extend_from_slice(b"\";");
}

/// `<tag>:<len>:"<class>":`
fn write_class_header(out: &mut Vec<u8>, tag: u8, class: &str) {
    out.push(tag);
    out.extend_from_slice(format!(":{}:\"{class}\":", class.len()).as_bytes());
}

/// Formats a float as PHP does with `serialize_precision = -1`.
///
/// PHP takes the shortest digits that round-trip (`zend_dtoa` mode 0) and lays them out with
/// `php_gcvt(value, 17, '.', 'E')`: exponential when the decimal exponent is below -4 or at least
/// 17 (`1.0E+17`, `1.5E-7`, a lone digit gets `.0`), plain otherwise with no trailing `.0`
/// (`1`, `0.1`, `1000000000000000`). Rust's `{:e}` yields the same shortest digits.
pub fn format_float(f: f64) -> String {
    match special(f) {
        Some(text) => text,
        None => {
            let (digits, exp) = shortest_digits(f.abs());
            gcvt(f.is_sign_negative(), &digits, exp, 17)
        }
    }
}

/// PHP's `(string)$float` (and `echo`, string interpolation) under the `precision` ini setting
/// (`precision` significant digits, 14 by default: `0.1 + 0.2` → `0.3`, `1e25` → `1.0E+25`), laid out
/// by the same `php_gcvt` as [`format_float`].
pub fn format_float_with_precision(f: f64, precision: usize) -> String {
    match special(f) {
        Some(text) => text,
        None => {
            let (digits, exp) = split_sci(&format!("{:.*e}", precision.max(1) - 1, f.abs()));
            let digits = digits.trim_end_matches('0');
            let digits = if digits.is_empty() { "0" } else { digits };
            gcvt(f.is_sign_negative(), digits, exp, precision as i32)
        }
    }
}

/// NaN, the infinities and zero (signed), which PHP writes without `php_gcvt`.
fn special(f: f64) -> Option<String> {
    if f.is_nan() {
        return Some("NAN".into());
    }
    if f.is_infinite() {
        return Some(if f > 0.0 { "INF" } else { "-INF" }.into());
    }
    (f == 0.0).then(|| if f.is_sign_negative() { "-0" } else { "0" }.into())
}

/// `php_gcvt`'s layout of significant `digits` with decimal exponent `exp`: exponential when `exp` is
/// below -4 or at least `limit` (`1.0E+17`, `1.5E-7`, a lone digit gets `.0`), plain otherwise with no
/// trailing `.0` (`1`, `0.1`, `1000000000000000`).
fn gcvt(negative: bool, digits: &str, exp: i32, limit: i32) -> String {
    let mut out = String::from(if negative { "-" } else { "" });
    if !(-4..limit).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        out.push('.');
        out.push_str(if rest.is_empty() { "0" } else { rest });
        out.push('E');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&exp.unsigned_abs().to_string());
    } else if exp < 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat(exp.unsigned_abs() as usize - 1));
        out.push_str(digits);
    } else {
        // `exp + 1` digits before the point, padded with zeros; the rest after it.
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(digits);
            out.push_str(&"0".repeat(int_len - digits.len()));
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

/// `<d>[.<ddd>]e<exp>` (Rust's `{:e}` layout) as (significant digits, decimal exponent).
fn split_sci(sci: &str) -> (String, i32) {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let digits = mantissa.chars().filter(char::is_ascii_digit).collect();
    (digits, exp.parse().unwrap_or(0))
}

/// The shortest round-trip digits of a finite positive `f` as `zend_dtoa` mode 0 picks them.
///
/// Rust's `{:e}` and `zend_dtoa` agree except when `f` lies exactly halfway between two shortest
/// candidates (e.g. 34214569476003.3125 with 17 digits): Rust rounds the tie up, `zend_dtoa` to
/// the even last digit (…312). A tie needs `f`'s exact decimal expansion to be one digit longer
/// and end in 5, which is rare, so the exact expansion is only computed after a cheap check.
fn shortest_digits(f: f64) -> (String, i32) {
    let (digits, exp) = split_sci(&format!("{f:e}"));
    let k = digits.len();
    // One more significant digit, correctly rounded: ends in 5 if there is a tie.
    if !format!("{f:.k$e}")
        .split('e')
        .next()
        .is_some_and(|m| m.ends_with('5'))
    {
        return (digits, exp);
    }
    // Every f64 has an exact decimal expansion of at most 767 significant digits.
    let (exact, exact_exp) = split_sci(&format!("{f:.800e}"));
    let exact = exact.trim_end_matches('0');
    if exact_exp != exp || exact.len() != k + 1 || !exact.ends_with('5') {
        return (digits, exp);
    }
    let lower = &exact[..k];
    let lower_is_even = lower.bytes().last().is_some_and(|d| (d - b'0') % 2 == 0);
    let (even, even_exp) = if lower_is_even {
        (lower.to_string(), exp)
    } else {
        increment(lower, exp)
    };
    // Both neighbours are equally close to `f`; keep Rust's unless the even one reads back as `f`.
    let text = format!("0.{even}e{}", even_exp + 1);
    if text.parse::<f64>().ok() == Some(f) {
        (even.trim_end_matches('0').to_string(), even_exp)
    } else {
        (digits, exp)
    }
}

/// Adds one unit in the last place to a digit string (`d.ddd × 10^exp`), carrying as needed.
fn increment(digits: &str, exp: i32) -> (String, i32) {
    let mut bytes = digits.as_bytes().to_vec();
    for b in bytes.iter_mut().rev() {
        if *b == b'9' {
            *b = b'0';
        } else {
            *b += 1;
            return (String::from_utf8_lossy(&bytes).into_owned(), exp);
        }
    }
    // All nines: 99 → 100, one more decimal place.
    (format!("1{}", String::from_utf8_lossy(&bytes)), exp + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::php::value::Prop;

    #[test]
    fn floats_match_php_8_2() {
        // Printed by PHP 8.2.x on this machine:
        // php -r 'echo serialize([1.0, 0.1, -0.0, 1e15, 1e16, 1e17, 1.5e-7, 0.0001, 0.00001, 1/3,
        //   INF, -INF, NAN, 25.5, 1e25, -1.5e300, 5e-324, 123456789.125]);'
        let cases: &[(f64, &str)] = &[
            (1.0, "1"),
            (0.1, "0.1"),
            (-0.0, "-0"),
            (1e15, "1000000000000000"),
            (1e16, "10000000000000000"),
            (1e17, "1.0E+17"),
            (1.5e-7, "1.5E-7"),
            (0.0001, "0.0001"),
            (0.00001, "1.0E-5"),
            (1.0 / 3.0, "0.3333333333333333"),
            (f64::INFINITY, "INF"),
            (f64::NEG_INFINITY, "-INF"),
            (f64::NAN, "NAN"),
            (25.5, "25.5"),
            (1e25, "1.0E+25"),
            (-1.5e300, "-1.5E+300"),
            (5e-324, "5.0E-324"),
            (123456789.125, "123456789.125"),
            (0.0, "0"),
            (-2.5, "-2.5"),
            (0.00012, "0.00012"),
            (1.2345678901234567e16, "12345678901234568"),
            // Exact decimal ties between two shortest candidates go to the even digit, as in
            // PHP 8.2: serialize([-34214569476003.3125, 120789010593974.625])
            (-(34214569476003.0 + 0.3125), "-34214569476003.312"),
            (120789010593974.0 + 0.625, "120789010593974.62"),
        ];
        for (f, want) in cases {
            assert_eq!(format_float(*f), *want, "formatting {f:e}");
        }
    }

    #[test]
    fn writes_every_form() {
        let v = Value::Array(vec![
            (Key::Int(0), Value::Null),
            (Key::Int(-1), Value::Bool(true)),
            (Key::Str(b"b".to_vec()), Value::Bool(false)),
            (Key::Int(2), Value::Float(0.5)),
            (Key::Int(3), Value::Str(b"a\"\0".to_vec())),
            (
                Key::Int(4),
                Value::Object(Object {
                    class: "A\\B".into(),
                    props: vec![
                        (Prop::public("p"), Value::Int(i64::MIN)),
                        (Prop::protected("q"), Value::Array(vec![])),
                        (Prop::private("A\\B", "r"), Value::ObjRef(3)),
                    ],
                }),
            ),
            (
                Key::Int(5),
                Value::Custom {
                    class: "C".into(),
                    data: b"x:{}".to_vec(),
                },
            ),
            (
                Key::Int(6),
                Value::Enum {
                    class: "Suit".into(),
                    case: "Hearts".into(),
                },
            ),
            (Key::Int(7), Value::Ref(2)),
        ]);
        let want: &[u8] = b"a:9:{i:0;N;i:-1;b:1;s:1:\"b\";b:0;i:2;d:0.5;i:3;s:3:\"a\"\0\";\
i:4;O:3:\"A\\B\":3:{s:1:\"p\";i:-9223372036854775808;s:4:\"\0*\0q\";a:0:{}s:6:\"\0A\\B\0r\";r:3;}\
i:5;C:1:\"C\":4:{x:{}}i:6;E:11:\"Suit:Hearts\";i:7;R:2;}";
        assert_eq!(
            String::from_utf8_lossy(&serialize(&v)),
            String::from_utf8_lossy(want)
        );
    }

    #[test]
    fn deep_trees_do_not_recurse() {
        let mut v = Value::Null;
        for _ in 0..100_000 {
            v = Value::Array(vec![(Key::Int(0), v)]);
        }
        let out = serialize(&v);
        assert_eq!(out.len(), 100_000 * "a:1:{i:0;}".len() + 2);
        // Dropping a 100 000-deep tree recurses in Drop; unwrap it level by level instead.
        while let Value::Array(mut items) = v {
            v = items.pop().map(|(_, v)| v).unwrap_or(Value::Null);
        }
    }
}

//! `to_json`: a lossy, human-oriented JSON view of a [`Value`], for the `decode` command and logs.
//!
//! It is for reading, never for writing back: it cannot be turned into the PHP form again. Mapping:
//! - objects: `{"__class": "Class", "<prop>": value, …}` with unmangled names; when a name repeats
//!   (a private and a public `x`, say) the later one becomes `"x#private(Class)"`, `"x#protected"`
//!   or `"x#public"`, with `#2`, `#3`… appended if even that repeats;
//! - arrays: a JSON array when the keys are exactly `0..n-1` in order, else an object whose integer
//!   keys are decimal strings (a repeated key keeps the last value, as in PHP);
//! - enums: `{"__enum": "Class:Case"}`;
//! - `Serializable` blobs: `{"__class": C, "__serialized": data}`;
//! - `r:n` / `R:n`: the value they name, expanded again in full at each place (as PHP shares it);
//!   (see [`super::resolve`]); a reference to an ancestor (a cycle), or past the expansion budget, stays
//!   `{"__ref": n}`;
//! - floats: NaN and infinities as the strings `"NAN"`, `"INF"`, `"-INF"`; -0.0 stays `-0.0`;
//! - strings and names that are not UTF-8: decoded lossily, invalid bytes become U+FFFD.

use serde_json::{Map, Value as Json};

use super::resolve::resolve;
use super::value::{Key, Object, Value, Visibility};

/// Converts `value` to JSON as described in the module documentation.
pub fn to_json(value: &Value) -> Json {
    render(&resolve(value))
}

/// Renders a value whose references are already expanded; a remaining one is shown as `{"__ref": n}`.
fn render(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Float(f) => float(*f),
        Value::Str(s) => Json::String(lossy(s)),
        Value::Array(items) => array(items),
        Value::Object(o) => object(o),
        Value::Custom { class, data } => {
            let mut m = Map::new();
            m.insert("__class".into(), Json::String(class.clone()));
            m.insert("__serialized".into(), Json::String(lossy(data)));
            Json::Object(m)
        }
        Value::Enum { class, case } => {
            let mut m = Map::new();
            m.insert("__enum".into(), Json::String(format!("{class}:{case}")));
            Json::Object(m)
        }
        Value::ObjRef(n) | Value::Ref(n) => {
            let mut m = Map::new();
            m.insert("__ref".into(), Json::from(*n));
            Json::Object(m)
        }
    }
}

fn array(items: &[(Key, Value)]) -> Json {
    let is_list = items
        .iter()
        .enumerate()
        .all(|(i, (k, _))| i64::try_from(i).is_ok_and(|i| *k == Key::Int(i)));
    if is_list {
        return Json::Array(items.iter().map(|(_, v)| render(v)).collect());
    }
    Json::Object(
        items
            .iter()
            .map(|(k, v)| (k.to_text(), render(v)))
            .collect(),
    )
}

fn object(o: &Object) -> Json {
    let mut m = Map::new();
    m.insert("__class".into(), Json::String(o.class.clone()));
    for (p, v) in &o.props {
        let key = unique_name(&m, &lossy(&p.name), &p.visibility);
        m.insert(key, render(v));
    }
    Json::Object(m)
}

/// The property's name, tagged with its visibility when an earlier property took the plain name.
fn unique_name(m: &Map<String, Json>, name: &str, visibility: &Visibility) -> String {
    if !m.contains_key(name) {
        return name.to_owned();
    }
    let tagged = match visibility {
        Visibility::Public => format!("{name}#public"),
        Visibility::Protected => format!("{name}#protected"),
        Visibility::Private(class) => format!("{name}#private({class})"),
    };
    let mut key = tagged.clone();
    let mut n = 2;
    while m.contains_key(&key) {
        key = format!("{tagged}#{n}");
        n += 1;
    }
    key
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn float(f: f64) -> Json {
    match serde_json::Number::from_f64(f) {
        Some(n) => Json::Number(n),
        None if f.is_nan() => Json::String("NAN".into()),
        None if f > 0.0 => Json::String("INF".into()),
        None => Json::String("-INF".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::php::unserialize;
    use serde_json::json;

    #[test]
    fn deferred_job_sample() {
        let v = unserialize(
            b"O:20:\"App\\Jobs\\DeferredJob\":2:{s:9:\"\0*\0action\";s:21:\"whatsapp_notification\";\
s:7:\"\0*\0data\";a:1:{s:8:\"order_id\";i:42;}}",
        )
        .unwrap();
        assert_eq!(
            to_json(&v),
            json!({"__class": "App\\Jobs\\DeferredJob", "action": "whatsapp_notification",
                   "data": {"order_id": 42}})
        );
    }

    #[test]
    fn every_form() {
        let v = unserialize(
            b"a:9:{i:0;N;i:1;b:1;i:2;d:-0;i:3;d:NAN;i:4;d:-INF;i:5;s:2:\"\xff!\";\
i:6;E:11:\"Suit:Hearts\";i:7;C:1:\"C\":3:{abc}i:8;r:7;}",
        )
        .unwrap();
        let j = to_json(&v);
        assert_eq!(
            j,
            json!([null, true, -0.0, "NAN", "-INF", "\u{fffd}!", {"__enum": "Suit:Hearts"},
                   {"__class": "C", "__serialized": "abc"}, "\u{fffd}!"])
        );
        assert_eq!(serde_json::to_string(&j[2]).unwrap(), "-0.0");
        assert_eq!(to_json(&Value::Float(f64::INFINITY)), json!("INF"));
        assert_eq!(
            to_json(&Value::Ref(2)),
            json!({"__ref": 2}),
            "dangling: left as a slot number"
        );
    }

    #[test]
    fn references_are_expanded_and_cycles_stop() {
        // PHP 8.2: $o = new stdClass; $a = [1, $o, 2, $o]; $a[] = &$a[0]; serialize($a)
        let v = unserialize(b"a:5:{i:0;i:1;i:1;O:8:\"stdClass\":0:{}i:2;i:2;i:3;r:3;i:4;R:2;}")
            .unwrap();
        assert_eq!(
            to_json(&v),
            json!([1, {"__class": "stdClass"}, 2, {"__class": "stdClass"}, 1])
        );
        // An array holding a reference to itself: $a = []; $a[0] = &$a; serialize($a)
        let v = unserialize(b"a:1:{i:0;a:1:{i:0;R:2;}}").unwrap();
        assert_eq!(to_json(&v), json!([[{"__ref": 2}]]));
    }

    #[test]
    fn non_list_arrays_become_objects() {
        let v = unserialize(b"a:2:{i:1;s:1:\"a\";i:0;s:1:\"b\";}").unwrap();
        assert_eq!(to_json(&v), json!({"1": "a", "0": "b"}));
        let v = unserialize(b"a:2:{i:0;i:1;s:1:\"k\";i:2;}").unwrap();
        assert_eq!(to_json(&v), json!({"0": 1, "k": 2}));
        assert_eq!(to_json(&unserialize(b"a:0:{}").unwrap()), json!([]));
    }

    #[test]
    fn colliding_property_names_are_all_kept() {
        let v = unserialize(
            b"O:1:\"B\":4:{s:4:\"\0A\0x\";i:1;s:1:\"x\";i:2;s:4:\"\0*\0x\";i:3;s:4:\"\0B\0x\";i:4;}",
        )
        .unwrap();
        let j = to_json(&v);
        assert_eq!(
            serde_json::to_string(&j).unwrap(),
            r#"{"__class":"B","x":1,"x#public":2,"x#protected":3,"x#private(B)":4}"#
        );
    }
}

//! The PHP value tree that `unserialize` builds and `serialize` writes.
//!
//! It mirrors the serialized form, not PHP's runtime: arrays and objects keep their order and
//! duplicates, back-references stay `r:`/`R:` numbers (they are not resolved), and a `Serializable`
//! blob stays raw. That is what makes `serialize(unserialize(x)) == x` possible. It must not grow
//! PHP semantics beyond small read helpers (no reference resolution, no key normalisation).

/// One PHP value, as it appears in `serialize()` output.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `N;`
    Null,
    /// `b:0;` / `b:1;`
    Bool(bool),
    /// `i:<n>;`
    Int(i64),
    /// `d:<x>;` (including INF, -INF, NAN and -0).
    Float(f64),
    /// `s:<len>:"<bytes>";` (also read from the escaped `S:` form). PHP strings are bytes.
    Str(Vec<u8>),
    /// `a:<n>:{<key><value>…}`, in serialized order, duplicates kept.
    Array(Vec<(Key, Value)>),
    /// `O:<len>:"<Class>":<n>:{<name><value>…}`
    Object(Object),
    /// `C:<len>:"<Class>":<n>:{<raw n bytes>}` (the `Serializable` interface); `data` stays raw.
    Custom {
        /// The class name.
        class: String,
        /// Whatever the class's `serialize()` method returned.
        data: Vec<u8>,
    },
    /// `E:<len>:"<Class>:<Case>";` (PHP 8.1+ enum case).
    Enum {
        /// The enum's class name.
        class: String,
        /// The case name.
        case: String,
    },
    /// `r:<n>;`: the same object as value slot `n` (1-based, see [`crate::php::unserialize`]).
    ObjRef(u32),
    /// `R:<n>;`: a PHP reference (`&`) to value slot `n`.
    Ref(u32),
}

/// An array key: PHP only has integer and string keys.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// `i:<n>;`
    Int(i64),
    /// `s:<len>:"<bytes>";`
    Str(Vec<u8>),
}

/// An `O:` object: its class and its properties in serialized order.
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    /// The class name as written (e.g. `App\Jobs\DeferredJob`).
    pub class: String,
    /// Properties in serialized order.
    pub props: Vec<(Prop, Value)>,
}

/// A property name with its visibility decoded from PHP's name mangling.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Prop {
    /// The name without the mangling prefix.
    pub name: Vec<u8>,
    /// Decoded from the prefix: none, `\0*\0` or `\0Class\0`.
    pub visibility: Visibility,
}

/// Property visibility, as encoded in the mangled name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Visibility {
    /// Bare name.
    Public,
    /// `\0*\0name`
    Protected,
    /// `\0Class\0name`; the string is the class written in the prefix (the declaring class for
    /// native serialization, the runtime class for Laravel's `SerializesModels`).
    Private(String),
}

impl Value {
    /// An array entry by string key, or an object property by unmangled name (any visibility).
    ///
    /// For arrays a decimal key such as `"7"` also finds `Key::Int(7)`, because PHP stores
    /// integer-like string keys as integers.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Array(items) => {
                let int_key = canonical_int(key);
                items
                    .iter()
                    .find(|(k, _)| match k {
                        Key::Str(s) => s.as_slice() == key.as_bytes(),
                        Key::Int(i) => int_key == Some(*i),
                    })
                    .map(|(_, v)| v)
            }
            Value::Object(o) => o.prop(key),
            _ => None,
        }
    }

    /// An array entry by integer key.
    pub fn index(&self, key: i64) -> Option<&Value> {
        match self {
            Value::Array(items) => items
                .iter()
                .find(|(k, _)| *k == Key::Int(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, if this is a string holding valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    /// The raw bytes, if this is a string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Str(b) => Some(b),
            _ => None,
        }
    }

    /// The integer, if this is an `i:`.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The float, if this is a `d:`.
    pub fn as_float(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The boolean, if this is a `b:`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// True for `N;`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// PHP's `(bool)` of the value: false for null, `false`, `0`, `0.0`, `""`, `"0"` and `[]`; true for
    /// anything else (objects, enums, and back-references, whose target is not looked up).
    pub fn truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !(s.is_empty() || s.as_slice() == b"0"),
            Value::Array(items) => !items.is_empty(),
            Value::Object(_)
            | Value::Custom { .. }
            | Value::Enum { .. }
            | Value::ObjRef(_)
            | Value::Ref(_) => true,
        }
    }

    /// The entries, if this is an array.
    pub fn as_array(&self) -> Option<&[(Key, Value)]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The object, if this is an `O:`.
    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The class name of an object, `Serializable` blob or enum.
    pub fn class(&self) -> Option<&str> {
        match self {
            Value::Object(o) => Some(&o.class),
            Value::Custom { class, .. } | Value::Enum { class, .. } => Some(class),
            _ => None,
        }
    }
}

impl Object {
    /// The first property with this unmangled name, whatever its visibility.
    pub fn prop(&self, name: &str) -> Option<&Value> {
        self.props
            .iter()
            .find(|(p, _)| p.name == name.as_bytes())
            .map(|(_, v)| v)
    }
}

impl Prop {
    /// A public property.
    pub fn public(name: impl Into<Vec<u8>>) -> Self {
        Prop {
            name: name.into(),
            visibility: Visibility::Public,
        }
    }

    /// A protected property.
    pub fn protected(name: impl Into<Vec<u8>>) -> Self {
        Prop {
            name: name.into(),
            visibility: Visibility::Protected,
        }
    }

    /// A private property mangled with `class`.
    pub fn private(class: impl Into<String>, name: impl Into<Vec<u8>>) -> Self {
        Prop {
            name: name.into(),
            visibility: Visibility::Private(class.into()),
        }
    }

    /// The mangled name as PHP writes it.
    pub fn mangled(&self) -> Vec<u8> {
        match &self.visibility {
            Visibility::Public => self.name.clone(),
            Visibility::Protected => [b"\0*\0".as_slice(), &self.name].concat(),
            Visibility::Private(class) => {
                [b"\0".as_slice(), class.as_bytes(), b"\0", &self.name].concat()
            }
        }
    }
}

impl Key {
    /// The key as text: decimal for integers, lossy UTF-8 for strings.
    pub fn to_text(&self) -> String {
        match self {
            Key::Int(i) => i.to_string(),
            Key::Str(s) => String::from_utf8_lossy(s).into_owned(),
        }
    }
}

/// `Some(n)` when `s` is the canonical decimal form of an i64 (PHP's integer-like key rule:
/// no leading zeros, no `+`, no `-0`).
fn canonical_int(s: &str) -> Option<i64> {
    let n: i64 = s.parse().ok()?;
    (n.to_string() == s).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        Value::Object(Object {
            class: "A".into(),
            props: vec![
                (Prop::public("a"), Value::Int(1)),
                (Prop::protected("b"), Value::Str(b"x".to_vec())),
                (
                    Prop::private("A", "c"),
                    Value::Array(vec![
                        (Key::Int(7), Value::Bool(true)),
                        (Key::Str(b"k".to_vec()), Value::Float(1.5)),
                    ]),
                ),
            ],
        })
    }

    #[test]
    fn get_finds_props_of_any_visibility_and_array_keys() {
        let v = sample();
        assert_eq!(v.get("a").and_then(Value::as_int), Some(1));
        assert_eq!(v.get("b").and_then(Value::as_str), Some("x"));
        let c = v.get("c").expect("private prop");
        assert_eq!(c.get("7").and_then(Value::as_bool), Some(true));
        assert_eq!(c.index(7).and_then(Value::as_bool), Some(true));
        assert_eq!(c.get("07"), None, "07 is not an integer-like key");
        assert_eq!(c.get("k").and_then(Value::as_float), Some(1.5));
        assert_eq!(v.get("missing"), None);
        assert_eq!(Value::Int(1).get("a"), None);
        assert_eq!(v.class(), Some("A"));
    }

    #[test]
    fn mangled_names_follow_php() {
        assert_eq!(Prop::public("x").mangled(), b"x");
        assert_eq!(Prop::protected("x").mangled(), b"\0*\0x");
        assert_eq!(Prop::private("App\\J", "x").mangled(), b"\0App\\J\0x");
    }

    #[test]
    fn as_str_rejects_invalid_utf8() {
        assert_eq!(Value::Str(vec![0xff]).as_str(), None);
        assert_eq!(Value::Str(vec![0xff]).as_bytes(), Some([0xff].as_slice()));
        assert_eq!(Key::Str(b"a".to_vec()).to_text(), "a");
        assert_eq!(Key::Int(-3).to_text(), "-3");
    }

    #[test]
    fn truthy_is_phps_bool_cast() {
        for falsy in [
            Value::Null,
            Value::Bool(false),
            Value::Int(0),
            Value::Float(-0.0),
            Value::Str(Vec::new()),
            Value::Str(b"0".to_vec()),
            Value::Array(Vec::new()),
        ] {
            assert!(!falsy.truthy(), "{falsy:?}");
        }
        for truthy in [
            Value::Int(-1),
            Value::Float(f64::NAN),
            Value::Str(b"0.0".to_vec()),
            Value::Str(b" ".to_vec()),
            Value::Array(vec![(Key::Int(0), Value::Null)]),
            sample(),
        ] {
            assert!(truthy.truthy(), "{truthy:?}");
        }
    }
}

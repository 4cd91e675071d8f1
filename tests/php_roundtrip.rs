//! Property tests for `php::{serialize, unserialize}`: random value trees round-trip through our
//! own parser and, byte for byte, through the real PHP CLI; random and mutated input never panics
//! and whatever parses writes back stably.
//!
//! The PHP differential test needs `php` on PATH (PHP 7.4+); without it, it fails.

use std::io::Write;
use std::process::{Command, Stdio};

use defer_worker::php::{serialize, unserialize, Key, Object, Prop, Value, Visibility};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

/// PHP class names: identifier segments joined by backslashes; bytes >= 0x80 are allowed by PHP.
fn class_name() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_é]{0,6}(\\\\[A-Za-z_][A-Za-z0-9_]{0,6}){0,2}"
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        // Bit patterns reach subnormals, NaN payloads and every exponent.
        any::<u64>().prop_map(f64::from_bits),
        (any::<i32>(), 0u32..8).prop_map(|(m, k)| f64::from(m) / 10f64.powi(k as i32)),
        // Binary fractions with 16-17 digit expansions: where exact decimal ties happen.
        (any::<i64>(), 1i32..12).prop_map(|(m, k)| (m >> 10) as f64 / 2f64.powi(k)),
        prop::sample::select(vec![
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.0,
            1e15,
            1e16,
            1e17,
            1e-4,
            1e-5,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
        ]),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        float().prop_map(Value::Float),
        vec(any::<u8>(), 0..12).prop_map(Value::Str),
        (class_name(), "[A-Za-z_][A-Za-z0-9_]{0,8}")
            .prop_map(|(class, case)| Value::Enum { class, case }),
        (class_name(), vec(any::<u8>(), 0..12))
            .prop_map(|(class, data)| Value::Custom { class, data }),
    ]
}

fn key() -> impl Strategy<Value = Key> {
    prop_oneof![
        any::<i64>().prop_map(Key::Int),
        vec(any::<u8>(), 0..6).prop_map(Key::Str)
    ]
}

/// Any name PHP's mangling can carry: a public name may not start with NUL.
fn prop_name() -> impl Strategy<Value = Prop> {
    let name = vec(any::<u8>(), 0..6);
    prop_oneof![
        name.clone().prop_map(|mut n| {
            if n.first() == Some(&0) {
                n.insert(0, b'p');
            }
            Prop::public(n)
        }),
        name.clone().prop_map(Prop::protected),
        (class_name(), name).prop_map(|(c, n)| Prop::private(c, n)),
    ]
}

/// Every form but back-references (random ones would not point at valid slots).
fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            vec((key(), inner.clone()), 0..6).prop_map(Value::Array),
            (class_name(), vec((prop_name(), inner), 0..6))
                .prop_map(|(class, props)| Value::Object(Object { class, props })),
        ]
    })
}

fn lossy(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// Structural equality with NaN equal to NaN (whatever its payload) and -0 distinct from 0.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => {
            (x.is_nan() && y.is_nan()) || x.to_bits() == y.to_bits()
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, va), (kb, vb))| ka == kb && same(va, vb))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.class == y.class
                && x.props.len() == y.props.len()
                && x.props
                    .iter()
                    .zip(&y.props)
                    .all(|((pa, va), (pb, vb))| pa == pb && same(va, vb))
        }
        _ => a == b,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn trees_round_trip(v in value()) {
        let bytes = serialize(&v);
        let back = unserialize(&bytes)
            .map_err(|e| TestCaseError::fail(format!("{e} in {:?}", lossy(&bytes))))?;
        prop_assert!(same(&v, &back), "{v:?} came back as {back:?}");
        prop_assert_eq!(serialize(&back), bytes);
    }

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..64)) {
        assert_stable(&bytes)?;
    }

    #[test]
    fn mutated_php_output_never_panics(
        which in 0..SEEDS.len(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
    ) {
        let mut bytes = SEEDS[which].to_vec();
        for (at, byte, op) in edits {
            let i = at.index(bytes.len() + 1);
            match op {
                0 if i < bytes.len() => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ => bytes.truncate(i),
            }
        }
        assert_stable(&bytes)?;
    }
}

/// Output of PHP 8.2's `serialize()` (see src/php/parse.rs for the expressions), to mutate.
const SEEDS: &[&[u8]] = &[
    b"a:5:{i:0;i:1;i:1;O:8:\"stdClass\":0:{}i:2;i:2;i:3;r:3;i:4;R:2;}",
    b"a:3:{i:0;i:1;i:1;a:3:{i:0;i:2;i:1;O:8:\"stdClass\":0:{}i:2;a:1:{i:0;r:5;}}\
i:2;a:4:{i:0;i:1;i:1;R:9;i:2;r:5;i:3;r:5;}}",
    b"O:1:\"K\":5:{s:9:\"\0P\0secret\";s:1:\"s\";s:7:\"\0*\0prot\";a:1:{i:0;i:1;}s:3:\"pub\";N;\
s:9:\"\0K\0secret\";s:1:\"k\";s:1:\"e\";E:11:\"Suit:Hearts\";}",
    b"a:4:{i:0;C:3:\"Ser\":37:{a:2:{i:0;i:1;i:1;O:8:\"stdClass\":0:{}}}i:1;r:5;i:2;i:5;i:3;r:5;}",
    b"a:6:{i:0;d:1.0E+17;i:1;d:-0;i:2;d:NAN;i:3;d:0.3333333333333333;i:4;S:1:\"\\41\";i:5;b:1;}",
];

/// No panic; and whatever parses must write back to something that parses to the same tree and
/// writes back identically.
fn assert_stable(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(v) = unserialize(bytes) {
        let out = serialize(&v);
        let again = unserialize(&out).map_err(|e| {
            TestCaseError::fail(format!(
                "{e} re-reading {:?}",
                String::from_utf8_lossy(&out)
            ))
        })?;
        prop_assert!(same(&v, &again));
        prop_assert_eq!(serialize(&again), out);
    }
    Ok(())
}

/// Trees PHP's `unserialize` keeps as they are: no enums or `C:` blobs (their classes would have to
/// exist), unique array keys that PHP will not turn into integers, unique property names, and
/// classes that do not exist (PHP keeps them as `__PHP_Incomplete_Class` with the same name).
fn php_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        float().prop_map(Value::Float),
        float().prop_map(Value::Float),
        vec(any::<u8>(), 0..12).prop_map(Value::Str),
    ];
    leaf.prop_recursive(4, 48, 5, |inner| {
        let key = prop_oneof![
            any::<i64>().prop_map(Key::Int),
            "k[a-z0-9]{0,4}".prop_map(|s| Key::Str(s.into_bytes())),
        ];
        let prop = prop_oneof![
            "[a-z_][a-z0-9_]{0,4}".prop_map(Prop::public),
            "[a-z_][a-z0-9_]{0,4}".prop_map(Prop::protected),
            ("Zz[A-Za-z0-9_]{0,4}", "[a-z_][a-z0-9_]{0,4}").prop_map(|(c, n)| Prop::private(c, n)),
        ];
        prop_oneof![
            vec((key, inner.clone()), 0..5).prop_map(|items| Value::Array(dedup(items))),
            ("Zz[A-Za-z0-9_]{0,6}", vec((prop, inner), 0..5)).prop_map(|(class, props)| {
                Value::Object(Object {
                    class,
                    props: dedup(props),
                })
            }),
        ]
    })
}

fn dedup<K: PartialEq, V>(items: Vec<(K, V)>) -> Vec<(K, V)> {
    let mut out: Vec<(K, V)> = Vec::with_capacity(items.len());
    for (k, v) in items {
        if !out.iter().any(|(seen, _)| *seen == k) {
            out.push((k, v));
        }
    }
    out
}

/// Runs `serialize(unserialize(stdin))` in PHP.
fn php_reserialize(input: &[u8]) -> Option<Vec<u8>> {
    let mut child = Command::new("php")
        .args([
            "-d",
            "error_reporting=0",
            "-r",
            "echo serialize(unserialize(stream_get_contents(STDIN)));",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(input).ok()?;
    let out = child.wait_with_output().ok()?;
    out.status.success().then_some(out.stdout)
}

/// Generates `n` values from `strategy`, deterministically.
fn generate<S: Strategy>(strategy: S, n: usize) -> Vec<S::Value> {
    let mut runner = TestRunner::deterministic();
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).map(|t| t.current()))
        .collect::<Result<_, _>>()
        .expect("strategy generates")
}

/// Sends the values to PHP in batches as one list each; on a difference, reports the first value
/// PHP writes differently.
fn assert_php_agrees(values: &[Value]) {
    for chunk in values.chunks(2000) {
        let list = Value::Array(
            chunk
                .iter()
                .cloned()
                .enumerate()
                .map(|(i, v)| (Key::Int(i as i64), v))
                .collect(),
        );
        let ours = serialize(&list);
        let theirs = php_reserialize(&ours).expect("php ran");
        if theirs == ours {
            continue;
        }
        for v in chunk {
            let one = serialize(v);
            let back = php_reserialize(&one).unwrap_or_default();
            assert_eq!(
                String::from_utf8_lossy(&back),
                String::from_utf8_lossy(&one),
                "PHP disagrees on {v:?}"
            );
        }
        panic!("PHP disagrees on a batch but on no single element");
    }
}

/// A missing PHP is a failure, not a skip: .ci/run installs it.
fn php_available() -> bool {
    let ok = php_reserialize(b"N;").as_deref() == Some(b"N;".as_slice());
    assert!(ok, "php CLI not available: install php-cli (.ci/run does)");
    ok
}

#[test]
fn php_writes_floats_exactly_as_we_do() {
    if !php_available() {
        return;
    }
    let floats = generate(float(), 50_000);
    assert!(floats.iter().any(|f| f.is_nan()) && floats.iter().any(|f| *f < 1e-300));
    assert_php_agrees(&floats.into_iter().map(Value::Float).collect::<Vec<_>>());
}

#[test]
fn php_writes_trees_exactly_as_we_do() {
    if !php_available() {
        return;
    }
    let values = generate(php_value(), 3000);
    let objects = values
        .iter()
        .filter(|v| serialize(v).starts_with(b"O:"))
        .count();
    assert!(objects > 100, "only {objects} top-level objects");
    assert_php_agrees(&values);
}

#[test]
fn visibility_survives_php() {
    if !php_available() {
        return;
    }
    let v = Value::Object(Object {
        class: "ZzJob".into(),
        props: vec![
            (
                Prop {
                    name: b"a".to_vec(),
                    visibility: Visibility::Protected,
                },
                Value::Int(1),
            ),
            (Prop::private("ZzJob", "b"), Value::Float(0.1)),
            (Prop::public("c"), Value::Str(b"\0\"".to_vec())),
        ],
    });
    let ours = serialize(&v);
    assert_eq!(php_reserialize(&ours), Some(ours));
}

//! Back-references (`r:n`, `R:n`) replaced by the values they name, as PHP's `unserialize` shares them.
//!
//! Slots are numbered the way PHP numbers them: every value in document order, except `R:` (a PHP
//! reference does not take a slot of its own); keys never count. A reference to one of its own
//! ancestors (a cycle) cannot be expanded and stays as it is, and so does any reference once a
//! budget of copied values is spent, since a few bytes of `R:` can describe an exponentially large tree.

use std::collections::HashMap;

use super::value::Value;

/// How many values may be copied in while expanding references.
const BUDGET: usize = 1_000_000;

/// `root` with every expandable reference replaced by a copy of its target.
pub fn resolve(root: &Value) -> Value {
    let mut slots = Vec::new();
    number_slots(root, &mut slots);
    let ids = slots
        .iter()
        .enumerate()
        .map(|(i, v)| (addr(v), i + 1))
        .collect();
    Resolver {
        slots,
        ids,
        path: Vec::new(),
        budget: BUDGET,
    }
    .copy(root)
}

/// True when `value` holds an `r:` or `R:` anywhere.
pub fn has_refs(value: &Value) -> bool {
    match value {
        Value::ObjRef(_) | Value::Ref(_) => true,
        Value::Array(items) => items.iter().any(|(_, v)| has_refs(v)),
        Value::Object(o) => o.props.iter().any(|(_, v)| has_refs(v)),
        _ => false,
    }
}

fn addr(v: &Value) -> usize {
    std::ptr::from_ref(v) as usize
}

fn number_slots<'a>(v: &'a Value, slots: &mut Vec<&'a Value>) {
    if !matches!(v, Value::Ref(_)) {
        slots.push(v);
    }
    match v {
        Value::Array(items) => items.iter().for_each(|(_, item)| number_slots(item, slots)),
        Value::Object(o) => o
            .props
            .iter()
            .for_each(|(_, item)| number_slots(item, slots)),
        _ => {}
    }
}

struct Resolver<'a> {
    slots: Vec<&'a Value>,
    ids: HashMap<usize, usize>,
    /// Slots of the values being copied, to stop at a reference to an ancestor.
    path: Vec<usize>,
    budget: usize,
}

impl<'a> Resolver<'a> {
    fn copy(&mut self, value: &'a Value) -> Value {
        self.budget = self.budget.saturating_sub(1);
        let slot = self.ids.get(&addr(value)).copied();
        if let Some(slot) = slot {
            self.path.push(slot);
        }
        let out = match value {
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|(k, v)| (k.clone(), self.copy(v)))
                    .collect(),
            ),
            Value::Object(o) => {
                let mut o2 = o.clone();
                o2.props = o
                    .props
                    .iter()
                    .map(|(p, v)| (p.clone(), self.copy(v)))
                    .collect();
                Value::Object(o2)
            }
            Value::ObjRef(n) | Value::Ref(n) => self.target(*n).unwrap_or_else(|| value.clone()),
            other => other.clone(),
        };
        if slot.is_some() {
            self.path.pop();
        }
        out
    }

    fn target(&mut self, n: u32) -> Option<Value> {
        let mut t = usize::try_from(n).ok()?;
        // An `r:` slot is the object it points at: follow chains.
        for _ in 0..self.slots.len() {
            match self.slots.get(t.checked_sub(1)?)? {
                Value::ObjRef(m) => t = usize::try_from(*m).ok()?,
                _ => break,
            }
        }
        let v = *self.slots.get(t.checked_sub(1)?)?;
        if self.path.contains(&t) || self.budget == 0 || matches!(v, Value::ObjRef(_)) {
            return None;
        }
        Some(self.copy(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::php::unserialize;

    #[test]
    fn object_and_php_references_are_expanded() {
        // PHP 8.2: $o = new stdClass; $a = [1, $o, 2, $o]; $a[] = &$a[0]; serialize($a)
        let v = unserialize(b"a:5:{i:0;i:1;i:1;O:8:\"stdClass\":0:{}i:2;i:2;i:3;r:3;i:4;R:2;}")
            .unwrap();
        let Value::Array(items) = resolve(&v) else {
            panic!()
        };
        assert_eq!(items[3].1, items[1].1);
        assert_eq!(items[4].1, Value::Int(1));
    }

    #[test]
    fn cycles_and_dangling_references_stay() {
        // $a = []; $a[0] = &$a; serialize($a)
        let v = unserialize(b"a:1:{i:0;a:1:{i:0;R:2;}}").unwrap();
        assert_eq!(resolve(&v), v);
        assert_eq!(resolve(&Value::Ref(9)), Value::Ref(9));
    }

    #[test]
    fn exponential_expansion_is_bounded() {
        // Each level holds two references to the level below: 2^40 values if fully expanded.
        let mut s = String::from("a:2:{i:0;i:1;i:1;i:1;}");
        for level in 0..40 {
            let target = 1 + 3 * level + 1; // slot of the previous level's array
            s = format!("a:3:{{i:0;{s}i:1;R:{target};i:2;R:{target};}}");
        }
        let v = unserialize(s.as_bytes());
        if let Ok(v) = v {
            let _ = resolve(&v); // must return, not hang or exhaust memory
        }
    }
}

//! The `realtime_metrics_{vendor}` array and the deltas DashboardNotificationService applies to it per event
//! (docs/restrosaas.md §6.1), with PHP's arithmetic: int + int stays int, anything with a float is a float,
//! `/` gives an int only when it divides exactly, `max(0, x)` keeps the int 0. Pure: no I/O.

use crate::php::{Key, Value};

/// The events `updateRealTimeMetrics` knows.
pub const EVENTS: &[&str] = &[
    "new_order",
    "order_completed",
    "order_cancelled",
    "payment_received",
    "new_customer",
];

/// The metrics array after `event` with `data` (`order_total`, `amount`), at time `now` (`H:i:s`).
/// `old` is the cached value; anything but an array starts from an empty one. Keys keep their order; new
/// keys are appended, as PHP's `$metrics['k'] = …` does. An unknown event leaves the array as it was.
pub fn apply_event(old: Option<Value>, event: &str, data: &Value, now: &str) -> Value {
    let mut m = match old {
        Some(Value::Array(items)) => Metrics(items),
        _ => Metrics(Vec::new()),
    };
    let amount = |key: &str| data.get(key).map_or(Num::Int(0), Num::of);
    let one = Num::Int(1);
    match event {
        "new_order" => {
            m.set("active_orders", m.num("active_orders").add(one));
            m.set("today_orders", m.num("today_orders").add(one));
            m.set("last_order_time", Value::Str(now.as_bytes().to_vec()));
            let pending = m.num("pending_revenue").add(amount("order_total"));
            m.set("pending_revenue", pending);
        }
        "order_completed" => {
            let total = amount("order_total");
            m.set(
                "active_orders",
                m.num("active_orders").sub(one).at_least_zero(),
            );
            let revenue = m.num("today_revenue").add(total);
            m.set("today_revenue", revenue);
            let completed = m.num("completed_orders").add(one);
            m.set("completed_orders", completed);
            m.set(
                "pending_revenue",
                m.num("pending_revenue").sub(total).at_least_zero(),
            );
            m.set("avg_order_value", revenue.div(completed));
        }
        "order_cancelled" => {
            let total = amount("order_total");
            m.set(
                "active_orders",
                m.num("active_orders").sub(one).at_least_zero(),
            );
            let cancelled = m.num("cancelled_orders").add(one);
            m.set("cancelled_orders", cancelled);
            m.set(
                "pending_revenue",
                m.num("pending_revenue").sub(total).at_least_zero(),
            );
            let completed = m.num("completed_orders");
            let rate = completed.div(completed.add(cancelled)).mul(Num::Int(100));
            m.set("success_rate", rate);
        }
        "payment_received" => {
            m.set(
                "today_revenue",
                m.num("today_revenue").add(amount("amount")),
            );
            m.set("payments_received", m.num("payments_received").add(one));
            m.set("last_payment_time", Value::Str(now.as_bytes().to_vec()));
        }
        "new_customer" => {
            m.set("new_customers_today", m.num("new_customers_today").add(one));
            m.set("online_customers", m.num("online_customers").add(one));
        }
        _ => {}
    }
    Value::Array(m.0)
}

struct Metrics(Vec<(Key, Value)>);

impl Metrics {
    fn num(&self, key: &str) -> Num {
        self.0
            .iter()
            .find(|(k, _)| matches!(k, Key::Str(s) if s == key.as_bytes()))
            .map_or(Num::Int(0), |(_, v)| Num::of(v))
    }

    fn set(&mut self, key: &str, value: impl Into<Value>) {
        let value = value.into();
        match self
            .0
            .iter_mut()
            .find(|(k, _)| matches!(k, Key::Str(s) if s == key.as_bytes()))
        {
            Some((_, v)) => *v = value,
            None => self.0.push((Key::Str(key.as_bytes().to_vec()), value)),
        }
    }
}

/// A PHP number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    Int(i64),
    Float(f64),
}

impl From<Num> for Value {
    fn from(n: Num) -> Value {
        match n {
            Num::Int(i) => Value::Int(i),
            Num::Float(f) => Value::Float(f),
        }
    }
}

impl Num {
    /// A value in arithmetic, as PHP converts it (null/false → 0, true → 1, numeric strings parsed,
    /// anything else 0).
    pub(crate) fn of(v: &Value) -> Num {
        match v {
            Value::Int(i) => Num::Int(*i),
            Value::Float(f) => Num::Float(*f),
            Value::Bool(b) => Num::Int(i64::from(*b)),
            Value::Str(s) => {
                let t = String::from_utf8_lossy(s);
                let t = t.trim();
                t.parse::<i64>()
                    .map(Num::Int)
                    .or_else(|_| t.parse::<f64>().map(Num::Float))
                    .unwrap_or(Num::Int(0))
            }
            _ => Num::Int(0),
        }
    }

    fn f(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    fn add(self, o: Num) -> Num {
        match (self, o) {
            (Num::Int(a), Num::Int(b)) => a
                .checked_add(b)
                .map_or(Num::Float(a as f64 + b as f64), Num::Int),
            _ => Num::Float(self.f() + o.f()),
        }
    }

    fn sub(self, o: Num) -> Num {
        match (self, o) {
            (Num::Int(a), Num::Int(b)) => a
                .checked_sub(b)
                .map_or(Num::Float(a as f64 - b as f64), Num::Int),
            _ => Num::Float(self.f() - o.f()),
        }
    }

    fn mul(self, o: Num) -> Num {
        match (self, o) {
            (Num::Int(a), Num::Int(b)) => a
                .checked_mul(b)
                .map_or(Num::Float(a as f64 * b as f64), Num::Int),
            _ => Num::Float(self.f() * o.f()),
        }
    }

    /// PHP's `/` (the divisor is never 0 here: it was just incremented).
    fn div(self, o: Num) -> Num {
        match (self, o) {
            (Num::Int(a), Num::Int(b)) if b != 0 && a % b == 0 => Num::Int(a / b),
            _ => Num::Float(self.f() / o.f()),
        }
    }

    /// `max(0, $x)`: `$x` when greater than 0, else the int 0.
    fn at_least_zero(self) -> Num {
        if self.f() > 0.0 {
            self
        } else {
            Num::Int(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::php;

    fn data(pairs: &[(&str, Value)]) -> Value {
        Value::Array(
            pairs
                .iter()
                .map(|(k, v)| (Key::Str(k.as_bytes().to_vec()), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn new_order_counts_and_adds_the_total() {
        let d = data(&[("order_total", Value::Float(12500.5))]);
        let once = apply_event(None, "new_order", &d, "10:00:00");
        assert_eq!(
            php::serialize(&once),
            b"a:4:{s:13:\"active_orders\";i:1;s:12:\"today_orders\";i:1;s:15:\"last_order_time\";s:8:\"10:00:00\";s:15:\"pending_revenue\";d:12500.5;}"
        );
        let twice = apply_event(Some(once), "new_order", &d, "10:00:05");
        assert_eq!(twice.get("today_orders"), Some(&Value::Int(2)));
        assert_eq!(twice.get("pending_revenue"), Some(&Value::Float(25001.0)));
        assert_eq!(
            twice.get("last_order_time").and_then(Value::as_str),
            Some("10:00:05")
        );
    }

    #[test]
    fn other_events_follow_the_service() {
        let start = data(&[
            ("active_orders", Value::Int(1)),
            ("pending_revenue", Value::Float(10.0)),
            ("server_status", Value::Str(b"online".to_vec())),
        ]);
        let d = data(&[("order_total", Value::Int(10))]);
        let done = apply_event(Some(start), "order_completed", &d, "t");
        assert_eq!(done.get("active_orders"), Some(&Value::Int(0)));
        assert_eq!(done.get("today_revenue"), Some(&Value::Int(10)));
        assert_eq!(done.get("pending_revenue"), Some(&Value::Int(0)));
        assert_eq!(done.get("avg_order_value"), Some(&Value::Int(10)));
        assert_eq!(
            done.get("server_status").and_then(Value::as_str),
            Some("online")
        );
        let cancelled = apply_event(Some(done), "order_cancelled", &d, "t");
        assert_eq!(cancelled.get("active_orders"), Some(&Value::Int(0)));
        assert_eq!(cancelled.get("success_rate"), Some(&Value::Float(50.0)));
        let paid = apply_event(
            Some(cancelled),
            "payment_received",
            &data(&[("amount", Value::Str(b"2.5".to_vec()))]),
            "t",
        );
        assert_eq!(paid.get("today_revenue"), Some(&Value::Float(12.5)));
        assert_eq!(paid.get("payments_received"), Some(&Value::Int(1)));
        let cust = apply_event(Some(paid.clone()), "new_customer", &Value::Null, "t");
        assert_eq!(cust.get("online_customers"), Some(&Value::Int(1)));
        assert_eq!(
            apply_event(Some(paid.clone()), "something_else", &Value::Null, "t"),
            paid
        );
        // A cached value that is not an array starts over.
        let fresh = apply_event(Some(Value::Bool(false)), "new_customer", &Value::Null, "t");
        assert_eq!(fresh.get("new_customers_today"), Some(&Value::Int(1)));
    }
}

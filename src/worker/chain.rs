//! Chains (`Bus::chain([...])`, docs/laravel-queue.md §11.1): the next link of a DeferredJob that
//! succeeded, built as PHP's `Queueable::dispatchNextJobInChain` and `Queue::createObjectPayload` would
//! build it, so the rest of the chain is never dropped.
//!
//! [`plan`] runs *before* the link: it either builds the next link's payload ([`Chain::Next`]), finds
//! no chain ([`Chain::End`]), or says why only PHP can carry the chain on ([`Chain::Php`]): catch
//! callbacks (PHP closures that run when any link, the last one included, fails), a next link of
//! another class or one that is not plainly readable, an encrypted command, job settings the next
//! envelope would have to guess from the PHP class, a date delay, or a connection or (on Redis Cluster)
//! a queue this worker cannot push to. The job is then handed to PHP unchanged, before it runs, and PHP dispatches the rest.
//!
//! Pure: it must not run, push or delete anything. The settler pushes the next link *before* it deletes
//! the finished one, so a crash in between runs the link twice rather than losing the rest of the chain.

use crate::laravel::dispatch::{self, NewPayload};
use crate::laravel::payload::Envelope;
use crate::laravel::redis_config::hash_tag;
use crate::php::{self, Key, Object, Prop, Value};

/// Where this worker pushes the next links: the connection it works, the app's default connection
/// (`QUEUE_CONNECTION`, what a link with no connection goes to) and that connection's default queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub connection: String,
    pub default_connection: String,
    pub default_queue: String,
    /// Redis Cluster with no `{hash tag}` in the key prefix: a queue name needs one of its own, or
    /// the push would fail every time (and the link, left reserved, would run again and again).
    pub hash_tag_required: bool,
}

/// The next link, ready to push.
#[derive(Debug, Clone)]
pub struct NextLink {
    /// Its queue: its own, else the chain's `chainQueue`, else the connection's default queue.
    pub queue: String,
    /// Seconds from now (its own `delay`; 0 = ready at once).
    pub delay: u64,
    pub payload: NewPayload,
}

/// What carries the chain on after this job succeeds.
#[derive(Debug)]
pub enum Chain {
    /// No chain, or its last link.
    End,
    /// Push this link, then delete the finished one.
    Next(NextLink),
    /// Only PHP can: hand the job to PHP before it runs; the reason is logged.
    Php(&'static str),
}

/// The envelope keys a job class fills from its own properties or methods (`tries`, `backoff()`,
/// `retryUntil()`…); the command may not carry them (9.4+ leaves out default values), so a next link
/// is built only when none is set.
const CLASS_SETTINGS: [&str; 7] = [
    "tries",
    "maxExceptions",
    "failOnTimeout",
    "backoff",
    "timeout",
    "retryUntil",
    "shouldBeEncrypted",
];

/// Decides, before `command` (a DeferredJob of `class`, from a payload with `envelope`) runs, how its
/// chain goes on. `encrypted`: the command was encrypted (`ShouldBeEncrypted`).
pub fn plan(
    command: &Value,
    encrypted: bool,
    envelope: &Envelope,
    class: &str,
    route: &Route,
    limits: &php::Limits,
) -> Chain {
    let Some(this) = command.as_object() else {
        return Chain::End;
    };
    // Checked first: the callbacks run when *any* link fails for good, the last one included.
    if this.prop("chainCatchCallbacks").is_some_and(Value::truthy) {
        return Chain::Php("the chain has catch callbacks (PHP closures)");
    }
    let chained = match this.prop("chained") {
        None | Some(Value::Null) => return Chain::End,
        Some(Value::Array(links)) if links.is_empty() => return Chain::End,
        Some(Value::Array(links)) => links,
        Some(_) => return Chain::Php("its chained property is not an array"),
    };
    if encrypted {
        return Chain::Php("the chain's jobs are encrypted (ShouldBeEncrypted)");
    }
    if class_settings(envelope, class) {
        return Chain::Php(
            "the job class sets tries, backoff, timeouts or a display name the next link's payload needs",
        );
    }
    let mut next = match &chained[0].1 {
        Value::Str(serialized) => match php::unserialize_with(serialized, limits) {
            // Setting properties could renumber the slots `r:`/`R:` point at.
            Ok(v) if php::has_refs(&v) => return Chain::Php("the next link holds PHP references"),
            Ok(Value::Object(next)) => next,
            _ => return Chain::Php("the next link is not a readable serialized job"),
        },
        _ => return Chain::Php("the next link is not a serialized job"),
    };
    if next.class != class {
        return Chain::Php("the next link is another job class");
    }
    if CLASS_SETTINGS.iter().any(|p| next.prop(p).is_some()) {
        return Chain::Php("the next link sets its own tries, backoff or timeouts");
    }
    // `$next->onConnection($next->connection ?: $this->chainConnection)`, then the Dispatcher's default.
    let connection = either(next.prop("connection"), this.prop("chainConnection"));
    let Some(target) = name_or(&connection, &route.default_connection) else {
        return Chain::Php("the next link's connection is not a name");
    };
    if target != route.connection {
        return Chain::Php("the next link goes to another queue connection");
    }
    let queue = either(next.prop("queue"), this.prop("chainQueue"));
    let Some(queue_name) = name_or(&queue, &route.default_queue) else {
        return Chain::Php("the next link's queue is not a name");
    };
    if route.hash_tag_required && hash_tag(&queue_name).is_none() {
        return Chain::Php("the next link's queue has no {hash tag}, which Redis Cluster needs");
    }
    let delay = match next.prop("delay") {
        None | Some(Value::Null) => 0,
        Some(Value::Int(secs)) => u64::try_from(*secs).unwrap_or(0),
        Some(_) => return Chain::Php("the next link's delay is a date or an interval"),
    };
    let rest: Vec<(Key, Value)> = chained[1..]
        .iter()
        .zip(0_i64..)
        .map(|((_, link), i)| (Key::Int(i), link.clone()))
        .collect();
    let carried = |name: &str| this.prop(name).cloned().unwrap_or(Value::Null);
    set(&mut next, "chained", Value::Array(rest));
    set(&mut next, "connection", connection);
    set(&mut next, "queue", queue);
    set(&mut next, "chainConnection", carried("chainConnection"));
    set(&mut next, "chainQueue", carried("chainQueue"));
    set(
        &mut next,
        "chainCatchCallbacks",
        carried("chainCatchCallbacks"),
    );
    let command = php::serialize(&Value::Object(next));
    let (uuid, id) = dispatch::fresh_ids();
    let bytes = dispatch::envelope(class, &command, &uuid, &id);
    Chain::Next(NextLink {
        queue: queue_name,
        delay,
        payload: NewPayload { uuid, id, bytes },
    })
}

/// True when the envelope carries a setting of the job class (anything `dispatch::envelope` writes
/// differently): the next link's envelope could not be written without the PHP class.
fn class_settings(envelope: &Envelope, class: &str) -> bool {
    envelope.max_tries.is_some()
        || envelope.max_exceptions.is_some()
        || envelope.backoff.is_some()
        || envelope.timeout.is_some()
        || envelope.retry_until.is_some()
        || envelope.fail_on_timeout == Some(true)
        || envelope.display_name.as_deref().is_some_and(|n| n != class)
}

/// PHP's `$a ?: $b` on two optional properties (a missing one is null).
fn either(a: Option<&Value>, b: Option<&Value>) -> Value {
    match a {
        Some(v) if v.truthy() => v.clone(),
        _ => b.cloned().unwrap_or(Value::Null),
    }
}

/// A connection or queue name: the string, `default` for null, `None` for anything else.
fn name_or(value: &Value, default: &str) -> Option<String> {
    match value {
        Value::Null => Some(default.to_owned()),
        Value::Str(name) => Some(String::from_utf8_lossy(name).into_owned()),
        _ => None,
    }
}

/// Sets a public `Queueable` property: in place when the command has it (8.x writes them all), else
/// added when it differs from its default (9.4+ leaves defaults out: null, and `[]` for `chained`).
fn set(object: &mut Object, name: &str, value: Value) {
    if let Some((_, slot)) = object
        .props
        .iter_mut()
        .find(|(p, _)| p.name == name.as_bytes())
    {
        *slot = value;
        return;
    }
    let default = match &value {
        Value::Null => true,
        Value::Array(a) => a.is_empty() && name == "chained",
        _ => false,
    };
    if !default {
        object.props.push((Prop::public(name), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deferred::{DeferredJob, DEFAULT_CLASS};
    use crate::laravel::encrypter::Encrypter;
    use crate::laravel::payload::Payload;

    fn route() -> Route {
        Route {
            connection: "redis".into(),
            default_connection: "redis".into(),
            default_queue: "default".into(),
            hash_tag_required: false,
        }
    }

    fn fixture(name: &str) -> Payload<'static> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/payloads")
            .join(name);
        // A payload borrows its bytes; a test's few fixtures may live as long as the test process.
        Payload::parse(Vec::leak(std::fs::read(path).expect("fixture"))).expect("payload")
    }

    fn command(p: &Payload<'_>) -> Value {
        p.command(&Encrypter::none(), &php::Limits::default())
            .expect("command")
            .value
    }

    fn plan_of(p: &Payload<'_>, route: &Route) -> Chain {
        plan(
            &command(p),
            false,
            p.envelope(),
            DEFAULT_CLASS,
            route,
            &php::Limits::default(),
        )
    }

    /// The links of `foreign_chain.json` (Laravel 8.83: whatsapp on queue `whatsapp`, then email and
    /// analytics with no queue of their own and no chainQueue) come out one after the other.
    #[test]
    fn the_fixture_chain_yields_each_link_with_the_rest() {
        let first = fixture("foreign_chain.json");
        let Chain::Next(second) = plan_of(&first, &route()) else {
            panic!("expected a next link")
        };
        assert_eq!((second.queue.as_str(), second.delay), ("default", 0));
        let p = Payload::parse(&second.payload.bytes).expect("next payload");
        assert_eq!(p.uuid(), Some(second.payload.uuid.as_str()));
        assert_ne!(p.uuid(), first.uuid(), "a fresh uuid");
        assert_eq!(p.attempts().unwrap(), 0);
        assert_eq!(p.display_name(), DEFAULT_CLASS);
        let cmd = command(&p);
        let job = DeferredJob::from_command(&cmd, DEFAULT_CLASS).expect("a DeferredJob");
        assert_eq!(job.action, "email_notification");
        let obj = cmd.as_object().unwrap();
        let rest = obj.prop("chained").and_then(Value::as_array).unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].0, Key::Int(0));
        assert_eq!(obj.prop("queue"), Some(&Value::Null));
        assert_eq!(obj.prop("chainCatchCallbacks"), Some(&Value::Null));
        // Laravel 8 writes every Queueable property: the shape is kept, in place.
        let names: Vec<_> = obj
            .props
            .iter()
            .map(|(p, _)| String::from_utf8_lossy(&p.name).into_owned())
            .collect();
        assert_eq!(names.len(), 12, "{names:?}");
        assert_eq!(names.last().map(String::as_str), Some("chained"));

        let Chain::Next(third) = plan_of(&p, &route()) else {
            panic!("expected the last link")
        };
        let p3 = Payload::parse(&third.payload.bytes).expect("third payload");
        let job3 = DeferredJob::from_command(&command(&p3), DEFAULT_CLASS).unwrap();
        assert_eq!(job3.action, "analytics_tracking");
        assert!(matches!(plan_of(&p3, &route()), Chain::End));
    }

    /// A Laravel 10 shaped command (defaults left out) with `chainQueue`, and a link with a queue and
    /// a delay of its own.
    #[test]
    fn queue_and_delay_come_from_the_link_then_the_chain() {
        let link = |action: &str, extra: Vec<(Prop, Value)>| {
            let mut props = vec![
                (Prop::protected("action"), Value::Str(action.into())),
                (Prop::protected("data"), Value::Array(Vec::new())),
            ];
            props.extend(extra);
            php::serialize(&Value::Object(Object {
                class: DEFAULT_CLASS.into(),
                props,
            }))
        };
        let second = link("b", vec![]);
        let third = link(
            "c",
            vec![
                (Prop::public("queue"), Value::Str(b"emails".to_vec())),
                (Prop::public("delay"), Value::Int(30)),
            ],
        );
        let first = Value::Object(Object {
            class: DEFAULT_CLASS.into(),
            props: vec![
                (Prop::protected("action"), Value::Str(b"a".to_vec())),
                (Prop::public("chainQueue"), Value::Str(b"chain".to_vec())),
                (Prop::public("chainCatchCallbacks"), Value::Array(vec![])),
                (
                    Prop::public("chained"),
                    Value::Array(vec![
                        (Key::Int(0), Value::Str(second)),
                        (Key::Int(1), Value::Str(third)),
                    ]),
                ),
            ],
        });
        let run = |cmd: &Value| {
            plan(
                cmd,
                false,
                &Envelope::default(),
                DEFAULT_CLASS,
                &route(),
                &php::Limits::default(),
            )
        };
        let Chain::Next(b) = run(&first) else {
            panic!("expected b")
        };
        assert_eq!((b.queue.as_str(), b.delay), ("chain", 0));
        let b_cmd = command(&Payload::parse(&b.payload.bytes).unwrap());
        let b_obj = b_cmd.as_object().unwrap();
        assert_eq!(b_obj.prop("queue"), Some(&Value::Str(b"chain".to_vec())));
        assert_eq!(
            b_obj.prop("chainQueue"),
            Some(&Value::Str(b"chain".to_vec()))
        );
        assert_eq!(b_obj.prop("connection"), None, "a null is left out");
        let Chain::Next(c) = run(&b_cmd) else {
            panic!("expected c")
        };
        assert_eq!((c.queue.as_str(), c.delay), ("emails", 30));
        let c_cmd = command(&Payload::parse(&c.payload.bytes).unwrap());
        assert_eq!(
            c_cmd.as_object().unwrap().prop("chained"),
            None,
            "an empty rest is the default, left out as 9.4+ does"
        );
        assert!(matches!(run(&c_cmd), Chain::End));
    }

    #[test]
    fn what_only_php_can_carry_on_is_handed_to_php() {
        let base = fixture("foreign_chain.json");
        let cmd = command(&base);
        let with = |name: &str, value: Value| {
            let mut c = cmd.clone();
            if let Value::Object(o) = &mut c {
                set(o, name, value);
            }
            c
        };
        let php_reason = |c: &Value, env: &Envelope, route: &Route| match plan(
            c,
            false,
            env,
            DEFAULT_CLASS,
            route,
            &php::Limits::default(),
        ) {
            Chain::Php(reason) => reason,
            other => panic!("expected PHP, got {other:?}"),
        };
        let env = base.envelope();
        let catch = with(
            "chainCatchCallbacks",
            Value::Array(vec![(Key::Int(0), Value::Str(b"closure".to_vec()))]),
        );
        assert!(php_reason(&catch, env, &route()).contains("catch callbacks"));
        let mut last = catch.clone();
        if let Value::Object(o) = &mut last {
            set(o, "chained", Value::Array(Vec::new()));
        }
        assert!(
            php_reason(&last, env, &route()).contains("catch callbacks"),
            "the last link too: its failure runs them"
        );
        let foreign = with(
            "chained",
            Value::Array(vec![(
                Key::Int(0),
                Value::Str(b"O:8:\"stdClass\":0:{}".to_vec()),
            )]),
        );
        assert!(php_reason(&foreign, env, &route()).contains("another job class"));
        let elsewhere = Route {
            default_connection: "database".into(),
            ..route()
        };
        assert!(php_reason(&cmd, env, &elsewhere).contains("another queue connection"));
        let cluster = Route {
            hash_tag_required: true,
            ..route()
        };
        assert!(php_reason(&cmd, env, &cluster).contains("hash tag"));
        let tagged = with("chainQueue", Value::Str(b"{shop}default".to_vec()));
        assert!(
            matches!(plan_of_value(&tagged, env, &cluster), Chain::Next(_)),
            "a queue with its own tag"
        );
        let tuned = Envelope {
            max_tries: Some(3),
            ..env.clone()
        };
        assert!(php_reason(&cmd, &tuned, &route()).contains("tries"));
        assert!(matches!(
            plan(
                &cmd,
                true,
                env,
                DEFAULT_CLASS,
                &route(),
                &php::Limits::default()
            ),
            Chain::Php(_)
        ));
        let on_elsewhere = with("chainConnection", Value::Str(b"redis".to_vec()));
        assert!(
            matches!(
                plan_of_value(&on_elsewhere, env, &elsewhere),
                Chain::Next(_)
            ),
            "chainConnection names the worker's connection"
        );
    }

    fn plan_of_value(c: &Value, env: &Envelope, route: &Route) -> Chain {
        plan(c, false, env, DEFAULT_CLASS, route, &php::Limits::default())
    }
}

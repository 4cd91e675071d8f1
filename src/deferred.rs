//! `App\Jobs\DeferredJob` → the typed [`DeferredJob`] `{ action, data }`, and the line between our jobs and
//! foreign ones.
//!
//! The app declares `protected $action; protected $data;`, so in the command they appear as `\0*\0action`
//! and `\0*\0data`; a fork may make them public or private, so properties are matched by name whatever their
//! visibility. Laravel 8 also writes every Queueable property (connection, queue, chained…), 9.4+ omits the
//! default-valued ones: neither is read here. Anything whose class is not the configured one (closures,
//! mailables, notifications, listeners, `Class@method` string jobs) is [`JobClass::Foreign`], recognised
//! from the envelope before the command is even decoded, and is not an error.

use crate::laravel::payload::Payload;
use crate::php::Value;

/// The app's job class, as written in `data.commandName`.
pub const DEFAULT_CLASS: &str = "App\\Jobs\\DeferredJob";

/// The class Laravel uses for Eloquent models inside a serialized job.
pub const MODEL_IDENTIFIER: &str = "Illuminate\\Contracts\\Database\\ModelIdentifier";

/// What a payload is, judged from its envelope only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobClass {
    /// `data.commandName` is the configured DeferredJob class.
    Deferred,
    /// Anything else; the name is the payload's displayName (what `queue:failed` would show).
    Foreign { display_name: String },
}

/// A decoded DeferredJob.
#[derive(Debug, Clone, PartialEq)]
pub struct DeferredJob {
    pub action: String,
    /// The `data` array, PHP semantics kept (ordered, int and string keys); always a `Value::Array`.
    pub data: Value,
}

/// Why a command of the DeferredJob class cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeferredError {
    #[error("data.commandName is {expected} but the command is {found}")]
    ClassMismatch { expected: String, found: String },
    #[error("{class} has no `action` property")]
    NoAction { class: String },
    #[error("{class}::$action is not a string")]
    ActionNotString { class: String },
    #[error("{class}::$data is not an array")]
    DataNotArray { class: String },
}

/// Classifies a payload by its envelope: only object jobs whose `commandName` is `class` are ours.
pub fn classify(payload: &Payload<'_>, class: &str) -> JobClass {
    if payload.is_object_job() && payload.command_name() == Some(class) {
        JobClass::Deferred
    } else {
        JobClass::Foreign {
            display_name: payload.display_name().to_owned(),
        }
    }
}

impl DeferredJob {
    /// Reads `action` and `data` from an unserialized command of class `class`. Back-references inside
    /// are expanded (they are numbered over the whole command, so `data` cannot be read without them).
    pub fn from_command(command: &Value, class: &str) -> Result<DeferredJob, DeferredError> {
        let resolved;
        let command = if crate::php::has_refs(command) {
            resolved = crate::php::resolve(command);
            &resolved
        } else {
            command
        };
        let object = match command {
            Value::Object(o) if o.class == class => o,
            Value::Object(o) => {
                return Err(DeferredError::ClassMismatch {
                    expected: class.into(),
                    found: o.class.clone(),
                })
            }
            other => {
                return Err(DeferredError::ClassMismatch {
                    expected: class.into(),
                    found: format!("a PHP {}", type_name(other)),
                })
            }
        };
        let action = match object.prop("action") {
            Some(Value::Str(s)) => String::from_utf8_lossy(s).into_owned(),
            Some(_) => {
                return Err(DeferredError::ActionNotString {
                    class: class.into(),
                })
            }
            None => {
                return Err(DeferredError::NoAction {
                    class: class.into(),
                })
            }
        };
        let data = match object.prop("data") {
            Some(v @ Value::Array(_)) => v.clone(),
            // The constructor's default is `[]`; a null/absent $data is read as that.
            None | Some(Value::Null) => Value::Array(Vec::new()),
            Some(_) => {
                return Err(DeferredError::DataNotArray {
                    class: class.into(),
                })
            }
        };
        Ok(DeferredJob { action, data })
    }

    /// `data[key]` for a string key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.data.get(key)
    }

    /// The order an order action (WhatsApp, e-mail) is about: `data.order_id` read as [`Self::id`]
    /// reads it; None when it is missing or not a number (`test_order_1`), which the app completes
    /// without sending anything.
    pub fn order_id(&self) -> Option<i64> {
        match self.id("order_id") {
            IdArg::Id(id) => Some(id),
            IdArg::Missing | IdArg::NotNumeric(_) => None,
        }
    }

    /// Reads `data[key]` as an id (int, numeric string, whole float), as the app's `Order::find($id)`
    /// would use it.
    pub fn id(&self, key: &str) -> IdArg {
        match self.get(key) {
            None | Some(Value::Null) => IdArg::Missing,
            Some(Value::Int(i)) => IdArg::Id(*i),
            Some(Value::Float(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => IdArg::Id(*f as i64),
            Some(Value::Str(s)) => {
                let text = String::from_utf8_lossy(s);
                let t = text.trim();
                let numeric = !t.is_empty()
                    && t.bytes()
                        .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
                t.parse::<i64>()
                    .ok()
                    .or_else(|| {
                        t.parse::<f64>()
                            .ok()
                            .filter(|f| numeric && f.fract() == 0.0 && f.abs() < 9.0e15)
                            .map(|f| f as i64)
                    })
                    .map_or_else(|| IdArg::NotNumeric(text.into_owned()), IdArg::Id)
            }
            Some(other) => IdArg::NotNumeric(format!("{other:?}")),
        }
    }
}

/// An id as PHP would use it in `Order::find($id)`.
#[derive(Debug, Clone, PartialEq)]
pub enum IdArg {
    /// Absent or null.
    Missing,
    /// An integer, or a string/float that is a whole number.
    Id(i64),
    /// Anything else (`"test_order_1"`): the app looks nothing up.
    NotNumeric(String),
}

/// An Eloquent model reference found in a job (`ModelIdentifier`): what Laravel would re-query.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRef {
    pub class: String,
    pub id: Value,
    pub connection: Option<String>,
}

impl ModelRef {
    /// Reads a `ModelIdentifier` object; `None` for any other value.
    pub fn from_value(value: &Value) -> Option<ModelRef> {
        let Value::Object(o) = value else { return None };
        if o.class != MODEL_IDENTIFIER {
            return None;
        }
        let class = o.prop("class").and_then(Value::as_str)?.to_owned();
        let id = o.prop("id").cloned().unwrap_or(Value::Null);
        let connection = o
            .prop("connection")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Some(ModelRef {
            class,
            id,
            connection,
        })
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Float(_) => "float",
        Value::Str(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::Custom { .. } => "Serializable object",
        Value::Enum { .. } => "enum",
        Value::ObjRef(_) | Value::Ref(_) => "reference",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::php::unserialize;

    const WHATSAPP: &[u8] = b"O:20:\"App\\Jobs\\DeferredJob\":2:{s:9:\"\0*\0action\";s:21:\"whatsapp_notification\";s:7:\"\0*\0data\";a:1:{s:8:\"order_id\";i:42;}}";

    #[test]
    fn order_ids_are_read_as_php_does() {
        let job = |v: Value| DeferredJob {
            action: "whatsapp_notification".into(),
            data: Value::Array(vec![(crate::php::Key::Str(b"order_id".to_vec()), v)]),
        };
        assert_eq!(job(Value::Int(7)).order_id(), Some(7));
        assert_eq!(job(Value::Str(b" 12 ".to_vec())).order_id(), Some(12));
        assert_eq!(job(Value::Str(b"3.0".to_vec())).order_id(), Some(3));
        assert_eq!(job(Value::Str(b"test_order_1".to_vec())).order_id(), None);
        assert_eq!(job(Value::Null).order_id(), None);
        let empty = DeferredJob {
            action: "email_notification".into(),
            data: Value::Array(vec![]),
        };
        assert_eq!(empty.order_id(), None);
    }

    #[test]
    fn reads_protected_action_and_data() {
        let v = unserialize(WHATSAPP).unwrap();
        let job = DeferredJob::from_command(&v, DEFAULT_CLASS).unwrap();
        assert_eq!(job.action, "whatsapp_notification");
        assert_eq!(job.get("order_id"), Some(&Value::Int(42)));
    }

    #[test]
    fn public_and_private_properties_are_read_too() {
        let public =
            b"O:20:\"App\\Jobs\\DeferredJob\":2:{s:6:\"action\";s:1:\"x\";s:4:\"data\";a:0:{}}";
        let job = DeferredJob::from_command(&unserialize(public).unwrap(), DEFAULT_CLASS).unwrap();
        assert_eq!(job.action, "x");
        let private = b"O:20:\"App\\Jobs\\DeferredJob\":1:{s:28:\"\0App\\Jobs\\DeferredJob\0action\";s:1:\"y\";}";
        let job = DeferredJob::from_command(&unserialize(private).unwrap(), DEFAULT_CLASS).unwrap();
        assert_eq!((job.action.as_str(), job.data), ("y", Value::Array(vec![])));
    }

    #[test]
    fn wrong_shapes_are_named() {
        let other = unserialize(b"O:8:\"stdClass\":0:{}").unwrap();
        assert_eq!(
            DeferredJob::from_command(&other, DEFAULT_CLASS)
                .unwrap_err()
                .to_string(),
            "data.commandName is App\\Jobs\\DeferredJob but the command is stdClass"
        );
        let no_action = unserialize(b"O:20:\"App\\Jobs\\DeferredJob\":0:{}").unwrap();
        assert!(matches!(
            DeferredJob::from_command(&no_action, DEFAULT_CLASS),
            Err(DeferredError::NoAction { .. })
        ));
        let bad_data = unserialize(
            b"O:20:\"App\\Jobs\\DeferredJob\":2:{s:6:\"action\";s:1:\"x\";s:4:\"data\";i:1;}",
        )
        .unwrap();
        assert!(matches!(
            DeferredJob::from_command(&bad_data, DEFAULT_CLASS),
            Err(DeferredError::DataNotArray { .. })
        ));
    }

    #[test]
    fn model_identifiers_are_recognised() {
        let v = unserialize(b"O:45:\"Illuminate\\Contracts\\Database\\ModelIdentifier\":4:{s:5:\"class\";s:16:\"App\\Models\\Order\";s:2:\"id\";i:42;s:9:\"relations\";a:0:{}s:10:\"connection\";s:5:\"mysql\";}").unwrap();
        let m = ModelRef::from_value(&v).unwrap();
        assert_eq!(m.class, "App\\Models\\Order");
        assert_eq!(m.id, Value::Int(42));
        assert_eq!(m.connection.as_deref(), Some("mysql"));
        assert_eq!(ModelRef::from_value(&Value::Int(1)), None);
    }

    #[test]
    fn classification_uses_the_envelope() {
        let ours = Payload::parse(br#"{"displayName":"App\\Jobs\\DeferredJob","job":"Illuminate\\Queue\\CallQueuedHandler@call","data":{"commandName":"App\\Jobs\\DeferredJob","command":"O:1:\"x\":0:{}"},"attempts":0}"#).unwrap();
        assert_eq!(classify(&ours, DEFAULT_CLASS), JobClass::Deferred);
        assert_eq!(
            classify(&ours, "App\\Jobs\\Other"),
            JobClass::Foreign {
                display_name: "App\\Jobs\\DeferredJob".into()
            }
        );
        let mail = Payload::parse(br#"{"displayName":"App\\Mail\\OrderShipped","job":"Illuminate\\Queue\\CallQueuedHandler@call","data":{"commandName":"Illuminate\\Mail\\SendQueuedMailable","command":"O:1:\"x\":0:{}"},"attempts":0}"#).unwrap();
        assert_eq!(
            classify(&mail, DEFAULT_CLASS),
            JobClass::Foreign {
                display_name: "App\\Mail\\OrderShipped".into()
            }
        );
        let string_job = Payload::parse(br#"{"displayName":"App\\Jobs\\DeferredJob","job":"App\\Jobs\\DeferredJob@fire","data":"","attempts":0}"#).unwrap();
        assert!(matches!(
            classify(&string_job, DEFAULT_CLASS),
            JobClass::Foreign { .. }
        ));
    }
}

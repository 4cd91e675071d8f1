//! The JSON view of one payload (what `defer-worker decode`, `failed show` and the console print): pure,
//! no I/O, no settings, so the `decode` fuzz target mounts this file by path.

use serde_json::{Map, Value as Json};

use crate::deferred::{classify, DeferredJob, JobClass};
use crate::laravel::encrypter::Encrypter;
use crate::laravel::payload::{CommandError, Payload, PayloadError};
use crate::php;

/// Why a payload could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(transparent)]
    Payload(#[from] PayloadError),
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error(transparent)]
    Deferred(#[from] crate::deferred::DeferredError),
}

/// Decodes one payload into the JSON document `decode` prints.
pub fn decode(raw: &[u8], encrypter: &Encrypter, class: &str) -> Result<Json, DecodeError> {
    let payload = Payload::parse(raw)?;
    let mut out: Map<String, Json> =
        serde_json::from_str(payload.raw()).map_err(|e| PayloadError::Json(e.to_string()))?;
    let has_command = matches!(out.get("data"), Some(Json::Object(d)) if d.contains_key("command"));
    if let Some(Json::Object(data)) = out.get_mut("data") {
        data.shift_remove("command");
    }
    let (command, encrypted) = if has_command {
        let c = payload.command(encrypter, &php::Limits::default())?;
        (Some(c.value), c.encrypted)
    } else {
        (None, false)
    };
    let deferred = match (classify(&payload, class), &command) {
        (JobClass::Deferred, Some(value)) => {
            let job = DeferredJob::from_command(value, class)?;
            serde_json::json!({ "action": job.action, "data": php::to_json(&job.data) })
        }
        _ => Json::Null,
    };
    out.insert("encrypted".into(), Json::Bool(encrypted));
    out.insert(
        "command".into(),
        command.as_ref().map(php::to_json).unwrap_or(Json::Null),
    );
    out.insert("deferred".into(), deferred);
    Ok(Json::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: &str = r#"{"uuid":"u-1","displayName":"App\\Jobs\\DeferredJob","job":"Illuminate\\Queue\\CallQueuedHandler@call","maxTries":null,"data":{"commandName":"App\\Jobs\\DeferredJob","command":"O:20:\"App\\Jobs\\DeferredJob\":2:{s:9:\"\u0000*\u0000action\";s:13:\"cache_warming\";s:7:\"\u0000*\u0000data\";a:1:{s:9:\"vendor_id\";i:7;}}"},"id":"abc","attempts":0,"tags":["x"]}"#;

    #[test]
    fn prints_envelope_command_and_deferred() {
        let out = decode(
            RAW.as_bytes(),
            &Encrypter::none(),
            crate::deferred::DEFAULT_CLASS,
        )
        .unwrap();
        assert_eq!(out["uuid"], "u-1");
        assert_eq!(out["tags"], serde_json::json!(["x"]));
        assert_eq!(
            out["data"],
            serde_json::json!({"commandName": "App\\Jobs\\DeferredJob"})
        );
        assert_eq!(out["encrypted"], false);
        assert_eq!(out["command"]["__class"], "App\\Jobs\\DeferredJob");
        assert_eq!(
            out["deferred"],
            serde_json::json!({"action": "cache_warming", "data": {"vendor_id": 7}})
        );
    }

    #[test]
    fn foreign_jobs_decode_with_null_deferred() {
        let raw = RAW.replace(
            "\"commandName\":\"App\\\\Jobs\\\\DeferredJob\"",
            "\"commandName\":\"App\\\\Jobs\\\\Other\"",
        );
        let out = decode(
            raw.as_bytes(),
            &Encrypter::none(),
            crate::deferred::DEFAULT_CLASS,
        )
        .unwrap();
        assert_eq!(out["deferred"], Json::Null);
        assert_eq!(out["command"]["__class"], "App\\Jobs\\DeferredJob");
    }

    #[test]
    fn errors_say_what_and_where() {
        let e = decode(
            b"{\"data\":{\"command\":\"O:20:\\\"App\"},\"attempts\":0}",
            &Encrypter::none(),
            "X",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("not valid PHP serialize() output"),
            "{e}"
        );
        let e = decode(
            b"{\"data\":{\"command\":\"eyJpdiI6IiJ9\"},\"attempts\":0}",
            &Encrypter::none(),
            "X",
        )
        .unwrap_err();
        assert!(e.to_string().contains("APP_KEY"), "{e}");
    }
}

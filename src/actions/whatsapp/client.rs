//! The WhatsApp Cloud API call: `POST {WHATSAPP_API_URL}/{WHATSAPP_PHONE_NUMBER_ID}/messages` with
//! `Authorization: Bearer {WHATSAPP_API_TOKEN}` and a JSON body, on one pooled reqwest client (rustls)
//! built at worker start, with the app's timeouts (10 s to connect, `WHATSAPP_TIMEOUT` in all).
//!
//! Bodies are built here exactly as the app builds them (docs/restrosaas.md §4.4): text messages as
//! `WhatsAppService::sendMessage` (no `recipient_type`, `preview_url` false by default), templates as
//! `WhatsAppBusinessService::sendTemplateMessage` (positional body parameters). No retries here (the
//! worker retries whole jobs) and no logging of the token, the recipient or the body above debug.

use std::time::Duration;

use serde_json::{json, Value as Json};

use super::errors::{self, SendError};

/// What Meta answered on success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// `messages[0].id`: the wamid the webhook later reports statuses for.
    pub wamid: Option<String>,
    /// `messages[0].message_status`: `accepted`, or `held_for_quality_assessment` (accepted, but
    /// Meta may still drop it); absent in older versions' answers.
    pub message_status: Option<String>,
}

/// The Cloud API endpoint of one sender phone number.
#[derive(Debug, Clone)]
pub struct CloudApi {
    http: reqwest::Client,
    url: String,
    /// `{api_url}/{phone_number_id}`: the phone number's own node, for read-only checks.
    number_url: String,
    token: String,
    timeout: Duration,
    phone_number_id: String,
}

/// Meta's limit on a text body, in characters.
const MAX_TEXT_CHARS: usize = 4096;

/// Meta refuses text bodies over 4096 characters: keep 4093 and add `...`.
pub fn truncate(text: String) -> String {
    if text.chars().count() <= MAX_TEXT_CHARS {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_TEXT_CHARS - 3).collect();
    cut.push_str("...");
    cut
}

/// The `text` message body.
pub fn text_body(to: &str, body: &str, preview_url: bool) -> Json {
    json!({
        "messaging_product": "whatsapp",
        "to": to,
        "type": "text",
        "text": {"preview_url": preview_url, "body": body},
    })
}

/// The `template` message body; `parameters` fill the template's body `{{1}}`, `{{2}}`… in order.
pub fn template_body(to: &str, name: &str, language: &str, parameters: &[String]) -> Json {
    let components = if parameters.is_empty() {
        json!([])
    } else {
        let params: Vec<Json> = parameters
            .iter()
            .map(|p| json!({"type": "text", "text": p}))
            .collect();
        json!([{"type": "body", "parameters": params}])
    };
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": {"name": name, "language": {"code": language}, "components": components},
    })
}

impl CloudApi {
    /// Builds the client once; `api_url` is Laravel's `whatsapp.api_url` (a trailing `/` is ignored).
    pub fn new(
        api_url: &str,
        phone_number_id: &str,
        token: &str,
        timeout: Duration,
    ) -> Result<CloudApi, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10).min(timeout))
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(32)
            .user_agent(concat!("defer-worker/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let number_url = format!("{}/{}", api_url.trim_end_matches('/'), phone_number_id);
        Ok(CloudApi {
            http,
            url: format!("{number_url}/messages"),
            number_url,
            token: token.to_owned(),
            timeout,
            phone_number_id: phone_number_id.to_owned(),
        })
    }

    /// The sender phone-number id (the rate limiter's key).
    pub fn phone_number_id(&self) -> &str {
        &self.phone_number_id
    }

    /// Sends one message body; a non-2xx answer or a transport failure comes back classified.
    pub async fn send(&self, body: &Json) -> Result<Sent, SendError> {
        tracing::debug!(url = %self.url, body = %body, "WhatsApp Cloud API request");
        let response = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .map_err(|e| errors::from_transport(&e, self.timeout))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| errors::from_transport(&e, self.timeout))?;
        tracing::debug!(status, body = %String::from_utf8_lossy(&bytes), "WhatsApp Cloud API answer");
        if !(200..300).contains(&status) {
            return Err(errors::from_response(
                status,
                retry_after.as_deref(),
                &bytes,
            ));
        }
        let answer = serde_json::from_slice::<Json>(&bytes).ok();
        let field = |pointer: &str| {
            answer
                .as_ref()
                .and_then(|j| j.pointer(pointer))
                .and_then(Json::as_str)
                .map(str::to_owned)
        };
        let wamid = field("/messages/0/id");
        let message_status = field("/messages/0/message_status");
        if wamid.is_none() {
            tracing::warn!(
                status,
                "WhatsApp Cloud API accepted the message without a message id"
            );
        }
        Ok(Sent {
            wamid,
            message_status,
        })
    }

    /// `GET /{phone-number-id}?fields=…`: the sender's own node, read-only (nothing is sent). Checks
    /// the token and the id as Meta sees them; an error answer comes back classified as a send's would.
    pub async fn phone_number(&self, fields: &str) -> Result<Json, SendError> {
        let response = self
            .http
            .get(&self.number_url)
            .query(&[("fields", fields)])
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| errors::from_transport(&e, self.timeout))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| errors::from_transport(&e, self.timeout))?;
        if !(200..300).contains(&status) {
            return Err(errors::from_response(status, None, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| SendError {
            retry: true,
            after: None,
            code: format!("http_{status}"),
            error: format!("the answer is not JSON: {e}"),
            message: format!(
                "WhatsApp Cloud API answered {status} with a body that is not JSON: {e}"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_the_apps_shape() {
        assert_eq!(
            text_body("2250708091011", "Hi", false).to_string(),
            r#"{"messaging_product":"whatsapp","to":"2250708091011","type":"text","text":{"preview_url":false,"body":"Hi"}}"#
        );
        assert_eq!(
            template_body("1234567890", "new_order_notification", "fr", &[]).to_string(),
            r#"{"messaging_product":"whatsapp","recipient_type":"individual","to":"1234567890","type":"template","template":{"name":"new_order_notification","language":{"code":"fr"},"components":[]}}"#
        );
        let t = template_body("1234567890", "n", "en", &["A".into(), "B".into()]);
        assert_eq!(
            t["template"]["components"].to_string(),
            r#"[{"type":"body","parameters":[{"type":"text","text":"A"},{"type":"text","text":"B"}]}]"#
        );
    }

    #[test]
    fn long_texts_are_cut_on_characters() {
        let text = "é".repeat(5000);
        let cut = truncate(text);
        assert_eq!(cut.chars().count(), 4096);
        assert!(cut.ends_with("é..."));
        assert_eq!(truncate("short".into()), "short");
    }
}

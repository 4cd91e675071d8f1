//! What an action reports to the worker ([`ActionError`]: retry later, hand back untouched, or give up)
//! and what it may know
//! about its job ([`JobMeta`]). An action never acks, releases or fails its own job.

use std::time::Duration;

use crate::app::{AppData, AppDataError, OrderBundle};

/// What the worker should do about an action that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// Transient: release the job with its backoff (or `after`, when the action knows better).
    #[error("{message}")]
    Retry {
        message: String,
        after: Option<Duration>,
    },
    /// Will never succeed: fail the job now, whatever tries are left.
    #[error("{message}")]
    Permanent { message: String },
    /// Not the job's fault and nothing was done for it (the sender is blocked, the recipient is
    /// paced): put it back exactly as it was, due in `after`, without consuming an attempt.
    #[error("{message}")]
    HandBack { message: String, after: Duration },
}

/// [`ActionError::Permanent`] with `message`.
pub fn permanent(message: impl Into<String>) -> ActionError {
    ActionError::Permanent {
        message: message.into(),
    }
}

/// The app's database and the order `id` an order action (WhatsApp, e-mail) is about; a permanent
/// failure when no database is configured or the order does not exist, as the app's `Order::find`
/// would end.
pub async fn order_of(
    app: Option<&AppData>,
    id: i64,
) -> Result<(&AppData, OrderBundle), ActionError> {
    let app = app.ok_or_else(|| permanent("no app database configured (DB_*)"))?;
    let bundle = app
        .order(id)
        .await?
        .ok_or_else(|| permanent(format!("Order {id} not found")))?;
    Ok((app, bundle))
}

/// Facts about the job an action may log; never the payload itself.
#[derive(Debug, Clone, Copy)]
pub struct JobMeta<'a> {
    pub uuid: &'a str,
    pub id: &'a str,
    pub queue: &'a str,
    /// 1 on the first run.
    pub attempt: i64,
}

impl From<AppDataError> for ActionError {
    /// An unreachable database is worth retrying; a statement that does not fit it is not.
    fn from(e: AppDataError) -> Self {
        match e {
            AppDataError::Unavailable { .. } => ActionError::Retry {
                message: e.to_string(),
                after: None,
            },
            AppDataError::Query { .. } | AppDataError::Columns { .. } => ActionError::Permanent {
                message: e.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_retries_and_bad_sql_fails_now() {
        let retry: ActionError = AppDataError::Unavailable {
            query: "order".into(),
            reason: "pool timed out".into(),
        }
        .into();
        assert!(matches!(retry, ActionError::Retry { after: None, .. }));
        assert!(retry
            .to_string()
            .contains("app database unavailable for the `order` lookup"));
        let perm: ActionError = AppDataError::Query {
            query: "settings".into(),
            reason: "Table 'x.settings' doesn't exist (42S02)".into(),
            missing_table: true,
        }
        .into();
        assert!(matches!(perm, ActionError::Permanent { .. }));
        assert!(perm.to_string().starts_with("app query `settings` failed"));
    }
}

//! Recording each send in the app's `whatsapp_messages_log` table as `WhatsAppService::logMessage`
//! does (docs/restrosaas.md §4.11, docs/restrosaas.md §7.4): `order_id`, `restaurant_id` / `customer_id`, the
//! normalised
//! `phone`, `message_type`, `status` (`sent` / `failed`), `message_id` (the wamid the app's webhook
//! matches), `error`, `created_at` / `updated_at`; plus what the app leaves empty: `error_code`,
//! `sent_at`, and, when a later attempt of the same job sends again, `retry_count` / `last_retry_at`
//! on the earlier failed row instead of a second row (so the app's statistics count one message).
//!
//! The table is optional: whether it exists is checked once and cached (a connection error is not
//! cached); a missing table means nothing is written. Writes go through [`AppData::execute`] (the
//! app's own connection). A failed write is the caller's warning, never the job's failure: the message
//! has already left. Nothing is logged from here, and values always travel as bound parameters.

use chrono::Utc;
use chrono_tz::Tz;
use tokio::sync::OnceCell;

use crate::app::{AppData, AppDataError, SqlValue};
use crate::laravel::database::Db;

/// The outcome to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent { wamid: Option<String> },
    Failed { error: String, code: String },
}

/// One row's worth.
#[derive(Debug, Clone)]
pub struct LogEntry<'a> {
    pub order_id: Option<i64>,
    /// The vendor (`users.id`) for restaurant messages.
    pub restaurant_id: Option<i64>,
    /// `orders.customer_id` for customer messages.
    pub customer_id: Option<i64>,
    pub phone: &'a str,
    pub message_type: &'a str,
    pub outcome: Outcome,
    /// The job's attempt (1-based): later attempts update the earlier failed row.
    pub attempt: i64,
}

/// What [`MessageLog::record`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// No table (or no table configured).
    Skipped,
    Inserted,
    /// An earlier failed attempt's row was updated.
    Updated,
}

/// The `whatsapp_messages_log` writer of one action.
#[derive(Debug)]
pub struct MessageLog {
    app: Option<AppData>,
    table: String,
    timezone: Tz,
    exists: OnceCell<bool>,
}

impl MessageLog {
    /// `table` empty or `app` `None`: never record.
    pub fn new(app: Option<AppData>, table: &str, timezone: Tz) -> MessageLog {
        MessageLog {
            app: app.filter(|_| !table.is_empty()),
            table: table.to_owned(),
            timezone,
            exists: OnceCell::new(),
        }
    }

    /// Whether rows are written (the table exists; checked once).
    pub async fn enabled(&self) -> Result<bool, AppDataError> {
        let Some(app) = &self.app else {
            return Ok(false);
        };
        self.exists
            .get_or_try_init(|| app.has_table(&self.table))
            .await
            .copied()
    }

    fn now(&self) -> String {
        Utc::now()
            .with_timezone(&self.timezone)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    }

    /// Writes (or, on a later attempt, updates) the row.
    pub async fn record(&self, entry: &LogEntry<'_>) -> Result<Recorded, AppDataError> {
        if !self.enabled().await? {
            return Ok(Recorded::Skipped);
        }
        let app = self.app.as_ref().expect("enabled implies a database");
        let pg = matches!(app.db(), Db::Postgres(_));
        let ts = if pg { "CAST(? AS TIMESTAMP)" } else { "?" };
        let t = &self.table;
        let now = SqlValue::Text(self.now());
        let text = |v: Option<&str>| v.map_or(SqlValue::Null, |s| SqlValue::Text(s.to_owned()));
        let (status, wamid, error, code) = match &entry.outcome {
            Outcome::Sent { wamid } => ("sent", wamid.as_deref(), None, None),
            Outcome::Failed { error, code } => {
                ("failed", None, Some(error.as_str()), Some(code.as_str()))
            }
        };
        // Values that may be NULL are written as literals, so PostgreSQL never sees an untyped text
        // parameter for a non-text column.
        let mut set_sql: Vec<String> = vec!["status = ?".into()];
        let mut set_params = vec![SqlValue::Text(status.into())];
        for (column, value) in [
            ("message_id", wamid),
            ("error", error),
            ("error_code", code),
        ] {
            match value {
                Some(v) => {
                    set_sql.push(format!("{column} = ?"));
                    set_params.push(text(Some(v)));
                }
                None => set_sql.push(format!("{column} = NULL")),
            }
        }
        if wamid.is_some() || status == "sent" {
            set_sql.push(format!("sent_at = {ts}"));
            set_params.push(now.clone());
        }
        set_sql.push(format!("updated_at = {ts}"));
        set_params.push(now.clone());

        if entry.attempt > 1 {
            if let Some(order_id) = entry.order_id {
                let mut sql_set = set_sql.clone();
                sql_set.push("retry_count = COALESCE(retry_count, 0) + 1".into());
                sql_set.push(format!("last_retry_at = {ts}"));
                let mut params = set_params.clone();
                params.push(now.clone());
                params.extend([
                    SqlValue::Int(order_id),
                    SqlValue::Text(entry.message_type.to_owned()),
                    SqlValue::Text(entry.phone.to_owned()),
                ]);
                // The derived table keeps MySQL from refusing a subquery on the updated table.
                let sql = format!(
                    "UPDATE {t} SET {} WHERE id = (SELECT m FROM (SELECT MAX(id) AS m FROM {t} \
                     WHERE order_id = ? AND message_type = ? AND phone = ? AND status = 'failed') AS earlier)",
                    sql_set.join(", ")
                );
                if app
                    .execute("whatsapp_messages_log update", &sql, &params)
                    .await?
                    > 0
                {
                    return Ok(Recorded::Updated);
                }
            }
        }

        let mut columns = vec!["phone", "message_type", "created_at"];
        let mut marks = vec!["?".to_owned(), "?".to_owned(), ts.to_owned()];
        let mut params = vec![
            SqlValue::Text(entry.phone.to_owned()),
            SqlValue::Text(entry.message_type.to_owned()),
            now,
        ];
        for (column, value) in [
            ("order_id", entry.order_id),
            ("restaurant_id", entry.restaurant_id),
            ("customer_id", entry.customer_id),
        ] {
            columns.push(column);
            match value {
                Some(v) => {
                    marks.push("?".into());
                    params.push(SqlValue::Int(v));
                }
                None => marks.push("NULL".into()),
            }
        }
        // The same values as the UPDATE's SET list, in the same order.
        for assignment in &set_sql {
            let (column, expr) = assignment.split_once(" = ").expect("column = expr");
            columns.push(column);
            marks.push(expr.to_owned());
        }
        params.extend(set_params);
        let sql = format!(
            "INSERT INTO {t} ({}) VALUES ({})",
            columns.join(", "),
            marks.join(", ")
        );
        app.execute("whatsapp_messages_log insert", &sql, &params)
            .await?;
        Ok(Recorded::Inserted)
    }
}

//! The console's actions, for the pages and the API alike: retry (one job, or every failed job of a
//! queue), forget, pause, resume, clear. Each runs [`crate::admin`]'s code (the CLI's), is logged
//! with who did it and what (never a token, a payload or an exception), and answers a message for
//! the person or an error with its HTTP status.

use hyper::StatusCode;

use super::Ctx;
use crate::admin::retry::{self, RetryEvent, Selection};
use crate::http::STORE_TIMEOUT;
use crate::util::clock::unix_now;

/// An action's failure: the status to answer and a message for the person.
pub type Failure = (StatusCode, String);

/// What a queue action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueAction {
    Pause,
    Resume,
    Clear,
}

impl QueueAction {
    pub fn parse(s: &str) -> Option<QueueAction> {
        match s {
            "pause" => Some(QueueAction::Pause),
            "resume" => Some(QueueAction::Resume),
            "clear" => Some(QueueAction::Clear),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            QueueAction::Pause => "pause",
            QueueAction::Resume => "resume",
            QueueAction::Clear => "clear",
        }
    }
}

/// Retries the rows `selection` names (one uuid, or a queue's rows); returns what happened.
pub async fn retry(ctx: &Ctx<'_>, selection: Selection) -> Result<String, Failure> {
    let failed = &ctx.state.failed;
    let (rows, missing) = retry::select(&selection, failed).await.map_err(|error| {
        tracing::warn!(%error, "console: cannot read failed_jobs");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "cannot read failed_jobs (see the log)".to_owned(),
        )
    })?;
    if let Some(uuid) = missing.first() {
        return Err((
            StatusCode::NOT_FOUND,
            format!("no failed job has the uuid {uuid}"),
        ));
    }
    if rows.is_empty() {
        let queue = selection.queue.as_deref().unwrap_or_default();
        return Err((
            StatusCode::NOT_FOUND,
            format!("no failed job on queue {queue}"),
        ));
    }
    let who = ctx.who.name();
    let mut refused = Vec::new();
    let mut report = |event: RetryEvent<'_>| match event {
        RetryEvent::Pushed(row) => tracing::info!(
            who,
            action = "retry",
            uuid = %row.job.uuid,
            queue = %row.job.queue,
            "console: failed job pushed back onto its queue"
        ),
        RetryEvent::Refused(row, why) => {
            tracing::warn!(who, action = "retry", uuid = %row.job.uuid, reason = %why, "console: retry refused");
            refused.push(format!("{}: {why}", row.job.uuid));
        }
    };
    let pushed = retry::retry(
        &rows,
        &ctx.console.retry,
        ctx.console.opener.as_ref(),
        failed,
        unix_now(),
        &mut report,
    )
    .await
    .map_err(|error| {
        tracing::error!(who, action = "retry", %error, "console: retry stopped");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("retry stopped: {error}"),
        )
    })?;
    match (pushed, refused.is_empty()) {
        (_, true) => Ok(format!(
            "{pushed} failed job(s) pushed back onto their queue"
        )),
        (0, false) => Err((
            StatusCode::CONFLICT,
            format!("not retried: {}", refused.join("; ")),
        )),
        (_, false) => Ok(format!(
            "{pushed} failed job(s) pushed back; not retried: {}",
            refused.join("; ")
        )),
    }
}

/// Deletes one failed job (`queue:forget`).
pub async fn forget(ctx: &Ctx<'_>, uuid: &str) -> Result<String, Failure> {
    let who = ctx.who.name();
    match tokio::time::timeout(STORE_TIMEOUT, ctx.state.failed.forget(uuid)).await {
        Ok(Ok(true)) => {
            tracing::info!(who, action = "forget", uuid, "console: failed job deleted");
            Ok(format!("failed job {uuid} deleted"))
        }
        Ok(Ok(false)) => Err((
            StatusCode::NOT_FOUND,
            format!("no failed job has the uuid {uuid}"),
        )),
        Ok(Err(error)) => {
            tracing::warn!(who, action = "forget", uuid, %error, "console: cannot delete failed job");
            Err((
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot delete from failed_jobs (see the log)".to_owned(),
            ))
        }
        Err(_) => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "the failed_jobs database did not answer in time".to_owned(),
        )),
    }
}

/// Pauses, resumes or clears `queue` (one of the console's queues).
pub async fn queue(ctx: &Ctx<'_>, queue: &str, action: QueueAction) -> Result<String, Failure> {
    if !super::data::queue_names(ctx).iter().any(|q| q == queue) {
        return Err((
            StatusCode::NOT_FOUND,
            format!("{queue} is not one of this console's queues"),
        ));
    }
    let who = ctx.who.name();
    let connection = ctx.console.connection.as_str();
    let unreachable = |error: &dyn std::fmt::Display| {
        tracing::warn!(who, action = action.name(), queue, %error, "console: queue action failed");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot {} {queue} (see the log)", action.name()),
        )
    };
    let message = match action {
        QueueAction::Clear => {
            let n = ctx
                .state
                .queue
                .clear(queue)
                .await
                .map_err(|e| unreachable(&e))?;
            format!("{n} job(s) deleted from {queue}")
        }
        QueueAction::Pause | QueueAction::Resume => {
            let Some(store) = &ctx.console.pause else {
                return Err((
                    StatusCode::CONFLICT,
                    "the app's cache store is `array` (CACHE_DRIVER), where no worker can see a pause".to_owned(),
                ));
            };
            if action == QueueAction::Pause {
                store
                    .pause(connection, queue, None)
                    .await
                    .map_err(|e| unreachable(&e))?;
                format!("{queue} paused: workers take no new job from it")
            } else {
                store
                    .resume(connection, queue)
                    .await
                    .map_err(|e| unreachable(&e))?;
                format!("{queue} resumed")
            }
        }
    };
    tracing::info!(
        who,
        action = action.name(),
        queue,
        connection,
        "console: queue action"
    );
    Ok(message)
}

//! The Overview, Queues and confirmation pages.

use std::fmt::Write;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Response, StatusCode};

use super::actions::{self, QueueAction};
use super::html::{age, enc, esc, flash, page, post_button, table};
use super::{chart, data, Ctx};
use crate::fleet::Span;
use crate::http::response::{redirect, respond, HTML};
use crate::util::clock::unix_now;

fn html(status: StatusCode, title: &str, active: &str, body: &str) -> Response<Full<Bytes>> {
    respond(status, HTML, page(title, active, body))
}

fn paused_cell(paused: Option<bool>) -> String {
    match paused {
        Some(true) => "<span class=\"tag off\">paused</span>".to_owned(),
        Some(false) => "<span class=\"tag\">running</span>".to_owned(),
        None => "<span class=\"muted\">?</span>".to_owned(),
    }
}

/// The queues' table, shared by Overview and Queues (`actions`: with the action links).
fn queue_table(rows: &[data::QueueRow], actions: bool) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut row = vec![
                format!("<a href=\"/failed?queue={}\">{}</a>", enc(&r.queue), esc(&r.queue)),
                r.ready.to_string(),
                r.delayed.to_string(),
                r.reserved.to_string(),
                r.oldest_ready_age.map_or("?".to_owned(), age),
                paused_cell(r.paused),
            ];
            if actions {
                let q = enc(&r.queue);
                let toggle = if r.paused == Some(true) { "resume" } else { "pause" };
                row.push(format!(
                    "<a class=\"btn\" href=\"/queues/{q}/{toggle}\">{}</a> <a class=\"btn\" href=\"/queues/{q}/clear\">Clear</a>",
                    if toggle == "pause" { "Pause" } else { "Resume" }
                ));
            }
            row
        })
        .collect();
    let mut headers = vec![
        "Queue",
        "#Ready",
        "#Delayed",
        "#Reserved",
        "#Oldest ready",
        "State",
    ];
    if actions {
        headers.push("Actions");
    }
    table(&headers, &cells, "queues")
}

/// `GET /`.
pub async fn overview(ctx: &Ctx<'_>) -> Response<Full<Bytes>> {
    let mut body = flash(&ctx.query);
    match data::queues(ctx).await {
        Ok(rows) => body.push_str(&queue_table(&rows, false)),
        Err(why) => {
            let _ = write!(body, "<p class=\"err\">{}</p>", esc(&why));
        }
    }
    body.push_str(
        "<p class=\"muted\">Oldest ready: how long the next job has waited (? when its payload has no createdAt, Laravel before 12).</p>",
    );
    body.push_str("<div class=\"cards\">");
    body.push_str(&history_cards(ctx, Span::Hour, 1, "per minute, last hour", "hour").await);
    body.push_str(&history_cards(ctx, Span::Day, 60, "per hour, 24 h", "day").await);
    match data::failed_rows(ctx).await {
        Ok(rows) => {
            let hours = data::failures_per_hour(&rows, ctx.state.failed.timezone(), unix_now());
            let labels: Vec<String> = hours.iter().map(|(l, _)| l.clone()).collect();
            let values: Vec<f64> = hours.iter().map(|(_, n)| *n as f64).collect();
            let total: f64 = values.iter().sum();
            let _ = write!(
                body,
                "<div class=\"card\"><h2>Failures per hour, 24 h ({total} in failed_jobs)</h2>{}</div>",
                chart::bars("failures-per-hour", &labels, &values, "failed")
            );
        }
        Err(why) => {
            let _ = write!(body, "<p class=\"err\">{}</p>", esc(&why));
        }
    }
    body.push_str("</div>");
    html(StatusCode::OK, "Overview", "/", &body)
}

/// `GET /workers`: the fleet registry.
pub async fn workers(ctx: &Ctx<'_>) -> Response<Full<Bytes>> {
    let mut body = String::new();
    match data::workers(ctx).await {
        Ok(workers) => {
            let now = unix_now() as f64;
            let in_flight: i64 = workers.iter().map(|w| w.in_flight).sum();
            let _ = write!(
                body,
                "<p id=\"fleet\">{} worker(s), {in_flight} job(s) running.</p>",
                workers.len()
            );
            let cells: Vec<Vec<String>> = workers
                .iter()
                .map(|w| {
                    let paused = if w.paused.is_empty() {
                        "<span class=\"muted\">none</span>".to_owned()
                    } else {
                        esc(&w.paused.join(", "))
                    };
                    vec![
                        esc(&w.host),
                        w.pid.to_string(),
                        esc(&w.queues.join(", ")),
                        format!("{} / {}", w.in_flight, w.concurrency),
                        paused,
                        esc(&w.connection),
                        esc(&w.version),
                        age(now - w.started_at as f64),
                        format!("{} ago", age(now - w.last_beat as f64)),
                    ]
                })
                .collect();
            let headers = [
                "Host",
                "#Pid",
                "Queues",
                "#Running",
                "Paused",
                "Connection",
                "Version",
                "#Up",
                "#Last beat",
            ];
            body.push_str(&table(&headers, &cells, "workers"));
            body.push_str(
                "<p class=\"muted\">Every <code>work</code> process announces itself every 5 s; \
                 one that stops beating leaves the list within 15 s.</p>",
            );
        }
        Err(why) => {
            let _ = write!(body, "<p class=\"err\">{}</p>", esc(&why));
        }
    }
    html(StatusCode::OK, "Workers", "/workers", &body)
}

/// The throughput and run-time charts of one span (`per` buckets folded into one bar).
async fn history_cards(ctx: &Ctx<'_>, span: Span, per: usize, title: &str, id: &str) -> String {
    let tz = ctx.state.failed.timezone();
    match data::history(ctx, span).await {
        Ok(h) => {
            let bars = data::throughput(&h.buckets, per);
            let labels: Vec<String> = bars
                .iter()
                .map(|b| data::clock_label(b.start, tz))
                .collect();
            let jobs: Vec<f64> = bars.iter().map(|b| b.jobs as f64).collect();
            let ms: Vec<f64> = bars.iter().map(|b| b.mean_ms).collect();
            let total: f64 = jobs.iter().sum();
            format!(
                "<div class=\"card\"><h2>Jobs {title} ({total} finished)</h2>{}</div>\
                 <div class=\"card\"><h2>Mean run time {title}, ms</h2>{}</div>",
                chart::bars(&format!("jobs-{id}"), &labels, &jobs, "jobs"),
                chart::bars(&format!("runtime-{id}"), &labels, &ms, "ms")
            )
        }
        Err(why) => format!("<p class=\"muted\">History: {}</p>", esc(&why)),
    }
}

/// `GET /queues`.
pub async fn queues(ctx: &Ctx<'_>) -> Response<Full<Bytes>> {
    let mut body = flash(&ctx.query);
    match data::queues(ctx).await {
        Ok(rows) => body.push_str(&queue_table(&rows, true)),
        Err(why) => {
            let _ = write!(body, "<p class=\"err\">{}</p>", esc(&why));
        }
    }
    if ctx.console.pause.is_none() {
        body.push_str("<p class=\"muted\">CACHE_DRIVER is <code>array</code>: pausing needs a shared cache store.</p>");
    }
    body.push_str(
        "<p class=\"muted\">Pausing writes Laravel's own flag (illuminate:queue:paused:connection:queue) in the app's cache store: \
         defer-worker and Laravel 12.40+ workers take no new job from the queue until it is resumed.</p>",
    );
    html(StatusCode::OK, "Queues", "/queues", &body)
}

/// The page for a queue action that does not exist (`/queues/{queue}/{action}`).
fn no_such_action() -> Response<Full<Bytes>> {
    html(
        StatusCode::NOT_FOUND,
        "Not found",
        "/queues",
        "<p>No such action.</p>",
    )
}

/// `GET /queues/{queue}/{action}`: what the action will do, and the button that does it.
pub async fn confirm_queue(ctx: &Ctx<'_>, queue: &str, action: &str) -> Response<Full<Bytes>> {
    let Some(action) = QueueAction::parse(action) else {
        return no_such_action();
    };
    let size = data::queues(ctx)
        .await
        .ok()
        .and_then(|rows| rows.into_iter().find(|r| r.queue == queue))
        .map(|r| r.size);
    let what = match action {
        QueueAction::Pause => format!("Pause queue <b>{}</b>? Workers finish their running jobs and take no new one from it until it is resumed.", esc(queue)),
        QueueAction::Resume => format!("Resume queue <b>{}</b>?", esc(queue)),
        QueueAction::Clear => format!(
            "Delete every job of queue <b>{}</b> ({} now: ready, delayed and reserved)? This cannot be undone.",
            esc(queue),
            size.map_or("?".to_owned(), |n| n.to_string())
        ),
    };
    let class = if action == QueueAction::Clear {
        "danger"
    } else {
        "primary"
    };
    let label = format!("Yes, {} {queue}", action.name());
    let body =
        format!(
        "<p>{what}</p><div class=\"actions\">{}<a class=\"btn\" href=\"/queues\">Cancel</a></div>",
        post_button(&format!("/queues/{}/{}", enc(queue), action.name()), &label, class, &[])
    );
    html(StatusCode::OK, "Confirm", "/queues", &body)
}

/// `POST /queues/{queue}/{action}`: does it, back to the Queues page with the outcome.
pub async fn queue_action(ctx: &Ctx<'_>, queue: &str, action: &str) -> Response<Full<Bytes>> {
    let Some(action) = QueueAction::parse(action) else {
        return no_such_action();
    };
    match actions::queue(ctx, queue, action).await {
        Ok(m) => redirect(&format!("/queues?msg={}", enc(&m))),
        Err((_, why)) => redirect(&format!("/queues?err={}", enc(&why))),
    }
}

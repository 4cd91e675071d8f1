//! The Failed jobs pages: the searchable list, one job decoded, and the retry / forget / retry-all
//! forms (forget and retry-all through a confirmation page).

use std::fmt::Write;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Response, StatusCode};

use super::actions;
use super::auth_reveal;
use super::form::Form;
use super::html::{enc, esc, flash, page, post_button, table};
use super::{data, Ctx};
use crate::admin::failed::{detail, search, Filter};
use crate::admin::retry::Selection;
use crate::http::auth::Role;
use crate::http::response::{redirect, respond, HTML};
use crate::http::STORE_TIMEOUT;

/// The most rows the list shows (the count says how many matched).
const MAX_LISTED: usize = 200;

fn html(status: StatusCode, title: &str, body: &str) -> Response<Full<Bytes>> {
    respond(status, HTML, page(title, "/failed", body))
}

/// The search of a query string: `queue`, `action`, `q` (exception text), `since`, `until`.
pub fn filter(query: &Form) -> Filter {
    Filter {
        queue: query.non_empty("queue"),
        action: query.non_empty("action"),
        text: query.non_empty("q"),
        since: query.non_empty("since"),
        until: query.non_empty("until"),
    }
}

fn search_form(f: &Filter) -> String {
    let v = |o: &Option<String>| esc(o.as_deref().unwrap_or_default());
    format!(
        "<form class=\"search\" method=\"get\" action=\"/failed\">\
         <label>Queue<input name=\"queue\" id=\"f-queue\" value=\"{}\"></label>\
         <label>Action<input name=\"action\" id=\"f-action\" value=\"{}\"></label>\
         <label>Exception contains<input name=\"q\" id=\"f-q\" value=\"{}\"></label>\
         <label>Since<input type=\"datetime-local\" name=\"since\" value=\"{}\"></label>\
         <label>Until<input type=\"datetime-local\" name=\"until\" value=\"{}\"></label>\
         <button type=\"submit\" id=\"search\">Search</button> <a class=\"btn\" href=\"/failed\">Reset</a></form>",
        v(&f.queue),
        v(&f.action),
        v(&f.text),
        v(&f.since),
        v(&f.until)
    )
}

/// `GET /failed`.
pub async fn list(ctx: &Ctx<'_>) -> Response<Full<Bytes>> {
    let f = filter(&ctx.query);
    let mut body = flash(&ctx.query);
    body.push_str(&search_form(&f));
    let rows = match data::failed_rows(ctx).await {
        Ok(r) => r,
        Err(why) => {
            let _ = write!(body, "<p class=\"err\">{}</p>", esc(&why));
            return html(StatusCode::SERVICE_UNAVAILABLE, "Failed jobs", &body);
        }
    };
    let found = search(&rows, &f, &ctx.console.encrypter);
    let _ = write!(
        body,
        "<p id=\"count\">{} of {} failed job(s){}.</p>",
        found.len(),
        rows.len(),
        if found.len() > MAX_LISTED {
            format!(", the newest {MAX_LISTED} shown")
        } else {
            String::new()
        }
    );
    if let (Some(queue), false) = (&f.queue, found.is_empty()) {
        let _ = write!(
            body,
            "<div class=\"actions\"><a class=\"btn\" id=\"retry-all\" href=\"/failed/retry-all?queue={}\">Retry all of {}</a></div>",
            enc(queue),
            esc(queue)
        );
    }
    let cells: Vec<Vec<String>> = found
        .iter()
        .take(MAX_LISTED)
        .map(|s| {
            vec![
                format!("<a href=\"/failed/{}\">{}</a>", enc(&s.uuid), esc(&s.uuid)),
                esc(&s.queue),
                esc(s.action.as_deref().unwrap_or(&s.class)),
                esc(&s.failed_at),
                esc(&s.error),
            ]
        })
        .collect();
    body.push_str(&table(
        &["Uuid", "Queue", "Action / class", "Failed at", "Exception"],
        &cells,
        "failed",
    ));
    html(StatusCode::OK, "Failed jobs", &body)
}

/// `GET /failed/{uuid}` (`?reveal=1`: unmasked, admin only).
pub async fn show(ctx: &Ctx<'_>, uuid: &str) -> Response<Full<Bytes>> {
    let reveal = match auth_reveal(ctx, uuid) {
        Ok(r) => r,
        Err((status, why)) => {
            return html(
                status,
                "Failed job",
                &format!("<p class=\"err\">{}</p>", esc(&why)),
            )
        }
    };
    let row = match tokio::time::timeout(STORE_TIMEOUT, ctx.state.failed.find(uuid)).await {
        Ok(Ok(Some(row))) => row,
        Ok(Ok(None)) => {
            return html(
                StatusCode::NOT_FOUND,
                "Failed job",
                &format!(
                    "<p class=\"err\">No failed job has the uuid {}.</p>",
                    esc(uuid)
                ),
            )
        }
        _ => {
            return html(
                StatusCode::SERVICE_UNAVAILABLE,
                "Failed job",
                "<p class=\"err\">Cannot read failed_jobs (see the log).</p>",
            )
        }
    };
    let doc = detail(&row, &ctx.console.encrypter, !reveal);
    let text = |k: &str| esc(doc[k].as_str().unwrap_or_default());
    let mut body = flash(&ctx.query);
    let _ = write!(
        body,
        "<dl><dt>Uuid</dt><dd id=\"uuid\">{}</dd><dt>Row</dt><dd>{}</dd><dt>Connection</dt><dd>{}</dd>\
         <dt>Queue</dt><dd id=\"queue\">{}</dd><dt>Class</dt><dd>{}</dd><dt>Failed at</dt><dd>{}</dd><dt>Attempts</dt><dd id=\"attempts\">{}</dd></dl>",
        text("uuid"),
        row.id,
        text("connection"),
        text("queue"),
        text("class"),
        text("failed_at"),
        doc["attempts"]
    );
    let path = format!("/failed/{}", enc(uuid));
    if ctx.who.role == Role::Admin {
        let _ = write!(
            body,
            "<div class=\"actions\">{}<a class=\"btn\" href=\"{path}/forget\">Forget…</a>{}</div>",
            post_button(&format!("{path}/retry"), "Retry", "primary", &[]),
            if reveal {
                format!("<a class=\"btn\" href=\"{path}\">Mask again</a>")
            } else {
                format!("<a class=\"btn\" id=\"reveal\" href=\"{path}?reveal=1\">Reveal personal data</a>")
            }
        );
    }
    let shown = if reveal {
        "unmasked"
    } else {
        "e-mail addresses, phone numbers and tokens masked"
    };
    if let Some(err) = doc["payload_error"].as_str() {
        let _ = write!(body, "<h2>Payload (cannot be decoded: {})</h2>", esc(err));
    } else {
        let _ = write!(body, "<h2>Payload, decoded ({shown})</h2>");
    }
    let payload = serde_json::to_string_pretty(&doc["payload"]).unwrap_or_default();
    let _ = write!(
        body,
        "<pre id=\"payload\">{}</pre><h2>Exception</h2><pre id=\"exception\">{}</pre>",
        esc(&payload),
        text("exception")
    );
    html(StatusCode::OK, "Failed job", &body)
}

/// `GET /failed/{uuid}/forget`: the confirmation.
pub async fn confirm_forget(_ctx: &Ctx<'_>, uuid: &str) -> Response<Full<Bytes>> {
    let path = format!("/failed/{}", enc(uuid));
    let body = format!(
        "<p>Delete failed job <b>{}</b>? It will not be retried.</p><div class=\"actions\">{}<a class=\"btn\" href=\"{path}\">Cancel</a></div>",
        esc(uuid),
        post_button(&format!("{path}/forget"), "Yes, forget it", "danger", &[])
    );
    html(StatusCode::OK, "Confirm", &body)
}

/// `POST /failed/{uuid}/retry|forget`.
pub async fn action(ctx: &Ctx<'_>, uuid: &str, action: &str) -> Response<Full<Bytes>> {
    let result = match action {
        "retry" => {
            actions::retry(
                ctx,
                Selection {
                    ids: vec![uuid.to_owned()],
                    ..Selection::default()
                },
            )
            .await
        }
        "forget" => actions::forget(ctx, uuid).await,
        _ => return html(StatusCode::NOT_FOUND, "Not found", "<p>No such action.</p>"),
    };
    match result {
        Ok(m) => redirect(&format!("/failed?msg={}", enc(&m))),
        Err((_, why)) => redirect(&format!("/failed/{}?err={}", enc(uuid), enc(&why))),
    }
}

/// `GET /failed/retry-all?queue=Q`: the confirmation.
pub async fn confirm_retry_all(ctx: &Ctx<'_>) -> Response<Full<Bytes>> {
    let Some(queue) = ctx.query.non_empty("queue") else {
        return redirect("/failed");
    };
    let count = data::failed_rows(ctx)
        .await
        .map(|rows| {
            rows.iter()
                .filter(|r| r.job.queue == queue)
                .count()
                .to_string()
        })
        .unwrap_or_else(|_| "?".to_owned());
    let body = format!(
        "<p>Push every failed job of queue <b>{}</b> ({count}) back onto its queue?</p><div class=\"actions\">{}<a class=\"btn\" href=\"/failed?queue={}\">Cancel</a></div>",
        esc(&queue),
        post_button("/failed/retry-all", &format!("Yes, retry all of {queue}"), "primary", &[("queue", &queue)]),
        enc(&queue)
    );
    html(StatusCode::OK, "Confirm", &body)
}

/// `POST /failed/retry-all` (form field `queue`).
pub async fn retry_all(ctx: &Ctx<'_>, form: &Form) -> Response<Full<Bytes>> {
    let Some(queue) = form.non_empty("queue") else {
        return redirect("/failed?err=no+queue+given");
    };
    let selection = Selection {
        queue: Some(queue.clone()),
        ..Selection::default()
    };
    match actions::retry(ctx, selection).await {
        Ok(m) => redirect(&format!("/failed?msg={}", enc(&m))),
        Err((_, why)) => redirect(&format!("/failed?queue={}&err={}", enc(&queue), enc(&why))),
    }
}

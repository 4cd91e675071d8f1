//! The JSON API under `/api/` (the table in [`super`]). Same data and actions as the pages.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Response, StatusCode};
use serde_json::{json, Value as Json};

use super::actions::{self, QueueAction};
use super::auth_reveal;
use super::{data, Ctx};
use crate::admin::failed::{detail, search};
use crate::admin::retry::Selection;
use crate::fleet::Span;
use crate::http::response::{respond, JSON};
use crate::http::STORE_TIMEOUT;

/// `segments`: the path after `/api/`.
pub async fn route(ctx: &Ctx<'_>, method: &Method, segments: &[&str]) -> Response<Full<Bytes>> {
    let post = method == Method::POST;
    match (post, segments) {
        (false, ["queues"]) => ok_or(data::queues(ctx).await.map(|rows| json!(rows))),
        (false, ["failed"]) => ok_or(data::failed_rows(ctx).await.map(|rows| {
            json!(search(
                &rows,
                &super::failed_pages::filter(&ctx.query),
                &ctx.console.encrypter
            ))
        })),
        (false, ["failed", uuid]) => one(ctx, uuid).await,
        (false, ["workers"]) => ok_or(data::workers(ctx).await.map(|w| json!(w))),
        (false, ["history"]) => {
            let span = ctx.query.get("span").unwrap_or("hour");
            match span.parse::<Span>() {
                Ok(span) => ok_or(data::history(ctx, span).await.map(|h| json!(h))),
                Err(why) => body(StatusCode::BAD_REQUEST, json!({ "error": why })),
            }
        }
        (true, ["failed", uuid, "retry"]) => done(
            actions::retry(
                ctx,
                Selection {
                    ids: vec![(*uuid).to_owned()],
                    ..Selection::default()
                },
            )
            .await,
        ),
        (true, ["failed", uuid, "forget"]) => done(actions::forget(ctx, uuid).await),
        (true, ["queues", queue, action @ ("pause" | "resume")]) => {
            match QueueAction::parse(action) {
                Some(a) => done(actions::queue(ctx, queue, a).await),
                None => not_found(),
            }
        }
        _ => not_found(),
    }
}

async fn one(ctx: &Ctx<'_>, uuid: &str) -> Response<Full<Bytes>> {
    let reveal = match auth_reveal(ctx, uuid) {
        Ok(r) => r,
        Err((status, why)) => return body(status, json!({ "error": why })),
    };
    match tokio::time::timeout(STORE_TIMEOUT, ctx.state.failed.find(uuid)).await {
        Ok(Ok(Some(row))) => body(
            StatusCode::OK,
            detail(&row, &ctx.console.encrypter, !reveal),
        ),
        Ok(Ok(None)) => body(
            StatusCode::NOT_FOUND,
            json!({ "error": format!("no failed job has the uuid {uuid}") }),
        ),
        Ok(Err(error)) => {
            tracing::warn!(%error, "console: cannot read failed_jobs");
            body(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "error": "cannot read failed_jobs (see the log)" }),
            )
        }
        Err(_) => body(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "error": "the failed_jobs database did not answer in time" }),
        ),
    }
}

fn ok_or(result: Result<Json, String>) -> Response<Full<Bytes>> {
    match result {
        Ok(v) => body(StatusCode::OK, v),
        Err(why) => body(StatusCode::SERVICE_UNAVAILABLE, json!({ "error": why })),
    }
}

fn done(result: Result<String, actions::Failure>) -> Response<Full<Bytes>> {
    match result {
        Ok(message) => body(StatusCode::OK, json!({ "ok": true, "message": message })),
        Err((status, why)) => body(status, json!({ "error": why })),
    }
}

fn not_found() -> Response<Full<Bytes>> {
    body(
        StatusCode::NOT_FOUND,
        json!({ "error": "no such API endpoint" }),
    )
}

fn body(status: StatusCode, value: Json) -> Response<Full<Bytes>> {
    respond(status, JSON, value.to_string())
}

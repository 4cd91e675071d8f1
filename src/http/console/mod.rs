//! The operator console: server-rendered pages (Overview, Workers, Failed jobs, Queues; no script, SVG
//! charts drawn here) and the JSON API under `/api/`, on the server of `work --http` or `console --http`.
//!
//! | page | what |
//! | --- | --- |
//! | `GET /` | per queue ready / delayed / reserved, the oldest ready job's age, paused; jobs and mean run time per minute (last hour) and per hour (24 h) from the fleet history; failures per hour (24 h, from failed_jobs) |
//! | `GET /workers` | the fleet registry: every `work` process, its queues, jobs running, paused queues, last beat |
//! | `GET /failed?queue=&action=&q=&since=&until=` | failed jobs, searched; `GET /failed/{uuid}` one job decoded (`?reveal=1`: unmasked, admin) |
//! | `GET /queues` | pause, resume, clear, each through a confirmation page (`GET /queues/{queue}/{action}`) |
//!
//! | API | answer |
//! | --- | --- |
//! | `GET /api/queues` | `[{queue, ready, delayed, reserved, size, oldest_ready_age, paused}]` |
//! | `GET /api/workers` | the fleet registry, a list of `WorkerInfo` |
//! | `GET /api/history?span=hour\|day\|week` | the fleet's `History` (minute buckets for an hour or a day, hour buckets for a week) |
//! | `GET /api/failed` (same query as the page), `GET /api/failed/{uuid}` | summaries; one job decoded and masked (`?reveal=1`, admin: unmasked) |
//! | `POST /api/failed/{uuid}/retry`, `…/forget`, `/api/queues/{queue}/pause`, `…/resume` | `{"ok":true,"message":…}`, or `{"error":…}` with 4xx/5xx |
//!
//! Access is [`super::auth`]'s: a read token sees everything but may not POST; every POST must come
//! from the console's own origin. Each action is logged with who did it (`admin`, `read`, `local`)
//! and what, never a token or a payload. Actions are [`crate::admin`]'s, as the CLI runs them.

mod actions;
mod api;
mod chart;
mod data;
mod failed_pages;
mod form;
mod html;
mod pages;

use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, SET_COOKIE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use super::auth::{self, Refused, Role, Tokens, Who};
use super::response::{redirect, respond, HTML, JSON};
use super::HttpState;
use crate::admin::retry::{QueueOpener, RetryOptions};
use crate::laravel::cache_store::CacheStore;
use crate::laravel::encrypter::Encrypter;

/// What the console needs beyond the probes' state.
pub struct Console {
    /// Who may do what.
    pub tokens: Tokens,
    /// APP_KEY, to decode encrypted commands of failed jobs.
    pub encrypter: Encrypter,
    /// Opens the connection a retried row names (the same code as `failed retry`).
    pub opener: Arc<dyn QueueOpener>,
    /// Which failed_jobs connections mean our Redis.
    pub retry: RetryOptions,
    /// The queue connection's name (`redis`, or a database connection): pause flags are per connection.
    pub connection: String,
    /// The app's cache store, where pause flags live; None with `CACHE_DRIVER=array` (no pausing).
    pub pause: Option<CacheStore>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("tokens", &self.tokens)
            .field("connection", &self.connection)
            .finish_non_exhaustive()
    }
}

/// One console request: the state, who sent it, and its parsed query.
pub struct Ctx<'a> {
    pub state: &'a HttpState,
    pub console: &'a Console,
    pub who: Who,
    pub query: form::Form,
}

/// Routes a request to the console (the probes' paths never come here).
pub async fn route(state: &HttpState, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let Some(console) = state.console.as_deref() else {
        return respond(StatusCode::NOT_FOUND, HTML, "not found\n");
    };
    let path = req.uri().path().to_owned();
    let api = path.starts_with("/api/");
    let method = req.method().clone();
    if path == "/login" {
        return login(console, req).await;
    }
    let who = match auth::identify(&console.tokens, req.headers()) {
        Ok(who) => who,
        Err(refused) => return refuse(refused, api),
    };
    if method == Method::POST {
        if !auth::same_origin(req.headers(), &who) {
            tracing::warn!(who = who.name(), path = %path, "console: cross-site POST refused");
            return error(
                api,
                StatusCode::FORBIDDEN,
                "cross-site request refused: the Origin is not this console's",
            );
        }
        if who.role == Role::Read {
            tracing::warn!(who = who.name(), path = %path, "console: POST with the read-only token refused");
            return error(
                api,
                StatusCode::FORBIDDEN,
                "the read-only token cannot change anything",
            );
        }
    } else if method != Method::GET && method != Method::HEAD {
        return error(api, StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    let query = form::Form::parse(req.uri().query().unwrap_or_default());
    let body = if method == Method::POST {
        match form::read_body(req).await {
            Ok(b) => b,
            Err(why) => return error(api, StatusCode::BAD_REQUEST, why),
        }
    } else {
        form::Form::default()
    };
    let ctx = Ctx {
        state,
        console,
        who,
        query,
    };
    let decoded: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|s| crate::util::url::decode(s).unwrap_or_else(|_| s.to_owned()))
        .collect();
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    if api {
        return api::route(&ctx, &method, &segments[1..]).await;
    }
    match (method == Method::POST, segments.as_slice()) {
        (false, [""]) => pages::overview(&ctx).await,
        (false, ["workers"]) => pages::workers(&ctx).await,
        (false, ["queues"]) => pages::queues(&ctx).await,
        (false, ["queues", queue, action]) => pages::confirm_queue(&ctx, queue, action).await,
        (true, ["queues", queue, action]) => pages::queue_action(&ctx, queue, action).await,
        (false, ["failed"]) => failed_pages::list(&ctx).await,
        (false, ["failed", "retry-all"]) => failed_pages::confirm_retry_all(&ctx).await,
        (true, ["failed", "retry-all"]) => failed_pages::retry_all(&ctx, &body).await,
        (false, ["failed", uuid]) => failed_pages::show(&ctx, uuid).await,
        (false, ["failed", uuid, "forget"]) => failed_pages::confirm_forget(&ctx, uuid).await,
        (true, ["failed", uuid, action]) => failed_pages::action(&ctx, uuid, action).await,
        (true, ["logout"]) => logout(),
        _ => respond(
            StatusCode::NOT_FOUND,
            HTML,
            html::page("Not found", "", "<p>No such page.</p>"),
        ),
    }
}

/// Whether a failed job is shown unmasked (`?reveal=1`): only to an admin, and logged.
pub fn auth_reveal(ctx: &Ctx<'_>, uuid: &str) -> Result<bool, (StatusCode, String)> {
    if ctx.query.get("reveal") != Some("1") {
        return Ok(false);
    }
    if ctx.who.role != Role::Admin {
        return Err((
            StatusCode::FORBIDDEN,
            "only the admin token may reveal personal data".to_owned(),
        ));
    }
    tracing::info!(
        who = ctx.who.name(),
        action = "reveal",
        uuid,
        "console: failed job shown unmasked"
    );
    Ok(true)
}

/// 401 (the login page for a browser) or 403.
fn refuse(refused: Refused, api: bool) -> Response<Full<Bytes>> {
    match refused {
        Refused::ForeignHost => error(
            api,
            StatusCode::FORBIDDEN,
            "this console has no token, so it answers loopback host names only",
        ),
        Refused::Unauthenticated if api => {
            error(api, StatusCode::UNAUTHORIZED, "a valid token is needed")
        }
        Refused::Unauthenticated => respond(StatusCode::UNAUTHORIZED, HTML, html::login_page(None)),
    }
}

/// An error as JSON (`{"error":…}`) for the API, as a page otherwise.
fn error(api: bool, status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    if api {
        respond(status, JSON, json!({ "error": message }).to_string())
    } else {
        let body = format!("<p class=\"err\">{}</p>", html::esc(message));
        respond(
            status,
            HTML,
            html::page(status.canonical_reason().unwrap_or("Error"), "", &body),
        )
    }
}

/// `GET /login`: the form; `POST /login`: sets the cookie for a right token.
async fn login(console: &Console, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::POST {
        return respond(StatusCode::OK, HTML, html::login_page(None));
    }
    let who_for_origin = Who {
        role: Role::Read,
        local: false,
        bearer: false,
    };
    if !auth::same_origin(req.headers(), &who_for_origin) {
        return error(
            false,
            StatusCode::FORBIDDEN,
            "cross-site request refused: the Origin is not this console's",
        );
    }
    let body = match form::read_body(req).await {
        Ok(b) => b,
        Err(why) => return error(false, StatusCode::BAD_REQUEST, why),
    };
    let token = body.get("token").unwrap_or_default();
    match console.tokens.login(token) {
        Some(cookie) => {
            tracing::info!("console: login");
            let mut r = redirect("/");
            let value = format!(
                "{}={cookie}; Path=/; HttpOnly; SameSite=Strict",
                auth::COOKIE_NAME
            );
            if let Ok(v) = HeaderValue::from_str(&value) {
                r.headers_mut().insert(SET_COOKIE, v);
            }
            r
        }
        None => {
            tracing::warn!("console: login with a wrong token");
            respond(
                StatusCode::UNAUTHORIZED,
                HTML,
                html::login_page(Some("Wrong token.")),
            )
        }
    }
}

fn logout() -> Response<Full<Bytes>> {
    let mut r = redirect("/login");
    let value = format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        auth::COOKIE_NAME
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        r.headers_mut().insert(SET_COOKIE, v);
    }
    r
}

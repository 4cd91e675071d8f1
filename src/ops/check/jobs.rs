//! What the worker will do with the jobs: decrypt an encrypted one with APP_KEY (tried on the jobs
//! waiting now, when one is encrypted), give up on a running job before `retry_after` hands it to
//! another worker, and leave foreign jobs on a hand-off queue that a PHP worker must drain.
//!
//! Whether a PHP worker runs cannot be seen from Redis (phpredis names no client); the evidence used is
//! the hand-off queue itself: jobs waiting with none reserved means nobody takes them.

use super::model::Checks;
use super::redis::Reached;
use crate::config::Settings;
use crate::laravel::payload::Payload;
use crate::ops::connect;
use crate::worker::WorkerOptions;

pub(super) async fn check(
    c: &mut Checks,
    settings: &Settings,
    options: &WorkerOptions,
    redis: Option<&Reached>,
) {
    app_key(c, settings, options, redis);
    timeouts(c, options);
    if let Some(r) = redis {
        handoff(c, options, r).await;
    }
}

fn app_key(c: &mut Checks, settings: &Settings, options: &WorkerOptions, redis: Option<&Reached>) {
    let encrypter = match connect::encrypter(settings) {
        Ok(e) => e,
        Err(e) => {
            let fix = c.set(
                "APP_KEY",
                "to the app's key (base64:…, as in the app's .env)",
            );
            c.fail("app_key", format!("{e:#}"), fix);
            return;
        }
    };
    let encrypted = redis
        .into_iter()
        .flat_map(|r| &r.samples)
        .find_map(|(q, raw)| {
            let p = Payload::parse(raw).ok()?;
            let command = p.envelope().data.as_ref()?.command.as_deref()?;
            (!command.starts_with("O:")).then_some((q, p))
        });
    let Some((queue, payload)) = encrypted else {
        let key = if encrypter.has_key() { "set" } else { "unset" };
        c.pass(
            "app_key",
            format!(
                "APP_KEY {key}; no encrypted job waiting at the head of the queues to try it on"
            ),
        );
        return;
    };
    let uuid = payload.uuid().unwrap_or("(no uuid)").to_owned();
    match payload.command(&encrypter, &options.unserialize) {
        Ok(_) => c.pass(
            "app_key",
            format!("APP_KEY decrypts the encrypted job {uuid} on queue {queue}"),
        ),
        Err(e) => {
            let fix = c.set(
                "APP_KEY",
                "to the key the app encrypts with (or add the old one to APP_PREVIOUS_KEYS)",
            );
            c.fail(
                "app_key",
                format!("the encrypted job {uuid} on queue {queue} cannot be read: {e}"),
                fix,
            );
        }
    }
}

/// A job still running when its reservation expires is taken again by another worker and runs twice.
fn timeouts(c: &mut Checks, options: &WorkerOptions) {
    let timeout = options.timeout;
    for q in &options.queues {
        let retry_after = options
            .retry_after_per_queue
            .get(q)
            .copied()
            .unwrap_or(options.retry_after);
        let name = format!("retry_after {q}");
        if timeout == 0 {
            c.warn(
                &name,
                format!(
                    "--timeout 0 (none): a job running past retry_after {retry_after} s runs twice"
                ),
                Some(format!("give --timeout a value below {retry_after}")),
            );
        } else if timeout >= retry_after {
            c.fail(
                &name,
                format!(
                    "--timeout {timeout} s ≥ retry_after {retry_after} s: a job still running at {retry_after} s \
                     is taken by another worker and runs twice"
                ),
                format!(
                    "lower --timeout (or [worker] timeout) below {retry_after}, or raise \
                     REDIS_QUEUE_RETRY_AFTER / --retry-after / [queues.{q}] retry_after"
                ),
            );
        } else {
            c.pass(
                &name,
                format!("--timeout {timeout} s < retry_after {retry_after} s"),
            );
        }
    }
}

/// Each hand-off queue: empty, worked (jobs reserved), or waiting with nobody taking its jobs.
async fn handoff(c: &mut Checks, options: &WorkerOptions, r: &Reached) {
    let mut seen: Vec<String> = Vec::new();
    for q in &options.queues {
        let handoff = options.handoff_queue_for(q);
        if seen.contains(&handoff) {
            continue;
        }
        seen.push(handoff.clone());
        let name = format!("handoff {handoff}");
        let key = r.queue.key(&handoff);
        let command = format!("`php artisan queue:work --queue={handoff}`");
        match r.queue.stats(&handoff).await {
            Err(e) => c.fail(&name, e.to_string(), "see the error"),
            Ok(s) if s.ready > 0 && s.reserved == 0 => c.warn(
                &name,
                format!(
                    "{key}: {} job(s) wait and none is reserved: no PHP worker seems to take them, so \
                     foreign jobs (other classes, forward actions) would wait",
                    s.ready
                ),
                Some(format!("run {command} beside defer-worker")),
            ),
            Ok(s) if s.reserved > 0 => c.pass(
                &name,
                format!("{key}: {} reserved: a worker is taking its jobs", s.reserved),
            ),
            Ok(_) => c.pass(
                &name,
                format!(
                    "{key}: empty; whether a PHP worker ({command}) runs cannot be seen from Redis"
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::check::Status;

    #[test]
    fn each_queue_compares_the_timeout_with_its_own_retry_after() {
        let mut options = WorkerOptions {
            queues: vec!["whatsapp".into(), "default".into()],
            timeout: 60,
            retry_after: 90,
            ..WorkerOptions::default()
        };
        options.retry_after_per_queue.insert("whatsapp".into(), 30);
        let mut c = Checks::default();
        timeouts(&mut c, &options);
        let status: Vec<(&str, Status)> = c
            .lines
            .iter()
            .map(|l| (l.name.as_str(), l.status))
            .collect();
        assert_eq!(
            status,
            [
                ("retry_after whatsapp", Status::Fail),
                ("retry_after default", Status::Pass)
            ]
        );
        assert!(c.lines[0]
            .fix
            .as_deref()
            .unwrap()
            .contains("[queues.whatsapp] retry_after"));
        options.timeout = 0;
        let mut c = Checks::default();
        timeouts(&mut c, &options);
        assert!(c.lines.iter().all(|l| l.status == Status::Warn));
    }
}

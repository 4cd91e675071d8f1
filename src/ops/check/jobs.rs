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
use crate::worker::lease::Lease;
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

/// `retry_after` against `--timeout`. This worker's lease extends a running job's reservation
/// (`worker::lease`), so a `--timeout` not below `retry_after` does not make it run twice; PHP workers on
/// the same queue have no lease, and a `retry_after` of 1 s can run out before the first extension.
fn timeouts(c: &mut Checks, options: &WorkerOptions) {
    let timeout = options.timeout;
    for q in &options.queues {
        let retry_after = options.retry_after_for(q);
        // One decimal, as work's start-up note prints it (3.3 s for a retry_after of 10).
        let every = (Lease::every(retry_after).as_secs_f64() * 10.0).round() / 10.0;
        let name = format!("retry_after {q}");
        let shown = if timeout == 0 {
            "--timeout 0 (none)".to_owned()
        } else {
            format!("--timeout {timeout} s")
        };
        if retry_after < 2 {
            c.warn(
                &name,
                format!(
                    "retry_after {retry_after} s: a reservation of whole seconds can run out before \
                     the lease extends it, and another worker takes the job back"
                ),
                Some(format!(
                    "raise REDIS_QUEUE_RETRY_AFTER / --retry-after / [queues.{q}] retry_after to 2 or more"
                )),
            );
        } else if timeout >= retry_after {
            c.warn(
                &name,
                format!(
                    "{shown} is not below retry_after {retry_after} s: this worker's lease extends a running \
                     job's reservation every {every} s, but a PHP worker on the same queue has no lease"
                ),
                Some(format!(
                    "keep retry_after above the PHP workers' --timeout, or give --timeout a value below \
                     {retry_after}"
                )),
            );
        } else {
            c.pass(
                &name,
                format!(
                    "{shown} < retry_after {retry_after} s; a longer job's reservation is extended every \
                     {every} s"
                ),
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
            queues: vec!["whatsapp".into(), "default".into(), "fast".into()],
            timeout: 60,
            retry_after: 90,
            ..WorkerOptions::default()
        };
        options.retry_after_per_queue.insert("whatsapp".into(), 30);
        options.retry_after_per_queue.insert("fast".into(), 1);
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
                ("retry_after whatsapp", Status::Warn),
                ("retry_after default", Status::Pass),
                ("retry_after fast", Status::Warn)
            ]
        );
        assert!(c.lines[0].detail.contains("every 10 s"), "{:?}", c.lines[0]);
        assert!(c.lines[2]
            .fix
            .as_deref()
            .unwrap()
            .contains("[queues.fast] retry_after to 2"));
        assert!(
            c.passed(),
            "leases cover a long timeout: a warning, not a failure"
        );
    }
}

//! The console in a real browser: headless Chromium driven over WebDriver (tests/webdriver.rs) signs in
//! with the login form, loads every page, finds the queue names and counts Redis holds, retries a
//! failed job through its page and sees it leave failed_jobs and run on the worker, pauses a queue
//! through the confirmation page; the read-only token's POST and another site's form are refused.

use std::io::{Read, Write};
use std::time::Duration;

use crate::console::{paused, seeded_world, start_console, ADMIN, LOG_ALL, READ};
use crate::webdriver::Browser;

/// Serves one HTML page on a loopback port of its own (another origin than the console's).
fn other_site(html: String) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{html}",
                html.len()
            );
        }
    });
    port
}

async fn sign_in(b: &Browser, url: &str, token: &str) {
    b.goto(url).await;
    b.find("#token").await.type_text(token).await;
    b.find("#login").await.click().await;
    // The sign-in answers with a redirect: wait for it to land before the next step navigates.
    b.gone("#token").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_sees_the_queues_and_retries_a_failed_job_that_then_runs() {
    let (w, uuids) = seeded_world(1, 4).await;
    let c = start_console(
        &w,
        "emails,analytics",
        &[
            ("DEFER_WORKER_CONSOLE_TOKEN", ADMIN),
            ("DEFER_WORKER_CONSOLE_READ_TOKEN", READ),
        ],
    );
    let b = Browser::start(1280, 800).await;

    // Not signed in: the login form. Signed in: the overview with the queues Redis holds.
    sign_in(&b, &c.url("/"), ADMIN).await;
    assert_eq!(b.current_url().await, c.url("/"));
    let rows = b.texts("#queues tbody tr").await;
    assert!(
        rows.iter().any(|r| r.starts_with("analytics 4 0 0")),
        "{rows:?}"
    );
    assert!(
        rows.iter().any(|r| r.starts_with("emails 0 0 0")),
        "{rows:?}"
    );
    let overview = b.source().await;
    for chart in [
        "failures-per-hour",
        "jobs-hour",
        "runtime-hour",
        "jobs-day",
        "runtime-day",
    ] {
        assert!(
            overview.contains(&format!("id=\"{chart}\"")),
            "no {chart} chart"
        );
    }
    for (path, title) in [
        ("/workers", "Workers"),
        ("/queues", "Queues"),
        ("/failed", "Failed jobs"),
    ] {
        b.goto(&c.url(path)).await;
        assert_eq!(b.find("h1").await.text().await, title);
    }

    // The failed job: listed, opened, masked, retried.
    let uuid = &uuids[0];
    assert!(b.find("#count").await.text().await.starts_with("1 of 1"));
    b.find(&format!("a[href='/failed/{uuid}']"))
        .await
        .click()
        .await;
    let payload = b.find("#payload").await.text().await;
    assert!(
        payload.contains("email_notification") && payload.contains("j***@***"),
        "{payload}"
    );
    assert!(
        !b.source().await.contains("jane@shop.io"),
        "masked on the page"
    );
    b.find(&format!("form[action='/failed/{uuid}/retry'] button"))
        .await
        .click()
        .await;
    let msg = b.find("#msg").await.text().await;
    assert!(msg.contains("1 failed job(s) pushed back"), "{msg}");
    assert!(w.failed_rows().await.is_empty(), "the row left failed_jobs");
    let mut worker = w.worker(&["--queue=emails", "--stop-when-empty"], LOG_ALL);
    assert!(worker.wait(Duration::from_secs(30)).success());
    assert_eq!(worker.uuids("done"), vec![uuid.clone()], "and it ran");

    // Pause through the confirmation page.
    b.goto(&c.url("/queues")).await;
    b.find("a[href='/queues/analytics/pause']")
        .await
        .click()
        .await;
    b.find("form[action='/queues/analytics/pause'] button")
        .await
        .click()
        .await;
    assert!(b
        .find("#msg")
        .await
        .text()
        .await
        .contains("analytics paused"));
    assert!(paused(&w, "analytics").await);

    // Another site's form posting to the console (the browser sends its Origin, and no
    // SameSite=Strict cookie): refused, the queue stays paused.
    let form = format!(
        "<form method=post action=\"{}\"><button id=go>go</button></form>",
        c.url("/queues/analytics/resume")
    );
    let port = other_site(form);
    b.goto(&format!("http://127.0.0.1:{port}/")).await;
    b.find("#go").await.click().await;
    let refused = b.find("h1").await.text().await;
    assert!(refused == "Sign in" || refused == "Forbidden", "{refused}");
    assert!(
        paused(&w, "analytics").await,
        "the cross-site POST changed nothing"
    );
    b.quit().await;

    // The read-only token sees the pages but cannot act.
    let r = Browser::start(390, 844).await;
    sign_in(&r, &c.url("/queues"), READ).await;
    r.goto(&c.url("/queues/analytics/resume")).await;
    r.find("form[action='/queues/analytics/resume'] button")
        .await
        .click()
        .await;
    let err = r.find("p.err").await.text().await;
    assert!(
        err.contains("read-only token cannot change anything"),
        "{err}"
    );
    assert!(paused(&w, "analytics").await);
    r.quit().await;
}

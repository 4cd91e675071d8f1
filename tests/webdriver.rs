//! A small WebDriver client (W3C protocol, JSON over HTTP with reqwest) for headless Chromium through
//! chromedriver, which [`Browser::start`] launches on a free loopback port. Only what the console's
//! browser tests use: open a URL, find an element by CSS selector, click it, type into it, read its
//! text and the page's source, screenshots.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver and one headless Chromium session. Dropping it ends both.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
}

fn chromium() -> &'static str {
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("Chromium is not installed: apt-get install -y chromium chromium-driver (.ci/run does)")
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a `width`×`height` window.
    pub async fn start(width: u32, height: u32) -> Browser {
        let port = crate::console::free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver (apt-get install -y chromium-driver)");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = http.get(format!("{base}/status")).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer on {base}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--no-first-run", "--hide-scrollbars", format!("--window-size={width},{height}")]
            }
        }}});
        let r: Json = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session JSON");
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_owned();
        Browser {
            driver,
            base,
            session,
            http,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Json>) -> Json {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r: Json = req
            .send()
            .await
            .expect("webdriver call")
            .json()
            .await
            .expect("webdriver JSON");
        if r["value"].get("error").is_some() {
            panic!("webdriver {path}: {}", r["value"]);
        }
        r["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub async fn current_url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The first element matching `css`; panics (with the page) when there is none within 5 s. A
    /// find sent while a form's answer is loading can fail at once (not only wait), so it is retried.
    pub async fn find(&self, css: &str) -> Element<'_> {
        let url = format!("{}/session/{}/element", self.base, self.session);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let r: Json = self
                .http
                .post(&url)
                .json(&json!({"using": "css selector", "value": css}))
                .send()
                .await
                .expect("find")
                .json()
                .await
                .expect("find JSON");
            if let Some(id) = r["value"][ELEMENT].as_str() {
                return Element {
                    browser: self,
                    id: id.to_owned(),
                };
            }
            if Instant::now() > deadline {
                self.fail(&format!("no element {css:?}")).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until no element matches `css` (a page being left: the next step must not race its
    /// navigation); panics (with the page) when one still does after 5 s.
    pub async fn gone(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.elements(css).await.is_empty() {
            if Instant::now() > deadline {
                self.fail(&format!("{css:?} still")).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The ids of every element matching `css`, now.
    async fn elements(&self, css: &str) -> Vec<String> {
        let found = self
            .call(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e[ELEMENT].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Panics with `what`, the page's address and its source.
    async fn fail(&self, what: &str) -> ! {
        panic!(
            "{what} on {}:\n{}",
            self.current_url().await,
            self.source().await
        );
    }

    /// The text of every element matching `css`.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let mut out = Vec::new();
        for id in self.elements(css).await {
            out.push(Element { browser: self, id }.text().await);
        }
        out
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let b64 = self.call(reqwest::Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .expect("PNG")
    }
}

impl Browser {
    /// Ends the session (Chromium exits) and chromedriver.
    pub async fn quit(self) {
        let url = format!("{}/session/{}", self.base, self.session);
        let _ = self.http.delete(url).send().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// One element of the current page.
pub struct Element<'b> {
    browser: &'b Browser,
    id: String,
}

impl Element<'_> {
    pub async fn click(&self) {
        let path = format!("/element/{}/click", self.id);
        self.browser
            .call(reqwest::Method::POST, &path, Some(json!({})))
            .await;
    }

    pub async fn type_text(&self, text: &str) {
        let path = format!("/element/{}/value", self.id);
        self.browser
            .call(reqwest::Method::POST, &path, Some(json!({ "text": text })))
            .await;
    }

    pub async fn text(&self) -> String {
        let path = format!("/element/{}/text", self.id);
        self.browser
            .call(reqwest::Method::GET, &path, None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

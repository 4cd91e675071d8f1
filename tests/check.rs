//! `defer-worker check` against the real services of the test suite: Redis (an ACL user for the
//! password case), MariaDB loaded with `fixtures/app`, the file cache store, the SMTP server process
//! (`tests/smtp/server.py`, STARTTLS + AUTH, a CA made for the test), and a WhatsApp Cloud API stub
//! answering as Meta does. With the test settings every line is ✓ and the exit status 0; each fault
//! (wrong Redis password, wrong REDIS_PREFIX with jobs under the app's, no failed_jobs table, SMTP AUTH
//! refused, the token rejected with Meta's 190, an expired Graph API version, a wrong APP_KEY) fails
//! exactly its own line, naming the key to change, and the exit status is 1. No mail is sent and no
//! secret is printed.

use std::collections::HashMap;
use std::process::Stdio;

use serde_json::{json, Value as Json};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use defer_worker::laravel::database::{Db, DbConfig};

use crate::actions_email::{make_certs, Certs, Smtp};
use crate::actions_whatsapp::meta_error;
use crate::support::{fixture, repo, DbKind, World};

const TOKEN: &str = "EAAGcheck-token-0123456789";
const PHONE_ID: &str = "106540352242922";
const MAIL_USER: &str = "mailer";
const MAIL_PASSWORD: &str = "s3cret-pass";
const ENCRYPTED: &str = "encrypted_aes_256_gcm.json";

/// One test's world, SMTP server and Cloud API stub.
struct Stage {
    world: World,
    queue: String,
    smtp: Smtp,
    api: MockServer,
    _certs: Certs,
    config: std::path::PathBuf,
}

impl Stage {
    async fn new() -> Stage {
        let world = World::new(DbKind::MySql);
        let out = std::process::Command::new(repo().join("fixtures/app/load.sh"))
            .args(["mysql", &world.db_name])
            .output()
            .expect("run fixtures/app/load.sh");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let certs = make_certs(world.dir.path());
        let smtp = Smtp::start(world.dir.path(), &certs, "starttls", &[]);
        let api = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(format!("/v25.0/{PHONE_ID}")))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .and(query_param(
                "fields",
                "display_phone_number,verified_name,quality_rating",
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "display_phone_number": "+225 07 07 00 00 01",
                "verified_name": "RestroSaaS Test",
                "quality_rating": "GREEN",
                "id": PHONE_ID,
            })))
            .with_priority(2)
            .mount(&api)
            .await;
        let config = world.dir.path().join("check.toml");
        std::fs::write(
            &config,
            format!(
                "[actions.email_notification]\nkind = \"email\"\nca_file = \"{}\"\n",
                certs.ca.display()
            ),
        )
        .unwrap();
        // A queue name no other test uses: the prefix scan looks at every prefix on the server.
        let queue = format!("check_{}", &world.prefix[4..16]);
        Stage {
            world,
            queue,
            smtp,
            api,
            _certs: certs,
            config,
        }
    }

    fn env(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let storage = self.world.dir.path().join("storage");
        let mut env: HashMap<String, String> = self.world.env().into_iter().collect();
        let port = self.smtp.port.to_string();
        let api_url = format!("{}/v25.0", self.api.uri());
        for (k, v) in [
            ("MAIL_HOST", "localhost"),
            ("MAIL_PORT", port.as_str()),
            ("MAIL_ENCRYPTION", "tls"),
            ("MAIL_USERNAME", MAIL_USER),
            ("MAIL_PASSWORD", MAIL_PASSWORD),
            ("WHATSAPP_API_URL", api_url.as_str()),
            ("WHATSAPP_API_TOKEN", TOKEN),
            ("WHATSAPP_PHONE_NUMBER_ID", PHONE_ID),
            ("CACHE_DRIVER", "file"),
            ("APP_STORAGE_PATH", storage.to_str().unwrap()),
            ("APP_KEY", &app_key()),
        ] {
            env.insert(k.to_owned(), v.to_owned());
        }
        for (k, v) in extra {
            env.insert(k.to_string(), v.to_string());
        }
        env.into_iter().collect()
    }

    /// Runs `args` (then `--queue` and `--failed-db`) after the global flags; returns the exit code
    /// and stdout.
    async fn run(&self, extra: &[(&str, &str)], args: &[&str]) -> (i32, String) {
        let queue = format!("--queue={}", self.queue);
        let failed_db = format!(
            "--failed-db={}",
            self.world.dir.path().join("embedded.sqlite").display()
        );
        let mut all = args.to_vec();
        all.extend([queue.as_str(), failed_db.as_str()]);
        self.run_raw(extra, &all).await
    }

    /// Runs exactly `args` after the global flags; asserts no secret is printed.
    async fn run_raw(&self, extra: &[(&str, &str)], args: &[&str]) -> (i32, String) {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_defer-worker"))
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env(extra))
            .stdin(Stdio::null())
            .output()
            .await
            .expect("run defer-worker");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        for secret in [TOKEN, MAIL_PASSWORD, "wrong-pass", "bad-mail-pass"] {
            assert!(
                !stdout.contains(secret) && !stderr.contains(secret),
                "{secret} printed:\n{stdout}\n{stderr}"
            );
        }
        (out.status.code().expect("exit code"), stdout)
    }

    /// `check --json`: the exit code and the checks.
    async fn check(&self, extra: &[(&str, &str)]) -> (i32, Vec<Json>) {
        self.check_with(extra, &[]).await
    }

    /// `check --json` with more flags.
    async fn check_with(&self, extra: &[(&str, &str)], flags: &[&str]) -> (i32, Vec<Json>) {
        let mut args = vec!["check", "--json"];
        args.extend_from_slice(flags);
        let (code, stdout) = self.run(extra, &args).await;
        let doc: Json = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
        assert_eq!(doc["ok"], code == 0, "{doc}");
        (code, doc["checks"].as_array().expect("checks").clone())
    }

    fn push_encrypted(&self) {
        self.world.rpush(&self.queue, &fixture(ENCRYPTED));
    }
}

/// The key the encrypted fixture was made with (fixtures/manifest.json).
fn app_key() -> String {
    let manifest: Json =
        serde_json::from_slice(&std::fs::read(repo().join("fixtures/manifest.json")).unwrap())
            .unwrap();
    manifest
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["file"] == format!("payloads/{ENCRYPTED}"))
        .and_then(|e| e["app_key"].as_str())
        .expect("the fixture's key")
        .to_owned()
}

fn line<'a>(checks: &'a [Json], name: &str) -> &'a Json {
    checks
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} line in {checks:#?}"))
}

/// Exactly `name` failed, and its fix names `key`. Returns its line.
fn only_failure<'a>(code: i32, checks: &'a [Json], name: &str, key: &str) -> &'a Json {
    assert_eq!(code, 1, "{checks:#?}");
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, [name], "{checks:#?}");
    let l = line(checks, name);
    let fix = l["fix"].as_str().expect("a fix");
    assert!(fix.contains(key), "{key} not in the fix: {l}");
    l
}

fn drop_table(w: &World, table: &str) {
    let env: HashMap<String, String> = w.env().into_iter().collect();
    let cfg = DbConfig::from_env(&|k| env.get(k).cloned(), &w.dir.path().join("x.sqlite")).unwrap();
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(async {
            let db = Db::connect(&cfg).await.expect("app database");
            let Db::MySql(pool) = &db else {
                panic!("MariaDB")
            };
            sqlx::query(&format!("DROP TABLE {table}"))
                .execute(pool)
                .await
                .expect("drop");
            db.close().await;
        })
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn every_check_passes_with_the_test_settings() {
    let s = Stage::new().await;
    s.push_encrypted();
    let (code, checks) = s.check(&[]).await;
    let not_passed: Vec<&Json> = checks.iter().filter(|c| c["status"] != "pass").collect();
    assert!(not_passed.is_empty(), "{not_passed:#?}");
    assert_eq!(code, 0);
    let detail = |name: &str| line(&checks, name)["detail"].as_str().unwrap().to_owned();
    assert!(
        detail("redis.connect").contains("Redis 7"),
        "{}",
        detail("redis.connect")
    );
    assert!(
        detail(&format!("redis.queue {}", s.queue)).ends_with(": 1 ready, 0 delayed, 0 reserved"),
        "{checks:#?}"
    );
    assert!(detail("redis.prefix").contains(&s.world.prefix));
    assert!(detail("database.connect").contains(&s.world.db_name));
    assert!(detail("failed_jobs.table").contains("uuid"));
    assert!(detail("app.order_details").contains("order_id, qty"));
    assert!(
        detail("app.order_lines").starts_with("`order_details`: the item_* column family"),
        "{}",
        detail("app.order_lines")
    );
    assert!(detail("app.whatsapp_messages_log").starts_with("present"));
    assert!(detail("cache.store").contains("probe key written and forgotten"));
    assert!(detail("cache.pause").starts_with("none of the queues is paused"));
    assert!(detail("smtp").contains(&format!("smtp+starttls://localhost:{}", s.smtp.port)));
    assert!(detail("smtp").contains("AUTH as MAIL_USERNAME"));
    assert!(detail("whatsapp.api").contains("token accepted"));
    // The business number is masked like every phone number.
    assert!(
        !detail("whatsapp.api").contains("07 07 00"),
        "{}",
        detail("whatsapp.api")
    );
    assert!(
        detail("whatsapp.version").starts_with("Graph API v25.0 until 2028-07-29"),
        "{}",
        detail("whatsapp.version")
    );
    assert!(detail("app_key").starts_with("APP_KEY decrypts the encrypted job"));
    assert!(
        detail(&format!("retry_after {}", s.queue)).contains("--timeout 60 s < retry_after 90 s")
    );
    assert!(detail("handoff php").ends_with("cannot be seen from Redis"));
    assert!(s.smtp.mails().is_empty(), "the check sent a mail");
    assert_eq!(s.api.received_requests().await.unwrap().len(), 1);
    assert_eq!(
        s.world.queue_len(&s.queue),
        1,
        "the job is left where it was"
    );

    // The text form, and `work --check`, print the same checks, one line each, and exit 0 too.
    for args in [&["check"][..], &["work", "--check"][..]] {
        let (code, text) = s.run(&[], args).await;
        assert_eq!(code, 0, "{args:?}: {text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), checks.len() + 1, "{text}");
        assert!(
            lines[..checks.len()].iter().all(|l| l.starts_with("✓ ")),
            "{text}"
        );
        assert_eq!(
            lines[checks.len()],
            format!("{} passed, 0 warning(s), 0 failed", checks.len())
        );
    }
}

/// An ACL user on the shared server, deleted on drop.
struct AclUser(String);

impl Drop for AclUser {
    fn drop(&mut self) {
        if let Ok(mut c) =
            redis::Client::open(crate::support::REDIS_URL).and_then(|c| c.get_connection())
        {
            let _: redis::RedisResult<()> =
                redis::cmd("ACL").arg("DELUSER").arg(&self.0).query(&mut c);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_redis_password_fails_naming_redis_password() {
    let s = Stage::new().await;
    let user = AclUser(format!("{}user", s.world.prefix));
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(&user.0)
        .arg("on")
        .arg(">right-pass")
        .arg("~*")
        .arg("&*")
        .arg("+@all")
        .query(&mut s.world.redis())
        .expect("ACL SETUSER");
    let (code, checks) = s
        .check(&[
            ("REDIS_USERNAME", &user.0),
            ("REDIS_PASSWORD", "right-pass"),
        ])
        .await;
    assert_eq!(code, 0, "{checks:#?}");
    let connect = line(&checks, "redis.connect")["detail"].as_str().unwrap();
    assert!(connect.contains(&format!("user {}", user.0)), "{connect}");
    assert!(connect.contains(":***@127.0.0.1"), "{connect}");

    let (code, checks) = s
        .check(&[
            ("REDIS_USERNAME", &user.0),
            ("REDIS_PASSWORD", "wrong-pass"),
        ])
        .await;
    let auth = only_failure(code, &checks, "redis.auth", "REDIS_PASSWORD");
    assert!(
        auth["detail"]
            .as_str()
            .unwrap()
            .contains("Password authentication failed"),
        "{auth}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_under_another_prefix_fail_naming_the_prefix_to_set() {
    let s = Stage::new().await;
    s.world.rpush(&s.queue, &fixture("email.json"));
    let wrong = format!("{}wrong_", s.world.prefix);
    let (code, checks) = s.check(&[("REDIS_PREFIX", &wrong)]).await;
    let l = only_failure(
        code,
        &checks,
        "redis.prefix",
        &format!("REDIS_PREFIX={}", s.world.prefix),
    );
    let detail = l["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("{:?} (queues:{} 1)", s.world.prefix, s.queue)),
        "{detail}"
    );
    assert_eq!(
        s.world.queue_len(&s.queue),
        1,
        "the job is left where it was"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_failed_jobs_table_fails_with_the_migration_to_run() {
    let s = Stage::new().await;
    drop_table(&s.world, "failed_jobs");
    let (code, checks) = s.check(&[]).await;
    let l = only_failure(
        code,
        &checks,
        "failed_jobs.table",
        "php artisan queue:failed-table && php artisan migrate",
    );
    assert_eq!(l["detail"], "the table `failed_jobs` does not exist");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_smtp_server_refusing_auth_fails_naming_the_mail_login() {
    let s = Stage::new().await;
    let (code, checks) = s.check(&[("MAIL_PASSWORD", "bad-mail-pass")]).await;
    let l = only_failure(code, &checks, "smtp", "MAIL_USERNAME and MAIL_PASSWORD");
    assert!(l["detail"].as_str().unwrap().contains("535"), "{l}");
    assert!(s.smtp.mails().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_meta_rejects_fails_naming_the_token() {
    let s = Stage::new().await;
    Mock::given(method("GET"))
        .respond_with(meta_error(
            401,
            190,
            "Error validating access token: Session has expired on Friday, 09-Jan-26 10:00:00 PST.",
        ))
        .with_priority(1)
        .mount(&s.api)
        .await;
    let (code, checks) = s.check(&[]).await;
    let l = only_failure(code, &checks, "whatsapp.api", "WHATSAPP_API_TOKEN");
    assert!(l["detail"].as_str().unwrap().contains("190"), "{l}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_app_key_fails_on_an_encrypted_job() {
    let s = Stage::new().await;
    s.push_encrypted();
    let other = "base64:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let (code, checks) = s.check(&[("APP_KEY", other)]).await;
    let l = only_failure(code, &checks, "app_key", "APP_KEY");
    assert!(
        l["detail"].as_str().unwrap().contains("cannot be read"),
        "{l}"
    );
    assert!(
        l["fix"].as_str().unwrap().contains("APP_PREVIOUS_KEYS"),
        "{l}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn threads_out_of_range_fail_the_options_check_naming_the_key() {
    let s = Stage::new().await;
    let (code, checks) = s.check_with(&[], &["--threads=0"]).await;
    let l = only_failure(code, &checks, "options", "[worker]");
    let detail = l["detail"].as_str().unwrap();
    assert!(detail.contains("--threads (worker.threads) is 0"), "{l}");
    // `work --check` reads the same options and reports the same, in text.
    let (code, stdout) = s.run(&[], &["work", "--check", "--threads=0"]).await;
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains(detail), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_graph_api_version_fails_naming_the_url() {
    let s = Stage::new().await;
    let url = format!("{}/v18.0", s.api.uri());
    Mock::given(method("GET"))
        .and(path(format!("/v18.0/{PHONE_ID}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": PHONE_ID})))
        .mount(&s.api)
        .await;
    let (code, checks) = s.check(&[("WHATSAPP_API_URL", &url)]).await;
    let l = only_failure(code, &checks, "whatsapp.version", "WHATSAPP_API_URL");
    let detail = l["detail"].as_str().unwrap();
    assert!(
        detail.contains("v18.0, which Meta stopped serving on 2026-01-26"),
        "{detail}"
    );
    assert!(
        l["fix"]
            .as_str()
            .unwrap()
            .ends_with("to https://graph.facebook.com/v25.0"),
        "{l}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_nobody_takes_on_the_handoff_queue_warn_and_still_exit_0() {
    let s = Stage::new().await;
    s.world.rpush("php", &fixture("email.json"));
    let (code, checks) = s.check(&[]).await;
    assert_eq!(code, 0, "a warning does not fail the check: {checks:#?}");
    let l = line(&checks, "handoff php");
    assert_eq!(l["status"], "warn", "{l}");
    assert!(
        l["detail"]
            .as_str()
            .unwrap()
            .contains(": 1 job(s) wait and none is reserved"),
        "{l}"
    );
    assert_eq!(
        l["fix"],
        "run `php artisan queue:work --queue=php` beside defer-worker"
    );
    let warned = checks.iter().filter(|c| c["status"] != "pass").count();
    assert_eq!(warned, 1, "{checks:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timeout_not_below_retry_after_is_a_warning_because_of_leases() {
    let s = Stage::new().await;
    let (code, stdout) = s.run(&[], &["check", "--json", "--timeout=90"]).await;
    let doc: Json = serde_json::from_str(&stdout).unwrap();
    assert_eq!(code, 0, "{doc:#}");
    let l = line(
        doc["checks"].as_array().unwrap(),
        &format!("retry_after {}", s.queue),
    );
    assert_eq!(l["status"], "warn", "{l}");
    let detail = l["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("--timeout 90 s is not below retry_after 90 s"),
        "{l}"
    );
    assert!(detail.contains("every 30 s"), "{l}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_database_driver_needs_its_jobs_table() {
    let s = Stage::new().await;
    let (code, stdout) = s
        .run(&[], &["check", "--json", "--connection=database"])
        .await;
    let doc: Json = serde_json::from_str(&stdout).unwrap();
    assert_eq!(code, 0, "{doc:#}");
    assert!(
        line(doc["checks"].as_array().unwrap(), "jobs.table")["detail"]
            .as_str()
            .unwrap()
            .contains("reserved_at")
    );
    drop_table(&s.world, "jobs");
    let (code, stdout) = s
        .run(&[], &["check", "--json", "--connection=database"])
        .await;
    let doc: Json = serde_json::from_str(&stdout).unwrap();
    let l = only_failure(
        code,
        doc["checks"].as_array().unwrap(),
        "jobs.table",
        "php artisan queue:table && php artisan migrate",
    );
    assert_eq!(l["detail"], "the table `jobs` does not exist");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_queue_warns_naming_the_resume_command() {
    let s = Stage::new().await;
    let (code, out) = s.run_raw(&[], &["pause", &s.queue]).await;
    assert_eq!(code, 0, "{out}");
    let (code, checks) = s.check(&[]).await;
    assert_eq!(code, 0, "{checks:#?}");
    let l = line(&checks, "cache.pause");
    assert_eq!(l["status"], "warn", "{l}");
    assert!(
        l["detail"]
            .as_str()
            .unwrap()
            .contains(&format!(":{}", s.queue)),
        "{l}"
    );
    assert!(
        l["fix"]
            .as_str()
            .unwrap()
            .starts_with("`defer-worker resume "),
        "{l}"
    );
}

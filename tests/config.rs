//! Configuration from the app's `.env` (Laravel's rules), layered under the process environment and over
//! `defer-worker.toml`, and `defer-worker config` run as a user runs it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use defer_worker::config::{DotEnv, FileConfig, Settings, Source};
use serde_json::Value as Json;

fn example_env() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/app/.env.example")
}

/// Runs the binary in `dir` with only PATH and `env` in its environment.
fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_defer-worker"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .expect("run defer-worker")
}

fn config_json(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (Json, Output) {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["config", "--json"]);
    let out = run(dir, &all, env);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (json, out)
}

/// (value, source) of `key` in the report.
fn row(json: &Json, key: &str) -> (Option<String>, String) {
    let row = json["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rows"].as_array().unwrap())
        .find(|r| r["key"] == key)
        .unwrap_or_else(|| panic!("no row {key}"));
    (
        row["value"].as_str().map(String::from),
        row["source"].as_str().unwrap().to_owned(),
    )
}

fn value(json: &Json, key: &str) -> String {
    row(json, key).0.unwrap_or_else(|| panic!("{key} is null"))
}

#[test]
fn the_apps_env_example_resolves_to_the_expected_settings() {
    let dir = tempfile::tempdir().unwrap();
    let env = example_env();
    let (json, out) = config_json(dir.path(), &["--env", env.to_str().unwrap()], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json["problems"], serde_json::json!([]));

    assert_eq!(value(&json, "redis.prefix"), "restrosaas_database_");
    assert_eq!(value(&json, "redis.url"), "redis://127.0.0.1:6379/0");
    // REDIS_PASSWORD=null is Laravel's null: no password, and the report says where it was set.
    let (password, source) = row(&json, "REDIS_PASSWORD");
    assert_eq!(password, None);
    assert!(
        source.starts_with("null (") && source.contains(".env.example:"),
        "{source}"
    );

    assert_eq!(value(&json, "DB_CONNECTION"), "mysql");
    assert_eq!(
        value(&json, "failed_jobs.database"),
        "mysql://root@127.0.0.1:3306/restro_saas"
    );

    assert_eq!(
        value(&json, "mail.transport"),
        "smtp://smtp.gmail.com:587 (STARTTLS)"
    );
    assert_eq!(
        value(&json, "MAIL_FROM_NAME"),
        "RestroSaaS",
        "${{APP_NAME}} expanded"
    );
    assert_eq!(value(&json, "MAIL_PASSWORD"), "***");

    assert_eq!(
        value(&json, "WHATSAPP_API_URL"),
        "https://graph.facebook.com/v18.0"
    );
    assert!(value(&json, "whatsapp.messages_url").starts_with("https://graph.facebook.com/v18.0/"));
    // The app's own example pins v18.0, which Meta no longer serves: shown with its end date.
    assert_eq!(
        value(&json, "whatsapp.api_version"),
        "v18.0 expired on 2026-01-26"
    );
    assert_eq!(
        value(&json, "WHATSAPP_WEBHOOK_URL"),
        "https://votre-domaine.com/api/whatsapp/webhook"
    );
    assert_eq!(value(&json, "WHATSAPP_DEFAULT_COUNTRY_CODE"), "225");
    assert_eq!(
        value(&json, "WHATSAPP_AUTO_NOTIFY_PAYMENT_PENDING"),
        "false"
    );

    assert_eq!(value(&json, "cache.store"), "file");
    assert_eq!(value(&json, "cache.prefix"), "restrosaas_cache");

    let (queue_connection, source) = row(&json, "QUEUE_CONNECTION");
    assert_eq!(queue_connection.as_deref(), Some("sync"));
    assert!(source.ends_with(".env.example:27"), "{source}");
    assert!(
        json["notes"].to_string().contains("QUEUE_CONNECTION"),
        "sync is pointed out: {}",
        json["notes"]
    );
}

#[test]
fn config_masks_secrets_from_every_layer() {
    let dir = tempfile::tempdir().unwrap();
    let app_key = "base64:q1w2e3r4t5y6u7i8o9p0a1s2d3f4g5h6j7k8l9z0x1c=";
    let mut text = std::fs::read_to_string(example_env()).unwrap();
    text.push_str(&format!(
        "APP_KEY={app_key}\nDB_PASSWORD='dbpass-Secret1'\n"
    ));
    let env = dir.path().join(".env");
    std::fs::write(&env, text).unwrap();
    let token = "EAAGtesttoken0123456789";
    let out = run(
        dir.path(),
        &["config"],
        &[
            ("WHATSAPP_API_TOKEN", token),
            (
                "REDIS_URL",
                "redis://worker:redispass-Secret2@10.1.2.3:6380/2",
            ),
            ("WHATSAPP_TEST_PHONE", "+2250700000001"),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for secret in [
        "q1w2e3r4",
        token,
        "dbpass-Secret1",
        "redispass-Secret2",
        "your-app-password",
        "restro_saas_webhook_2024",
        "0700000001",
    ] {
        assert!(!stdout.contains(secret), "{secret} leaked:\n{stdout}");
    }
    // ./.env was read without --env, and the masked values still say where they came from.
    assert!(
        stdout.contains("redis://worker:***@10.1.2.3:6380/2"),
        "{stdout}"
    );
    let key_line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("APP_KEY "))
        .unwrap();
    assert!(
        key_line.contains("***") && key_line.contains(".env:"),
        "{key_line}"
    );
    let token_line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("WHATSAPP_API_TOKEN "))
        .unwrap();
    assert!(
        token_line.contains("***") && token_line.contains("process environment"),
        "{token_line}"
    );
}

#[test]
fn process_beats_dotenv_beats_toml_beats_default() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "REDIS_HOST=dotenv-host\nREDIS_PORT=6380\nAPP_NAME=\"Dot Env App\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("defer-worker.toml"),
        "[worker]\nconcurrency = 12\nthreads = 4\n\n[env]\nREDIS_HOST = \"toml-host\"\nREDIS_DB = 3\nCACHE_PREFIX = \"toml_cache\"\n",
    )
    .unwrap();
    let (json, out) = config_json(dir.path(), &[], &[("REDIS_PORT", "6390")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        row(&json, "REDIS_PORT"),
        (Some("6390".into()), "process environment".into())
    );
    assert_eq!(
        row(&json, "REDIS_HOST"),
        (Some("dotenv-host".into()), ".env:1".into())
    );
    assert_eq!(
        row(&json, "REDIS_DB"),
        (Some("3".into()), "defer-worker.toml".into())
    );
    assert_eq!(
        row(&json, "REDIS_CACHE_DB"),
        (Some("1".into()), "default".into())
    );
    assert_eq!(value(&json, "redis.url"), "redis://dotenv-host:6390/3");
    assert_eq!(value(&json, "redis.prefix"), "dot_env_app_database_");
    assert_eq!(value(&json, "cache.prefix"), "toml_cache");
    assert_eq!(row(&json, "worker.concurrency").0.as_deref(), Some("12"));
    assert!(row(&json, "worker.concurrency")
        .1
        .starts_with("defer-worker.toml"));
    assert_eq!(row(&json, "worker.threads").0.as_deref(), Some("4"));

    // The same layering through the library, with a flag on top.
    let dotenv = DotEnv::parse("A=dotenv\nB=dotenv\n", Path::new("/app/.env"), &|_| None).unwrap();
    let file = FileConfig::parse("[env]\nA = \"toml\"\nB = \"toml\"\nC = \"toml\"\n").unwrap();
    let process = HashMap::from([("A".to_owned(), "process".to_owned())]);
    let s = Settings::from_parts(process, Some(dotenv), &file).with_flag("B", "flag");
    assert_eq!(s.get("A").unwrap().source, Source::Process);
    assert_eq!(s.get("B").unwrap().source, Source::Flag);
    assert_eq!(s.env("C").as_deref(), Some("toml"));
    assert!(matches!(s.get("C").unwrap().source, Source::ConfigFile(_)));
}

#[test]
fn laravel_rules_for_quotes_expansion_null_true_and_empty() {
    let text = r#"
APP_NAME="My App"
export EXPORTED_NAME=${APP_NAME}
SINGLE='literal ${APP_NAME} \n'
DOUBLE="tab\tquote\" ${APP_NAME}"
MULTI="first
second"
NULLED=null
PAREN_NULL=(null)
YES=(true)
NO=FALSE
BLANK=empty
NOTHING=
COMMENTED=value # a comment
FROM_PROCESS=${HOME_DIR}/x
"#;
    let process = HashMap::from([("HOME_DIR".to_owned(), "/home/app".to_owned())]);
    let lookup = process.clone();
    let dotenv = DotEnv::parse(text, Path::new(".env"), &|k| lookup.get(k).cloned()).unwrap();
    let s = Settings::from_parts(process, Some(dotenv), &FileConfig::default());
    let get = |k: &str| s.get(k).and_then(|r| r.value);
    assert_eq!(get("EXPORTED_NAME").as_deref(), Some("My App"));
    assert_eq!(get("SINGLE").as_deref(), Some("literal ${APP_NAME} \\n"));
    assert_eq!(get("DOUBLE").as_deref(), Some("tab\tquote\" My App"));
    assert_eq!(get("MULTI").as_deref(), Some("first\nsecond"));
    assert_eq!(get("NULLED"), None);
    assert_eq!(get("PAREN_NULL"), None);
    assert!(
        s.get("NULLED").is_some(),
        "null is set-to-null, not missing"
    );
    assert_eq!(get("YES").as_deref(), Some("true"));
    assert_eq!(get("NO").as_deref(), Some("false"));
    assert_eq!(get("BLANK").as_deref(), Some(""));
    assert_eq!(get("NOTHING").as_deref(), Some(""));
    assert_eq!(s.env("BLANK"), None, "config::env counts empty as unset");
    assert_eq!(get("COMMENTED").as_deref(), Some("value"));
    assert_eq!(get("FROM_PROCESS").as_deref(), Some("/home/app/x"));
    assert_eq!(
        s.get("MULTI").unwrap().source,
        Source::DotEnv {
            path: PathBuf::from(".env"),
            line: 6
        }
    );
}

#[test]
fn bad_env_syntax_is_refused_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("app.env");
    std::fs::write(&env, "APP_NAME=RestroSaaS\n\nMAIL_FROM_NAME=Restro SaaS\n").unwrap();
    let out = run(dir.path(), &["--env", env.to_str().unwrap(), "config"], &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:3:", env.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains("MAIL_FROM_NAME") && stderr.contains("whitespace"),
        "{stderr}"
    );

    let missing = dir.path().join("nope.env");
    let out = run(
        dir.path(),
        &["--env", missing.to_str().unwrap(), "config"],
        &[],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.env"));
}

#[test]
fn bad_values_are_listed_with_key_and_source_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join(".env");
    std::fs::write(
        &env,
        "APP_NAME=RestroSaaS\nAPP_KEY=base64:c2hvcnQ=\nREDIS_PORT=abc\nDB_CONNECTION=oracle\nAPP_TIMEZONE=Mars/Olympus\n",
    )
    .unwrap();
    let out = run(dir.path(), &["config"], &[("MAIL_PORT", "five")]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "APP_KEY=\"***\" (.env:2)",
        "REDIS_PORT=\"abc\" (.env:3)",
        "DB_CONNECTION=\"oracle\" (.env:4)",
        "APP_TIMEZONE=\"Mars/Olympus\" (.env:5)",
        "MAIL_PORT=\"five\" (process environment)",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?}:\n{stdout}");
    }
    assert!(!stdout.contains("c2hvcnQ"), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("5 configuration problem(s)"));

    // The same checks through the library function other commands call at start.
    let dotenv = DotEnv::parse("REDIS_DB=x\n", Path::new("/srv/.env"), &|_| None).unwrap();
    let s = Settings::from_parts(HashMap::new(), Some(dotenv), &FileConfig::default());
    let problems = defer_worker::ops::report::validate(&s).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].key, "REDIS_DB");
    assert_eq!(problems[0].source, "/srv/.env:1");
}

#[test]
fn config_help_has_examples() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["config", "--help"], &[]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        help.contains("Examples:") && help.contains("--env") && help.contains("--json"),
        "{help}"
    );
}

#[test]
fn config_shows_the_action_table_with_defaults_and_masks_the_lookup_database() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("defer-worker.toml"),
        "[app]\ndatabase_url = \"mysql://reader:hunter2@replica:3306/app\"\n\
         [actions.email_notification]\nkind = \"log\"\n",
    )
    .unwrap();
    let (json, out) = config_json(dir.path(), &[], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = json.to_string();
    assert!(!text.contains("hunter2"), "{text}");
    assert_eq!(
        row(&json, "app.database_url").0.as_deref(),
        Some("mysql://reader:***@replica:3306/app")
    );
    let (kind, source) = row(&json, "actions.email_notification");
    assert_eq!(kind.as_deref(), Some("log"));
    assert!(source.contains("[actions.email_notification]"), "{source}");
    let (kind, source) = row(&json, "actions.whatsapp_notification");
    assert_eq!(kind.as_deref(), Some("whatsapp"));
    assert!(source.starts_with("default"), "{source}");
    assert_eq!(value(&json, "actions.*"), "warn");
    assert_eq!(value(&json, "app.max_connections"), "16");
}

//! The `database` queue driver (the `jobs` table) against real Laravel 8.83 on SQLite, MariaDB and
//! PostgreSQL: PHP's `defer()` inserts rows on the `database` connection, defer-worker works them with
//! the same rules as on Redis (attempts from the row, release, failed_jobs, `queue:retry`), and a PHP
//! worker and defer-worker share the table without running a job twice, even across `kill -9`.

use std::collections::HashSet;
use std::process::{Child, Stdio};
use std::time::Duration;

use defer_worker::laravel::database::Db;
use defer_worker::laravel::database_queue::DatabaseQueue;
use defer_worker::laravel::queue::Queue;

use crate::support::{DbKind, World, LOG_KIND_LINES, LOG_UNBUFFERED};

const LOG_ALL: &str = "[actions.\"*\"]\nkind = \"log\"\n";

/// A world whose app pushes to the `database` connection (QUEUE_CONNECTION=database), with
/// `retry_after` of `retry_after` seconds on both sides.
fn world(db: DbKind, retry_after: u64) -> World {
    let mut w = World::new(db);
    w.extra.push(("QUEUE_CONNECTION".into(), "database".into()));
    w.extra
        .push(("DB_QUEUE_RETRY_AFTER".into(), retry_after.to_string()));
    let (var, filter) = LOG_KIND_LINES;
    w.extra.push((var.into(), filter.into()));
    let (var, bytes) = LOG_UNBUFFERED;
    w.extra.push((var.into(), bytes.into()));
    w
}

/// Rows left in `jobs`, through the harness's own database connection.
fn jobs_left(w: &World) -> usize {
    let out = w.php(&["harness:jobs-count"]);
    out.trim().parse().expect("a count")
}

/// The uuids defer-worker ran (the `log` kind's line), from its JSON log.
fn ran_by_us(logs: &[serde_json::Value]) -> Vec<String> {
    logs.iter()
        .filter(|l| l["message"] == "deferred job logged (kind = log)")
        .filter_map(|l| l["span"]["uuid"].as_str().map(String::from))
        .collect()
}

fn ran_by_php(w: &World) -> Vec<String> {
    w.lrange(&format!("{}done", w.prefix))
        .into_iter()
        .map(|b| String::from_utf8(b).expect("uuid"))
        .collect()
}

fn php_worker(w: &World, extra: &[&str]) -> Child {
    // --tries=3: a job whose defer-worker was killed comes back as attempt 2 (with PHP's default
    // --tries=1 it would go to failed_jobs with MaxAttemptsExceededException).
    let mut args = vec![
        "queue:work",
        "database",
        "--queue=default",
        "--sleep=1",
        "--tries=3",
    ];
    args.extend_from_slice(extra);
    w.php_command(&args, &[("HARNESS_DONE_KEY", "done")])
        .stdout(Stdio::null())
        .spawn()
        .expect("php queue:work database")
}

#[test]
fn php_pushes_rows_defer_worker_runs_them_with_laravels_rules() {
    let w = world(DbKind::Sqlite, 90);
    let sent = w.dispatch("analytics_tracking", r#"{"order_id":1}"#, "default", 20);
    let failing = w.dispatch("email_notification", r#"{"order_id":2}"#, "default", 1);
    assert_eq!(jobs_left(&w), 21, "defer() wrote rows, not Redis keys");
    assert!(w.keys().is_empty(), "nothing on Redis: {:?}", w.keys());

    let config = format!(
        "{LOG_ALL}\n[actions.email_notification]\nkind = \"fail\"\npermanent = false\nmessage = \"SMTP down\"\n"
    );
    // Not --stop-when-empty: the released job waits out its backoff, and an empty queue would stop
    // the worker before it is due, as with Laravel's flag.
    let mut ours = w.worker(
        &["--connection=database", "--tries=2", "--backoff=1"],
        &config,
    );
    ours.wait_for(Duration::from_secs(60), "20 done and 1 failed", |logs| {
        logs.iter().filter(|l| l["outcome"] == "done").count() == 20
            && logs.iter().any(|l| l["outcome"] == "failed")
    });
    ours.signal("TERM");
    assert!(ours.wait(Duration::from_secs(30)).success());
    let done: HashSet<String> = ours.uuids("done").into_iter().collect();
    assert_eq!(done, sent.iter().cloned().collect::<HashSet<_>>());
    // Attempt 1 released with the backoff (attempts kept in the new row), attempt 2 failed.
    let released = ours.outcomes("released");
    assert_eq!(released.len(), 1);
    assert_eq!(released[0]["attempt"], 1);
    assert_eq!(released[0]["delay"], 1);
    let failed_line = ours.outcomes("failed");
    assert_eq!(failed_line.len(), 1);
    assert_eq!(failed_line[0]["attempt"], 2);
    assert_eq!(jobs_left(&w), 0);

    let rows = w.failed();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.uuid, failing[0]);
    assert_eq!(row.connection, "database");
    assert_eq!(row.queue, "default");
    assert!(
        !row.payload.contains("\"attempts\""),
        "the row's payload, as PHP wrote it"
    );
    assert!(row.exception.contains("SMTP down"), "{}", row.exception);

    // Laravel's own queue:retry puts it back on the database connection; we run it.
    w.php(&["queue:retry", "all"]);
    assert_eq!(jobs_left(&w), 1);
    let mut again = w.worker(&["--connection=database", "--stop-when-empty"], LOG_ALL);
    assert!(again.wait(Duration::from_secs(60)).success());
    assert_eq!(again.uuids("done"), failing);
    assert_eq!(jobs_left(&w), 0);
}

#[test]
fn a_reserved_row_whose_worker_died_is_taken_back_after_retry_after() {
    let w = world(DbKind::Sqlite, 2);
    let sent = w.dispatch("analytics_tracking", r#"{"order_id":1}"#, "default", 1);
    let slow = "[actions.\"*\"]\nkind = \"log\"\nsleep_ms = 60000\n";
    let mut first = w.worker(&["--connection=database", "--tries=3"], slow);
    first.wait_for(Duration::from_secs(20), "the job reserved", |_| {
        w.php(&["harness:jobs-count", "--reserved"]).trim() == "1"
    });
    first.signal("KILL");
    let _ = first.wait(Duration::from_secs(5));
    let second = w.worker(&["--connection=database", "--tries=3"], LOG_ALL);
    second.wait_for(Duration::from_secs(20), "the job run again", |logs| {
        logs.iter().any(|l| l["outcome"] == "done")
    });
    let done = second.outcomes("done");
    assert_eq!(done[0]["uuid"], sent[0].as_str());
    assert_eq!(
        done[0]["attempt"], 2,
        "the killed attempt counts, as in PHP"
    );
}

/// 10 000 jobs, a PHP worker and defer-worker on the same table: each runs once. Then 1 000 more and
/// defer-worker is killed mid-run: PHP takes its reservations back after retry_after, nothing is lost.
fn mixed_fleet(db: DbKind) {
    let w = world(db, 2);
    let sent = w.dispatch("analytics_tracking", r#"{"order_id":1}"#, "default", 10_000);
    let mut php = php_worker(&w, &[]);
    let mut ours = w.worker(
        &["--connection=database", "--tries=3", "--concurrency=16"],
        LOG_ALL,
    );
    let left = w.wait_until(Duration::from_secs(300), || jobs_left(&w) == 0);
    assert!(left, "the fleet drained 10 000 rows");
    let by_us = ran_by_us(&ours.logs());
    let by_php = ran_by_php(&w);
    let all: HashSet<&String> = by_us.iter().chain(&by_php).collect();
    assert_eq!(all.len(), sent.len(), "every job ran");
    assert!(sent.iter().all(|u| all.contains(u)));
    assert_eq!(by_us.len() + by_php.len(), sent.len(), "none ran twice");
    assert!(!by_us.is_empty() && !by_php.is_empty(), "both took part");
    eprintln!(
        "{db:?} mixed fleet: defer-worker ran {}, PHP ran {}",
        by_us.len(),
        by_php.len()
    );

    // Phase 2: kill -9 defer-worker in the middle of 1 000 jobs.
    ours.signal("KILL");
    let _ = ours.wait(Duration::from_secs(5));
    let _ = w.redis_del(&format!("{}done", w.prefix));
    let sent = w.dispatch("analytics_tracking", r#"{"order_id":2}"#, "default", 1_000);
    let slow = "[actions.\"*\"]\nkind = \"log\"\nsleep_ms = 5\n";
    let mut ours = w.worker(
        &["--connection=database", "--tries=3", "--concurrency=16"],
        slow,
    );
    ours.wait_for(Duration::from_secs(120), "200 jobs done by us", |logs| {
        logs.iter().filter(|l| l["outcome"] == "done").count() >= 200
    });
    ours.signal("KILL");
    let _ = ours.wait(Duration::from_secs(5));
    assert!(jobs_left(&w) > 0, "killed mid-run, with jobs left");
    let drained = w.wait_until(Duration::from_secs(300), || jobs_left(&w) == 0);
    let _ = php.kill();
    let _ = php.wait();
    assert!(drained, "PHP drained the table, our reservations included");
    let by_us = ran_by_us(&ours.logs());
    let by_php = ran_by_php(&w);
    let all: HashSet<&String> = by_us.iter().chain(&by_php).collect();
    let missing: Vec<_> = sent.iter().filter(|u| !all.contains(u)).collect();
    assert!(
        missing.is_empty(),
        "{} jobs lost ({} in failed_jobs)",
        missing.len(),
        w.failed().len()
    );
    let twice = by_us.len() + by_php.len() - all.len();
    assert!(
        twice <= 16,
        "only jobs in flight at the kill may run twice, got {twice}"
    );
    eprintln!(
        "{db:?} kill -9: defer-worker ran {}, PHP ran {}, {twice} twice (at-least-once)",
        by_us.len(),
        by_php.len()
    );
}

#[test]
fn mixed_fleet_on_mariadb_runs_each_job_once_and_loses_nothing_on_kill_9() {
    mixed_fleet(DbKind::MySql);
}

#[test]
fn mixed_fleet_on_postgres_runs_each_job_once_and_loses_nothing_on_kill_9() {
    mixed_fleet(DbKind::Postgres);
}

#[test]
fn a_row_retried_by_defer_worker_goes_back_to_the_jobs_table_and_php_runs_it() {
    let w = world(DbKind::Sqlite, 90);
    let sent = w.dispatch("email_notification", r#"{"order_id":3}"#, "emails", 1);
    let fail = "[actions.email_notification]\nkind = \"fail\"\nmessage = \"no SMTP\"\n";
    let mut ours = w.worker(
        &[
            "--connection=database",
            "--queue=emails",
            "--stop-when-empty",
        ],
        fail,
    );
    assert!(ours.wait(Duration::from_secs(30)).success());
    let rows = w.failed();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].connection.as_str(), rows[0].queue.as_str()),
        ("database", "emails")
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_defer-worker"))
        .args(["failed", "retry", "all"])
        .env_clear()
        .envs(w.env())
        .output()
        .expect("defer-worker failed retry");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(w.failed().is_empty());
    assert_eq!(jobs_left(&w), 1, "back in the jobs table, not on Redis");
    assert!(w.keys().is_empty());
    w.php_with(
        &[
            "queue:work",
            "database",
            "--queue=emails",
            "--stop-when-empty",
        ],
        &[("HARNESS_DONE_KEY", "done")],
    );
    assert_eq!(ran_by_php(&w), sent);
    assert_eq!(jobs_left(&w), 0);
}

#[test]
fn monitor_and_clear_read_the_jobs_table_for_database_connections() {
    monitor_and_clear(DbKind::Sqlite);
}

#[test]
fn monitor_and_clear_read_the_jobs_table_on_mariadb() {
    monitor_and_clear(DbKind::MySql);
}

fn monitor_and_clear(db: DbKind) {
    let w = world(db, 90);
    w.dispatch("analytics_tracking", r#"{"order_id":1}"#, "default", 3);
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_defer-worker"))
            .args(args)
            .env_clear()
            .envs(w.env())
            .output()
            .expect("defer-worker");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    };
    // QUEUE_CONNECTION=database: the default connection, as for `php artisan queue:monitor`.
    let doc: serde_json::Value =
        serde_json::from_str(&run(&["monitor", "default", "--json"])).expect("json");
    assert_eq!(doc[0]["connection"], "database");
    assert_eq!(doc[0]["ready"], 3);
    assert_eq!(
        run(&["clear", "--force"]).trim(),
        "Cleared 3 jobs from the [default] queue"
    );
    assert_eq!(jobs_left(&w), 0);
}

// ---------------------------------------------------------------------------------------------------
// Whether a retry can help, from the servers' own errors on a `jobs` table of `php artisan queue:table`.

/// A `jobs` table of its own on MariaDB or PostgreSQL, dropped when the test is done with it.
pub(crate) struct JobsTable {
    pub(crate) db: Db,
    pub(crate) name: String,
}

impl JobsTable {
    /// A pool whose sessions give up on a row lock after about a second, and an empty `jobs` table.
    pub(crate) async fn create(db: DbKind) -> JobsTable {
        let name = format!("dw_jobs_{}", uuid::Uuid::new_v4().simple());
        let db = match db {
            DbKind::MySql => Db::MySql(
                sqlx::mysql::MySqlPoolOptions::new()
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            sqlx::query("SET SESSION innodb_lock_wait_timeout = 1")
                                .execute(conn)
                                .await
                                .map(drop)
                        })
                    })
                    .connect("mysql://root@127.0.0.1:3306/test")
                    .await
                    .expect("MariaDB at 127.0.0.1:3306"),
            ),
            DbKind::Postgres => Db::Postgres(
                sqlx::PgPool::connect(
                    "postgres://postgres@127.0.0.1:5432/test?options=-c%20lock_timeout%3D500ms",
                )
                .await
                .expect("PostgreSQL at 127.0.0.1:5432"),
            ),
            DbKind::Sqlite => unreachable!("the SQLite errors are unit-tested"),
        };
        let ddl = match &db {
            Db::MySql(_) => format!(
                "CREATE TABLE `{name}` (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, \
                 queue VARCHAR(255) NOT NULL, payload LONGTEXT NOT NULL, attempts TINYINT UNSIGNED NOT NULL, \
                 reserved_at INT UNSIGNED NULL, available_at INT UNSIGNED NOT NULL, \
                 created_at INT UNSIGNED NOT NULL) ENGINE=InnoDB"
            ),
            _ => format!(
                "CREATE TABLE \"{name}\" (id BIGSERIAL PRIMARY KEY, queue VARCHAR(255) NOT NULL, \
                 payload TEXT NOT NULL, attempts SMALLINT NOT NULL, reserved_at INTEGER NULL, \
                 available_at INTEGER NOT NULL, created_at INTEGER NOT NULL)"
            ),
        };
        JobsTable::execute(&db, &ddl).await;
        JobsTable { db, name }
    }

    pub(crate) async fn execute(db: &Db, sql: &str) {
        match db {
            Db::MySql(p) => sqlx::query(sql).execute(p).await.map(drop),
            Db::Postgres(p) => sqlx::query(sql).execute(p).await.map(drop),
            Db::Sqlite(p) => sqlx::query(sql).execute(p).await.map(drop),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    pub(crate) async fn drop_table(self) {
        let quoted = match self.db {
            Db::MySql(_) => format!("`{}`", self.name),
            _ => format!("\"{}\"", self.name),
        };
        JobsTable::execute(&self.db, &format!("DROP TABLE {quoted}")).await;
    }
}

/// A missing table is not retryable; a row lock another session holds past the lock timeout
/// (MariaDB 1205 lock wait timeout, PostgreSQL 55P03 lock_not_available) is, and the same delete
/// succeeds once the lock is gone.
async fn server_errors_say_whether_a_retry_can_help(kind: DbKind) {
    let table = JobsTable::create(kind).await;
    let missing = DatabaseQueue::new(table.db.clone(), &format!("{}_missing", table.name), 90)
        .await
        .expect("queue");
    let missing_err = missing
        .pop("default", 90, 1)
        .await
        .expect_err("no such table");

    let queue = Queue::Database(
        DatabaseQueue::new(table.db.clone(), &table.name, 90)
            .await
            .expect("queue"),
    );
    queue.push_raw("default", b"{}", 0).await.expect("push");
    let job = queue.pop("default", 90, 1).await.expect("pop").remove(0);
    let Some((id, _)) = job.reservation.row() else {
        panic!("{job:?}")
    };
    let lock = format!(
        "SELECT id FROM {} WHERE id = {id} FOR UPDATE",
        match kind {
            DbKind::MySql => format!("`{}`", table.name),
            _ => format!("\"{}\"", table.name),
        }
    );
    // The delete, while another session holds the row in a transaction (one body for both pools).
    macro_rules! delete_while_locked {
        ($pool:expr) => {{
            let mut tx = $pool.begin().await.expect("begin");
            sqlx::query(&lock).execute(&mut *tx).await.expect("lock");
            let result = queue.delete_reserved(&job).await;
            tx.rollback().await.expect("rollback");
            result
        }};
    }
    let locked = match &table.db {
        Db::MySql(p) => delete_while_locked!(p),
        Db::Postgres(p) => delete_while_locked!(p),
        Db::Sqlite(_) => unreachable!(),
    };
    let unlocked = queue.delete_reserved(&job).await;
    table.drop_table().await;

    assert!(!missing_err.is_retryable(), "{missing_err}");
    let locked = locked.expect_err("the row is locked by another session");
    assert!(locked.is_retryable(), "{locked}");
    assert!(!locked.is_connection(), "{locked}");
    assert!(unlocked.expect("unlocked"), "deleted once the lock is gone");
}

#[tokio::test]
async fn mariadb_errors_say_whether_a_retry_can_help() {
    server_errors_say_whether_a_retry_can_help(DbKind::MySql).await;
}

#[tokio::test]
async fn postgres_errors_say_whether_a_retry_can_help() {
    server_errors_say_whether_a_retry_can_help(DbKind::Postgres).await;
}

/// A hand-back on the database driver: the row is replaced on its own queue, due later, with the
/// attempts it had before this reservation; popped again it is the same attempt.
#[tokio::test]
async fn a_hand_back_restores_the_rows_attempts_and_delays_it() {
    let table = JobsTable::create(DbKind::Postgres).await;
    let queue = Queue::Database(
        DatabaseQueue::new(table.db.clone(), &table.name, 90)
            .await
            .expect("queue"),
    );
    queue
        .push_raw("whatsapp", br#"{"attempts":0}"#, 0)
        .await
        .expect("push");
    let job = queue.pop("whatsapp", 90, 1).await.expect("pop").remove(0);
    assert_eq!(job.attempts, Some(1));
    assert!(queue.hand_back(&job, 60).await.expect("hand back"));
    let not_yet = queue.pop("whatsapp", 90, 1).await.expect("pop");
    let stats = queue.stats("whatsapp").await.expect("stats");
    assert!(
        !queue.hand_back(&job, 60).await.expect("stale"),
        "a stale reservation is not handed back twice"
    );
    // Make it due now and take it again.
    JobsTable::execute(
        &table.db,
        &format!("UPDATE \"{}\" SET available_at = 0", table.name),
    )
    .await;
    let again = queue.pop("whatsapp", 90, 1).await.expect("pop");
    table.drop_table().await;

    assert!(not_yet.is_empty(), "due in 60 s, not before");
    assert_eq!((stats.ready, stats.delayed, stats.reserved), (0, 1, 0));
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, Some(1), "the hand-back used no attempt");
    assert_eq!(again[0].original, job.original);
}

//! Link-time layout of the `defer-worker` binary, for a smaller resident set (see link/README.md), and
//! the build facts `defer-worker --version` prints.
//!
//! Two linker options, each only where the toolchain and the C library take it, so a build never fails
//! because of them:
//! - `--symbol-ordering-file=link/hot-symbols.txt`: the functions a worker runs are placed side by side,
//!   so the pages of code the kernel maps in are the ones in use (about 3.5 MB instead of 9 MB of a 12 MB
//!   .text). Needs LLD: the default linker of Rust 1.90+ on x86_64-unknown-linux-gnu.
//! - `-z pack-relative-relocs` (DT_RELR): PIE relocations in a few KB instead of 1.4 MB read at every
//!   start. Needs glibc 2.36+ on the machine that builds (and so on the one that runs the binary).
//!
//! x86_64-unknown-linux-musl (the static release binary, scripts/release.sh): linked with Rust's own LLD
//! (`-fuse-ld=lld` from the toolchain's gcc-ld directory) and DT_RELR, which the static-pie applies to
//! itself at start (Rust's bundled musl, 1.2.4+), whatever the C library of the machine that runs it. The
//! list's names do not fit this target (each crate's hash covers the target), so it is ordered only when
//! `DEFER_WORKER_SYMBOL_ORDER` names a list made for it: release.sh makes one from a first link.
//!
//! `DEFER_WORKER_PLAIN_LINK=1` turns all of it off. `DEFER_WORKER_SYMBOL_ORDER=path` replaces the list.
//!
//! Build facts, as `cargo:rustc-env` for `src/cli.rs` (never an error: what cannot be found is "unknown"):
//! - `DEFER_WORKER_COMMIT`: the git commit of this checkout (12 hex digits), "unknown" outside one;
//! - `DEFER_WORKER_BUILD_DATE`: `SOURCE_DATE_EPOCH` when set (reproducible builds), else the time this
//!   script last ran (so: when the commit or the link options last changed), in UTC;
//! - `DEFER_WORKER_TARGET`: the target triple;
//! - `DEFER_WORKER_LINK`: which of the two options above this link uses.
//!
//! The script reruns when the list, these variables, `.git/HEAD` or the branch it points to change, and
//! not on every edit of the sources.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-changed=link/hot-symbols.txt");
    println!("cargo:rerun-if-env-changed=DEFER_WORKER_PLAIN_LINK");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-env-changed=DEFER_WORKER_SYMBOL_ORDER");
    let target = env::var("TARGET").unwrap_or_default();
    let (ordering, relr) = link_layout(&target);
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    println!(
        "cargo:rustc-env=DEFER_WORKER_LINK=symbol ordering: {}, DT_RELR: {}",
        yes_no(ordering),
        yes_no(relr)
    );
    println!("cargo:rustc-env=DEFER_WORKER_TARGET={target}");
    println!("cargo:rustc-env=DEFER_WORKER_COMMIT={}", git_commit());
    println!("cargo:rustc-env=DEFER_WORKER_BUILD_DATE={}", build_date());
}

/// Adds the release link options this target takes; returns (symbol ordering, DT_RELR).
fn link_layout(target: &str) -> (bool, bool) {
    if env::var_os("DEFER_WORKER_PLAIN_LINK").is_some_and(|v| v != "0") {
        return (false, false);
    }
    let given = env::var_os("DEFER_WORKER_SYMBOL_ORDER")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from);
    match target {
        "x86_64-unknown-linux-gnu" => {
            let native = env::var("HOST").is_ok_and(|host| host == target);
            let list = given.unwrap_or_else(|| manifest_dir().join("link/hot-symbols.txt"));
            let ordering = uses_default_lld() && order_symbols(&list);
            let relr = native && glibc_at_least(2, 36);
            if relr {
                println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
            }
            (ordering, relr)
        }
        "x86_64-unknown-linux-musl" => {
            if !use_rust_lld_for_musl() {
                return (false, false);
            }
            println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
            (given.is_some_and(|list| order_symbols(&list)), true)
        }
        _ => (false, false),
    }
}

/// `--symbol-ordering-file` for the bins when the list exists (LLD only).
fn order_symbols(list: &Path) -> bool {
    if !list.is_file() {
        return false;
    }
    println!("cargo:rerun-if-changed={}", list.display());
    println!(
        "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
        list.display()
    );
    // The list names symbols of one toolchain and lock file; others are ignored, not errors.
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    true
}

/// The musl target links through `cc` with the system's `ld`; unless a linker is chosen, point `cc` at
/// the toolchain's LLD (`gcc-ld/ld.lld`, which runs `rust-lld`). Static builds only (the default): the
/// binary then relocates itself, so DT_RELR needs nothing from the machine that runs it.
fn use_rust_lld_for_musl() -> bool {
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER");
    if env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER").is_some() {
        return false;
    }
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if ["linker", "link-self-contained", "fuse-ld", "crt-static"]
        .iter()
        .any(|f| flags.contains(f))
    {
        return false;
    }
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let host = env::var("HOST").unwrap_or_default();
    let Some(sysroot) = run(&rustc, &["--print", "sysroot"], None) else {
        return false;
    };
    let gcc_ld = Path::new(sysroot.trim()).join(format!("lib/rustlib/{host}/bin/gcc-ld"));
    if !gcc_ld.join("ld.lld").is_file() {
        return false;
    }
    println!("cargo:rustc-link-arg-bins=-B{}", gcc_ld.display());
    println!("cargo:rustc-link-arg-bins=-fuse-ld=lld");
    true
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap_or_default())
}

/// Rust 1.90+ links x86_64-unknown-linux-gnu with its own LLD unless a linker or linker flavour is set.
fn uses_default_lld() -> bool {
    if env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_some() {
        return false;
    }
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if flags.contains("linker")
        || flags.contains("link-self-contained")
        || flags.contains("fuse-ld")
    {
        return false;
    }
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Some(out) = run(&rustc, &["-vV"], None) else {
        return false;
    };
    let release = out
        .lines()
        .find_map(|l| l.strip_prefix("release: "))
        .unwrap_or("");
    version_at_least(release, 1, 90)
}

fn glibc_at_least(major: u32, minor: u32) -> bool {
    // "glibc 2.36"
    run("getconf", &["GNU_LIBC_VERSION"], None)
        .and_then(|out| {
            out.split_whitespace()
                .nth(1)
                .map(|v| version_at_least(v, major, minor))
        })
        .unwrap_or(false)
}

fn version_at_least(version: &str, major: u32, minor: u32) -> bool {
    let mut parts = version
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

/// The commit checked out in this crate's own git work tree ("unknown" without git or outside one, e.g.
/// a source tarball or a container build whose context leaves `.git` out). Asks cargo to rerun this
/// script when HEAD moves: `.git/HEAD` (another branch, a detached checkout) and the file of the branch
/// it points to (a commit), or `packed-refs` when that branch has no file of its own.
fn git_commit() -> String {
    let dir = manifest_dir();
    let git = |args: &[&str]| run("git", args, Some(&dir)).map(|s| s.trim().to_string());
    // Only this crate's own repository: not one that merely contains the directory.
    let top = git(&["rev-parse", "--show-toplevel"]);
    let ours = match (top, dir.canonicalize()) {
        (Some(top), Ok(dir)) => Path::new(&top).canonicalize().is_ok_and(|t| t == dir),
        _ => false,
    };
    if !ours {
        return "unknown".into();
    }
    let watch = |git_path: &str| {
        let path = git(&["rev-parse", "--git-path", git_path]).map(|p| dir.join(p));
        match path {
            Some(p) if p.is_file() => {
                println!("cargo:rerun-if-changed={}", p.display());
                true
            }
            _ => false,
        }
    };
    watch("HEAD");
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if !watch(&branch) {
            watch("packed-refs");
        }
    }
    git(&["rev-parse", "--short=12", "HEAD"])
        .filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| "unknown".into())
}

/// `SOURCE_DATE_EPOCH` (seconds) when set and valid, else now; as `YYYY-MM-DDTHH:MM:SSZ`.
fn build_date() -> String {
    let secs = env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .ok()
                .and_then(|d| i64::try_from(d.as_secs()).ok())
        });
    let Some(secs) = secs else {
        return "unknown".into();
    };
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day): Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn run(program: &str, args: &[&str], dir: Option<&Path>) -> Option<String> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

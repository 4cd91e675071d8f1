//! Link-time layout of the `defer-worker` binary, for a smaller resident set (see link/README.md).
//!
//! Two linker options, each only where the toolchain and the C library take it, so a build never fails
//! because of them:
//! - `--symbol-ordering-file=link/hot-symbols.txt`: the functions a worker runs are placed side by side,
//!   so the pages of code the kernel maps in are the ones in use (about 3.5 MB instead of 9 MB of a 12 MB
//!   .text). Needs LLD: the default linker of Rust 1.90+ on x86_64-unknown-linux-gnu.
//! - `-z pack-relative-relocs` (DT_RELR): PIE relocations in a few KB instead of 1.4 MB read at every
//!   start. Needs glibc 2.36+ on the machine that builds (and so on the one that runs the binary).
//!
//! `DEFER_WORKER_PLAIN_LINK=1` turns both off.

use std::env;
use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=link/hot-symbols.txt");
    println!("cargo:rerun-if-env-changed=DEFER_WORKER_PLAIN_LINK");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER");
    if env::var_os("DEFER_WORKER_PLAIN_LINK").is_some_and(|v| v != "0") {
        return;
    }
    let target = env::var("TARGET").unwrap_or_default();
    if target != "x86_64-unknown-linux-gnu" {
        return;
    }
    let native = env::var("HOST").is_ok_and(|host| host == target);
    if uses_default_lld() {
        let list = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap_or_default())
            .join("link/hot-symbols.txt");
        if list.is_file() {
            println!(
                "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
                list.display()
            );
            // The list names symbols of one toolchain and lock file; others are ignored, not errors.
            println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
        }
    }
    if native && glibc_at_least(2, 36) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
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
    let Some(out) = run(&rustc, &["-vV"]) else {
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
    run("getconf", &["GNU_LIBC_VERSION"])
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

fn run(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

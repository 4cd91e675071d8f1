//! Laravel's `FileStore`: one file per key under `<storage>/framework/cache/data`, named by the SHA-1 of
//! the key (no prefix), holding a 10-digit expiry (`9999999999` for `forever`) then `serialize(value)`.
//!
//! Writes go to a temporary file renamed over the entry, so a PHP reader (which takes a shared lock and
//! reads the whole file) never sees half a value. Expired entries read as absent and are left for PHP.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha1::{Digest, Sha1};

/// The FileStore expiry of a `forever` entry (and the cap of any expiry).
pub(super) const FOREVER: i64 = 9_999_999_999;

/// FileStore's path of `key`: `<dir>/<sha1[0:2]>/<sha1[2:4]>/<sha1>`.
pub(super) fn path(dir: &Path, key: &str) -> PathBuf {
    let hash: String = Sha1::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    dir.join(&hash[0..2]).join(&hash[2..4]).join(&hash)
}

/// What `FileStore::getPayload` reads: `Ok(None)` for a missing or expired entry, else the serialized
/// value. `Err(reason)` when the file does not start with a 10-digit expiry.
pub(super) fn read(path: &Path, now: i64) -> std::io::Result<Result<Option<Vec<u8>>, String>> {
    Ok(read_entry(path, now)?.map(|entry| entry.map(|(_, value)| value)))
}

/// A live entry: its expiry (UNIX seconds) and its serialized value.
pub(super) type Entry = (i64, Vec<u8>);

/// [`read`] with the entry's expiry, which `FileStore::increment` keeps.
pub(super) fn read_entry(path: &Path, now: i64) -> std::io::Result<Result<Option<Entry>, String>> {
    let content = match std::fs::read(path) {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Ok(None)),
        Err(e) => return Err(e),
    };
    let (expiry, value) = content.split_at(content.len().min(10));
    let Some(expiry) = std::str::from_utf8(expiry)
        .ok()
        .and_then(|e| e.parse::<i64>().ok())
    else {
        return Ok(Err(
            "the file does not start with a 10-digit expiry".to_owned()
        ));
    };
    if now >= expiry {
        return Ok(Ok(None));
    }
    Ok(Ok(Some((expiry, value.to_vec()))))
}

/// `FileStore::expiration`: `now + seconds`, `forever` for 0 or past the 10-digit range.
pub(super) fn expiration(now: i64, seconds: Option<i64>) -> i64 {
    match seconds {
        None | Some(0) => FOREVER,
        Some(s) => now.saturating_add(s).min(FOREVER),
    }
}

/// The file content for `serialized` expiring at `expiry`.
pub(super) fn content(expiry: i64, serialized: &[u8]) -> Vec<u8> {
    let mut out = format!("{expiry:010}").into_bytes();
    out.extend_from_slice(serialized);
    out
}

/// `FileStore::forget`: deletes the entry; false when there was none.
pub(super) fn remove(path: &Path) -> std::io::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes `content` to a temporary file beside `path` and renames it over `path`. Directories are
/// created like PHP's `makeDirectory(0777, recursive)`, under the process umask.
pub(super) fn write_atomically(
    path: &Path,
    content: &[u8],
) -> Result<(), (&'static str, std::io::Error)> {
    let dir = path.parent().ok_or((
        "create the directory of",
        std::io::Error::other("no parent directory"),
    ))?;
    std::fs::create_dir_all(dir).map_err(|e| ("create the directory of", e))?;
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("cache"),
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(content)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| ("write", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_is_laravels_sha1_layout() {
        // sha1("illuminate:queue:restart"); PHP's FileStore reads it back in tests/ops_restart.rs.
        let p = path(
            Path::new("/s/framework/cache/data"),
            super::super::RESTART_KEY,
        );
        assert_eq!(
            p,
            Path::new("/s/framework/cache/data/ee/2f/ee2f842aa7bb1f53edf3a2ed2c09a1807ffa6c90")
        );
    }

    #[test]
    fn expiration_is_file_stores() {
        assert_eq!(expiration(1_700_000_000, Some(300)), 1_700_000_300);
        assert_eq!(expiration(1_700_000_000, Some(0)), FOREVER);
        assert_eq!(expiration(1_700_000_000, None), FOREVER);
        assert_eq!(expiration(9_999_999_000, Some(5000)), FOREVER);
        assert_eq!(content(1_700_000_300, b"i:1;"), b"1700000300i:1;");
    }
}

//! Graph API versions: the known ones with the date each stops being served, what `WHATSAPP_API_URL`
//! names, and whether that version is live, close to its end, expired or newer than this table.
//!
//! The table is Meta's "Available Graph API versions" (developers.facebook.com/docs/graph-api/changelog,
//! read on [`CHECKED`]); a call to an expired version is served by the next available one, whose
//! changes can break the request (docs/restrosaas.md §4.12). Pure: the caller passes today's date and
//! logs or refuses; nothing here reads the clock or the environment.

use chrono::NaiveDate;

/// The day the table was read from Meta's changelog.
pub const CHECKED: &str = "2026-12-06";

/// The version defer-worker uses when `WHATSAPP_API_URL` is unset (the app's own default, v18.0,
/// expired on 2026-01-26).
pub const DEFAULT_VERSION: &str = "v25.0";

/// `WHATSAPP_API_URL`'s default.
pub const DEFAULT_API_URL: &str = "https://graph.facebook.com/v25.0";

/// Days before its end from which a version is reported as ending soon.
pub const WARN_DAYS: i64 = 90;

/// One Graph API version: `(major, minor, released, available until)`; `None` = not announced yet.
type Known = (u32, u32, &'static str, Option<&'static str>);

/// Meta's table, newest first (v13.0 and older all ended before 2024-06).
const KNOWN: &[Known] = &[
    (26, 0, "2026-07-29", None),
    (25, 0, "2026-02-18", Some("2028-07-29")),
    (24, 0, "2025-10-08", Some("2028-02-18")),
    (23, 0, "2025-05-29", Some("2027-10-08")),
    (22, 0, "2025-01-21", Some("2027-05-20")),
    (21, 0, "2024-10-02", Some("2027-01-21")),
    (20, 0, "2024-05-21", Some("2026-09-24")),
    (19, 0, "2024-01-23", Some("2026-05-21")),
    (18, 0, "2023-09-12", Some("2026-01-26")),
    (17, 0, "2023-05-23", Some("2025-09-12")),
    (16, 0, "2023-02-02", Some("2025-05-14")),
    (15, 0, "2022-09-15", Some("2024-11-20")),
    (14, 0, "2022-05-25", Some("2024-09-17")),
    (13, 0, "2022-02-08", Some("2024-05-28")),
];

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("the table's dates are valid")
}

/// Where a configured version stands on a given day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// In the table and served; `until` is `None` while Meta has not announced its end.
    Live { until: Option<NaiveDate> },
    /// Served for `days` more days (at most [`WARN_DAYS`]).
    Ending { until: NaiveDate, days: i64 },
    /// No longer served since `until` (`None`: older than every version in the table).
    Expired { until: Option<NaiveDate> },
    /// Newer than every version in the table: accepted, the table may be out of date.
    Newer,
    /// Between two known versions but not one of them (e.g. `v22.5`): not a Meta version.
    Unknown,
    /// The URL names no `vN.N` segment: Meta serves its oldest available version then.
    Unversioned,
}

/// The `vN.N` path segment of `api_url`, e.g. `v25.0` in `https://graph.facebook.com/v25.0`.
pub fn version_of(api_url: &str) -> Option<String> {
    let path = api_url.split_once("://").map_or(api_url, |(_, rest)| rest);
    path.split('/')
        .skip(1)
        .find(|seg| parse(seg).is_some())
        .map(str::to_owned)
}

fn parse(seg: &str) -> Option<(u32, u32)> {
    let (major, minor) = seg.strip_prefix('v')?.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// How `version` (`vN.N`, or `None` for an unversioned URL) stands on `today`.
pub fn standing(version: Option<&str>, today: NaiveDate) -> Standing {
    let Some((major, minor)) = version.and_then(parse) else {
        return Standing::Unversioned;
    };
    let newest = KNOWN[0];
    let oldest = KNOWN[KNOWN.len() - 1];
    if (major, minor) > (newest.0, newest.1) {
        return Standing::Newer;
    }
    if (major, minor) < (oldest.0, oldest.1) {
        return Standing::Expired { until: None };
    }
    let Some(&(_, _, _, until)) = KNOWN.iter().find(|k| (k.0, k.1) == (major, minor)) else {
        return Standing::Unknown;
    };
    let Some(until) = until.map(date) else {
        return Standing::Live { until: None };
    };
    let days = (until - today).num_days();
    if days <= 0 {
        Standing::Expired { until: Some(until) }
    } else if days <= WARN_DAYS {
        Standing::Ending { until, days }
    } else {
        Standing::Live { until: Some(until) }
    }
}

/// The end date of `version` as `config` shows it: a date, `not announced`, or why there is none.
pub fn end_date_text(version: Option<&str>, today: NaiveDate) -> String {
    match standing(version, today) {
        Standing::Live { until: Some(d) } => format!("{version} until {d}", version = v(version)),
        Standing::Live { until: None } => format!("{} (end not announced yet)", v(version)),
        Standing::Ending { until, days } => {
            format!("{} until {until} ({days} days left)", v(version))
        }
        Standing::Expired { until: Some(d) } => format!("{} expired on {d}", v(version)),
        Standing::Expired { until: None } => format!("{} expired", v(version)),
        Standing::Newer => format!("{} (newer than the table of {CHECKED})", v(version)),
        Standing::Unknown => format!("{} (not a Graph API version)", v(version)),
        Standing::Unversioned => "no version in the URL".to_owned(),
    }
}

fn v(version: Option<&str>) -> &str {
    version.unwrap_or("")
}

/// The start-up check refused the configured version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error(
        "WHATSAPP_API_URL names Graph API {version}, which Meta stopped serving {when}: calls are \
         answered by a newer version whose changes can break them. Set WHATSAPP_API_URL to \
         {DEFAULT_API_URL} (Graph API {DEFAULT_VERSION}), or WHATSAPP_ALLOW_EXPIRED_API_VERSION=true \
         to start anyway"
    )]
    Expired { version: String, when: String },
    #[error(
        "WHATSAPP_API_URL names {version}, which is not a Graph API version (known: v13.0 to \
         v26.0, table of {CHECKED}); set WHATSAPP_API_URL to {DEFAULT_API_URL}"
    )]
    NotAVersion { version: String },
}

/// What to say at start about `api_url`: `Ok(None)` for a live version, `Ok(Some(line))` for a
/// warning or a note to log, `Err` to refuse the start (an expired version, unless `allow_expired`).
pub fn check(
    api_url: &str,
    allow_expired: bool,
    today: NaiveDate,
) -> Result<Option<String>, VersionError> {
    let version = version_of(api_url);
    let name = v(version.as_deref()).to_owned();
    match standing(version.as_deref(), today) {
        Standing::Live { .. } => Ok(None),
        Standing::Ending { until, days } => Ok(Some(format!(
            "WHATSAPP_API_URL names Graph API {name}, which Meta stops serving on {until} (in {days} \
             days): move WHATSAPP_API_URL to {DEFAULT_API_URL} (Graph API {DEFAULT_VERSION})"
        ))),
        Standing::Expired { until } => {
            let when = until.map_or_else(
                || "before the oldest version still listed".to_owned(),
                |d| format!("on {d}"),
            );
            let err = VersionError::Expired {
                version: name,
                when,
            };
            if allow_expired {
                Ok(Some(format!(
                    "{err} (starting because WHATSAPP_ALLOW_EXPIRED_API_VERSION=true)"
                )))
            } else {
                Err(err)
            }
        }
        Standing::Newer => Ok(Some(format!(
            "WHATSAPP_API_URL names Graph API {name}, newer than defer-worker's table of versions \
             (read {CHECKED}): accepted; its end date is not known here"
        ))),
        Standing::Unknown => Err(VersionError::NotAVersion { version: name }),
        Standing::Unversioned => Ok(Some(
            "WHATSAPP_API_URL names no Graph API version (…/vNN.0): Meta then serves the oldest \
             version still available"
                .to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        date(s)
    }

    #[test]
    fn the_version_is_the_urls_vnn_segment() {
        assert_eq!(version_of(DEFAULT_API_URL).as_deref(), Some("v25.0"));
        assert_eq!(
            version_of("http://127.0.0.1:8080/v21.0/").as_deref(),
            Some("v21.0")
        );
        assert_eq!(version_of("https://graph.facebook.com"), None);
        assert_eq!(version_of("https://v25.0.example/x"), None, "not the host");
    }

    #[test]
    fn versions_stand_by_their_end_date() {
        let today = day("2026-12-06");
        assert_eq!(
            standing(Some("v25.0"), today),
            Standing::Live {
                until: Some(day("2028-07-29"))
            }
        );
        assert_eq!(
            standing(Some("v26.0"), today),
            Standing::Live { until: None }
        );
        assert_eq!(
            standing(Some("v21.0"), today),
            Standing::Ending {
                until: day("2027-01-21"),
                days: 46
            }
        );
        assert_eq!(
            standing(Some("v18.0"), today),
            Standing::Expired {
                until: Some(day("2026-01-26"))
            }
        );
        assert_eq!(
            standing(Some("v2.3"), today),
            Standing::Expired { until: None }
        );
        assert_eq!(standing(Some("v27.0"), today), Standing::Newer);
        assert_eq!(standing(Some("v22.5"), today), Standing::Unknown);
        // The last day is no longer served.
        assert!(matches!(
            standing(Some("v20.0"), day("2026-09-24")),
            Standing::Expired { .. }
        ));
        assert!(matches!(
            standing(Some("v20.0"), day("2026-09-23")),
            Standing::Ending { days: 1, .. }
        ));
    }

    #[test]
    fn an_expired_version_is_refused_unless_allowed_naming_the_key_and_the_way_out() {
        let today = day("2026-12-06");
        let err = check("https://graph.facebook.com/v18.0", false, today).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(
                "WHATSAPP_API_URL names Graph API v18.0, which Meta stopped serving on 2026-01-26"
            ),
            "{msg}"
        );
        assert!(msg.contains("Set WHATSAPP_API_URL to https://graph.facebook.com/v25.0"));
        assert!(msg.contains("WHATSAPP_ALLOW_EXPIRED_API_VERSION=true"));
        let allowed = check("https://graph.facebook.com/v18.0", true, today)
            .unwrap()
            .unwrap();
        assert!(allowed.contains("starting because"), "{allowed}");
        let warning = check("https://graph.facebook.com/v21.0", false, today)
            .unwrap()
            .unwrap();
        assert!(
            warning.contains("v21.0") && warning.contains("2027-01-21"),
            "{warning}"
        );
        assert!(warning.contains("move WHATSAPP_API_URL to https://graph.facebook.com/v25.0"));
        assert_eq!(check(DEFAULT_API_URL, false, today), Ok(None));
        let note = check("https://graph.facebook.com/v31.0", false, today)
            .unwrap()
            .unwrap();
        assert!(note.contains("newer than"), "{note}");
        assert!(check("https://graph.facebook.com/v22.5", true, today).is_err());
    }

    #[test]
    fn the_default_is_live_for_more_than_the_warning_window() {
        let today = day(CHECKED);
        assert!(matches!(
            standing(Some(DEFAULT_VERSION), today),
            Standing::Live { until: Some(_) }
        ));
        assert_eq!(
            version_of(DEFAULT_API_URL).as_deref(),
            Some(DEFAULT_VERSION)
        );
        assert_eq!(
            end_date_text(Some(DEFAULT_VERSION), today),
            "v25.0 until 2028-07-29"
        );
    }
}

//! The console's HTML: the page frame (navigation, a small stylesheet readable on a phone), escaping,
//! and the few shared pieces (tables, confirmation forms, the login form). No script.

use std::fmt::Write;

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a path segment or query value (a queue name may hold `{`, `}` or spaces).
pub fn enc(s: &str) -> String {
    crate::util::url::encode(s)
}

const STYLE: &str = "\
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1d2330;background:#f5f6f8}\
header{background:#1d2330;color:#fff;padding:.6rem 1rem;display:flex;flex-wrap:wrap;gap:.4rem 1.2rem;align-items:center}\
header b{margin-right:.6rem}header a{color:#cfd6e4;text-decoration:none;padding:.2rem 0}header a.on{color:#fff;border-bottom:2px solid #6ea8fe}\
main{padding:1rem;max-width:1200px;margin:0 auto}h1{font-size:1.3rem;margin:.2rem 0 1rem}h2{font-size:1.05rem;margin:1.4rem 0 .5rem}\
.scroll{overflow-x:auto;background:#fff;border:1px solid #dde1e7;border-radius:6px}\
table{border-collapse:collapse;width:100%}th,td{padding:.45rem .6rem;text-align:left;border-bottom:1px solid #eceef2;white-space:nowrap}\
th{font-weight:600;background:#fafbfc}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}td.wrap{white-space:normal;word-break:break-word;min-width:14rem}\
.tag{display:inline-block;padding:0 .45rem;border-radius:9px;font-size:.85em;background:#e7f5ec;color:#1a7f37}.tag.off{background:#fff4e5;color:#9a6700}\
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:1rem}.card{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:.8rem}\
.card h2{margin:0 0 .4rem}svg{width:100%;height:auto;display:block}\
form.inline{display:inline}button,.btn{font:inherit;padding:.35rem .8rem;border-radius:5px;border:1px solid #8c96a8;background:#fff;color:#1d2330;cursor:pointer;text-decoration:none;display:inline-block}\
button.danger{border-color:#cf222e;color:#cf222e}button.primary{background:#0969da;border-color:#0969da;color:#fff}\
form.search{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;margin-bottom:1rem}form.search label{display:flex;flex-direction:column;font-size:.85em}\
input,select{font:inherit;padding:.3rem .4rem;border:1px solid #b8c0cc;border-radius:4px}\
pre{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:.7rem;overflow-x:auto;font-size:.85em;white-space:pre-wrap;word-break:break-word}\
.msg{background:#ddf4ff;border:1px solid #54aeff;padding:.5rem .8rem;border-radius:6px}.err{background:#ffebe9;border:1px solid #ff8182;padding:.5rem .8rem;border-radius:6px}\
.muted{color:#5b6475}dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}dd{margin:0;word-break:break-word}\
.actions{display:flex;flex-wrap:wrap;gap:.5rem;margin:1rem 0}";

/// The navigation entries: (path, title).
const NAV: &[(&str, &str)] = &[
    ("/", "Overview"),
    ("/workers", "Workers"),
    ("/failed", "Failed jobs"),
    ("/queues", "Queues"),
];

/// A whole page: `title`, the navigation with `active` (a NAV path) marked, and `body`.
pub fn page(title: &str, active: &str, body: &str) -> String {
    let mut nav = String::new();
    for (path, name) in NAV {
        let on = if *path == active { " class=\"on\"" } else { "" };
        let _ = write!(nav, "<a href=\"{path}\"{on}>{name}</a>");
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{t} · defer-worker</title><style>{STYLE}</style></head>\
         <body><header><b>defer-worker</b>{nav}</header><main><h1>{t}</h1>{body}</main></body></html>",
        t = esc(title)
    )
}

/// A table: header cells (a leading `#` right-aligns the column) and rows of already-escaped cells.
pub fn table(headers: &[&str], rows: &[Vec<String>], id: &str) -> String {
    let numeric: Vec<bool> = headers.iter().map(|h| h.starts_with('#')).collect();
    let mut out = format!("<div class=\"scroll\"><table id=\"{id}\"><thead><tr>");
    for (h, n) in headers.iter().zip(&numeric) {
        let class = if *n { " class=\"n\"" } else { "" };
        let _ = write!(out, "<th{class}>{}</th>", esc(h.trim_start_matches('#')));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            let class = match (numeric.get(i), cell.len() > 60) {
                (Some(true), _) => " class=\"n\"",
                (_, true) => " class=\"wrap\"",
                _ => "",
            };
            let _ = write!(out, "<td{class}>{cell}</td>");
        }
        out.push_str("</tr>");
    }
    if rows.is_empty() {
        let _ = write!(
            out,
            "<tr><td colspan=\"{}\" class=\"muted\">Nothing here.</td></tr>",
            headers.len()
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

/// A one-button form posting to `action` (with hidden `fields`).
pub fn post_button(action: &str, label: &str, class: &str, fields: &[(&str, &str)]) -> String {
    let mut hidden = String::new();
    for (k, v) in fields {
        let _ = write!(
            hidden,
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            esc(k),
            esc(v)
        );
    }
    format!(
        "<form class=\"inline\" method=\"post\" action=\"{}\">{hidden}<button type=\"submit\" class=\"{class}\">{}</button></form>",
        esc(action),
        esc(label)
    )
}

/// The message a redirect carried (`?msg=` / `?err=`), if any.
pub fn flash(query: &super::form::Form) -> String {
    let mut out = String::new();
    if let Some(m) = query.non_empty("msg") {
        let _ = write!(out, "<p class=\"msg\" id=\"msg\">{}</p>", esc(&m));
    }
    if let Some(e) = query.non_empty("err") {
        let _ = write!(out, "<p class=\"err\" id=\"err\">{}</p>", esc(&e));
    }
    out
}

/// The login form (a token; sets an HttpOnly cookie).
pub fn login_page(error: Option<&str>) -> String {
    let err = error
        .map(|e| format!("<p class=\"err\">{}</p>", esc(e)))
        .unwrap_or_default();
    page(
        "Sign in",
        "",
        &format!(
            "{err}<form method=\"post\" action=\"/login\" class=\"search\">\
             <label>Console token<input type=\"password\" name=\"token\" id=\"token\" autocomplete=\"current-password\" required></label>\
             <button type=\"submit\" class=\"primary\" id=\"login\">Sign in</button></form>\
             <p class=\"muted\">The admin token (DEFER_WORKER_CONSOLE_TOKEN) or the read-only one.</p>"
        ),
    )
}

/// Seconds as `42 s`, `3 min`, `2 h 5 min`, `3 d`.
pub fn age(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_ages() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(age(5.0), "5 s");
        assert_eq!(age(600.0), "10 min");
        assert_eq!(age(7500.0), "2 h 5 min");
        assert_eq!(age(300_000.0), "3 d");
    }
}

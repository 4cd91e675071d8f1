//! Sending over SMTP with lettre's tokio transport (rustls, pooled): one cached transport per distinct
//! server and login (the app's `.env` server, and each vendor's `settings.mail_*` server), built on first
//! use and kept for the life of the worker. Certificates and host names are always checked: against the
//! web PKI roots plus, optionally, the CA file of the action's options.
//!
//! Errors say what the worker should do: SMTP 4xx replies, timeouts, TLS and connection failures are
//! worth retrying; 5xx replies (including a refused login) are permanent. Their text names the server
//! and the SMTP code and keeps the server's reply with every address in it blanked; it never contains
//! a recipient, the login or the password. This module does not render, log addresses or decide which
//! mails to send.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context};
use lettre::message::{Mailbox, Message, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::PoolConfig;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::options::{Encryption, Sender, SmtpServer};
use super::render::{Addressee, Rendered};

/// Why a mail was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// Worth trying again later.
    pub retry: bool,
    /// The server could not be reached or talked to at all (no SMTP reply code): other mails over the
    /// same route would fail the same way.
    pub connection: bool,
    /// What happened; no address, login or password.
    pub message: String,
}

/// Longest part of a server reply kept in an error.
const MAX_REPLY: usize = 200;

/// The server's reply with every word holding an `@` replaced by `<address>`, on one line.
pub fn redact(reply: &str) -> String {
    let words: Vec<&str> = reply
        .split_whitespace()
        .map(|w| if w.contains('@') { "<address>" } else { w })
        .collect();
    let mut out = words.join(" ");
    if out.len() > MAX_REPLY {
        let mut cut = MAX_REPLY;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// Sorts a lettre error into retry / permanent, with a message fit for failed_jobs.
pub fn classify(err: &lettre::transport::smtp::Error, server: &SmtpServer) -> SendError {
    let reply = std::error::Error::source(err)
        .map(|s| redact(&s.to_string()))
        .unwrap_or_default();
    let reply = if reply.is_empty() {
        String::new()
    } else {
        format!(": {reply}")
    };
    if let Some(code) = err.status() {
        let permanent = err.is_permanent();
        return SendError {
            retry: !permanent,
            connection: false,
            message: format!(
                "SMTP {} error {code} from {server}{reply}",
                if permanent { "permanent" } else { "transient" }
            ),
        };
    }
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_tls() {
        "TLS failure"
    } else if err.is_client() {
        "client error"
    } else if err.is_response() {
        "unreadable reply"
    } else {
        "connection failure"
    };
    SendError {
        // A client error is lettre refusing what we asked (e.g. AUTH on a plain connection the server
        // does not offer it on): the configuration, not the moment, is wrong.
        retry: !err.is_client(),
        connection: true,
        message: format!("SMTP {what} with {server}{reply}"),
    }
}

/// The mail as lettre builds it: `multipart/alternative` with the text first and the HTML second,
/// UTF-8 names and subject encoded by lettre (RFC 2047), a Date and a Message-ID.
pub fn build_message(
    from: &Sender,
    to: &Addressee,
    subject: &str,
    body: Rendered,
) -> Result<Message, SendError> {
    let bad = |what: &str| SendError {
        retry: false,
        connection: false,
        message: format!("the {what} e-mail address is not valid"),
    };
    let from_addr: Address = from.address.trim().parse().map_err(|_| bad("sender"))?;
    let to_addr: Address = to.email.trim().parse().map_err(|_| bad("recipient"))?;
    let name = |n: &str| Some(n.trim().to_owned()).filter(|n| !n.is_empty());
    Message::builder()
        .from(Mailbox::new(name(&from.name), from_addr))
        .to(Mailbox::new(name(&to.name), to_addr))
        .subject(subject)
        .message_id(None)
        .multipart(MultiPart::alternative_plain_html(body.text, body.html))
        .map_err(|e| SendError {
            retry: false,
            connection: false,
            message: format!("cannot build the mail: {e}"),
        })
}

type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// The SMTP transports, one per distinct server and login.
pub struct Mailer {
    transports: Mutex<HashMap<SmtpServer, Transport>>,
    /// The CA file's PEM, checked at start (lettre's `Certificate` cannot be cloned per transport).
    roots: Option<Vec<u8>>,
    timeout: Duration,
    pool_size: u32,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("extra_roots", &self.roots.is_some())
            .field("timeout", &self.timeout)
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// `ca_file`: extra trusted roots (PEM). Read and checked now, so a bad file stops the worker at
    /// start rather than failing every mail.
    pub fn new(
        ca_file: Option<&Path>,
        timeout: Duration,
        pool_size: u32,
    ) -> anyhow::Result<Mailer> {
        let roots = match ca_file {
            None => None,
            Some(path) => {
                let pem = std::fs::read(path)
                    .with_context(|| format!("ca_file {}: cannot read", path.display()))?;
                if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                    bail!("ca_file {}: no PEM certificate in it", path.display());
                }
                Certificate::from_pem(&pem)
                    .map_err(|e| anyhow::anyhow!("ca_file {}: {e}", path.display()))?;
                Some(pem)
            }
        };
        Ok(Mailer {
            transports: Mutex::new(HashMap::new()),
            roots,
            timeout,
            pool_size,
        })
    }

    /// How many transports (distinct servers) are cached.
    pub fn cached(&self) -> usize {
        self.transports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    fn transport(&self, server: &SmtpServer) -> Result<Transport, SendError> {
        let mut cache = self.transports.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = cache.get(server) {
            return Ok(t.clone());
        }
        let t = self.build(server).map_err(|e| SendError {
            retry: false,
            connection: false,
            message: format!("cannot set up SMTP for {server}: {e}"),
        })?;
        cache.insert(server.clone(), t.clone());
        Ok(t)
    }

    fn build(&self, server: &SmtpServer) -> Result<Transport, lettre::transport::smtp::Error> {
        let params = || {
            let mut b = TlsParameters::builder(server.host.clone());
            if let Some(pem) = &self.roots {
                b = b.add_root_certificate(Certificate::from_pem(pem)?);
            }
            b.build_rustls()
        };
        let tls = match server.encryption {
            Encryption::StartTls => Tls::Required(params()?),
            Encryption::Implicit => Tls::Wrapper(params()?),
            Encryption::None => Tls::None,
        };
        let mut b = Transport::builder_dangerous(server.host.as_str())
            .port(server.port)
            .tls(tls)
            .timeout(Some(self.timeout))
            .pool_config(PoolConfig::new().max_size(self.pool_size));
        if let Some(user) = &server.username {
            b = b.credentials(Credentials::new(
                user.clone(),
                server.password.clone().unwrap_or_default(),
            ));
        }
        Ok(b.build())
    }

    /// Connects to `server` as a send would (TCP, EHLO, STARTTLS or TLS with the certificate
    /// checked, AUTH) and quits, sending no mail. For `defer-worker check`.
    pub async fn test_connection(&self, server: &SmtpServer) -> Result<(), SendError> {
        let transport = self.transport(server)?;
        match transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(SendError {
                retry: true,
                connection: true,
                message: format!("SMTP server {server} closed the connection after the greeting"),
            }),
            Err(e) => Err(classify(&e, server)),
        }
    }

    /// Hands one mail to `server`; `Ok` once the server accepted it (`250` after DATA).
    pub async fn send(&self, server: &SmtpServer, message: Message) -> Result<(), SendError> {
        let transport = self.transport(server)?;
        transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| classify(&e, server))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_lose_their_addresses() {
        assert_eq!(
            redact("5.1.1 <zoe@example.com>:   Recipient\naddress rejected"),
            "5.1.1 <address> Recipient address rejected"
        );
        let long = "x".repeat(300);
        assert!(redact(&long).chars().count() <= MAX_REPLY + 1);
    }

    #[test]
    fn messages_are_multipart_alternative_with_utf8_headers() {
        let from = Sender {
            address: "noreply@restro.test".into(),
            name: "Café Müller".into(),
        };
        let to = Addressee {
            name: "Zoë".into(),
            email: "zoe@example.com".into(),
        };
        let body = Rendered {
            html: "<p>Grüße</p>".into(),
            text: "Grüße".into(),
        };
        let msg = build_message(&from, &to, "Bestellung 🍕", body).unwrap();
        let raw = String::from_utf8(msg.formatted()).unwrap();
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(raw.contains("Subject: Bestellung =?utf-8?b?"), "{raw}");
        assert!(
            raw.contains("From: =?utf-8?b?") && raw.contains("Message-ID: <"),
            "{raw}"
        );
        let bad = Addressee {
            name: String::new(),
            email: "not an address".into(),
        };
        let err = build_message(
            &from,
            &bad,
            "s",
            Rendered {
                html: String::new(),
                text: String::new(),
            },
        )
        .unwrap_err();
        assert!(
            !err.retry && !err.message.contains("not an address"),
            "{err:?}"
        );
    }

    #[test]
    fn a_bad_ca_file_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ca.pem");
        std::fs::write(&f, "hello").unwrap();
        let err = Mailer::new(Some(&f), Duration::from_secs(1), 1).unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
        let err = Mailer::new(
            Some(&dir.path().join("missing.pem")),
            Duration::from_secs(1),
            1,
        )
        .unwrap_err();
        assert!(err.to_string().contains("cannot read"), "{err}");
    }
}

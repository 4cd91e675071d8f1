//! The `email` action kind: the app's new-order mails (customer and vendor, "Order Invoice") rendered
//! from `templates/email/` and sent over SMTP with lettre. See `action` for the decisions taken where
//! the app is inconsistent, and docs/email.md for operators.

mod action;
pub mod date;
mod options;
pub mod render;
pub mod smtp;

pub use action::EmailAction;
pub use options::{
    vendor_route, EmailOptions, Encryption, MailRoute, MailSettings, OnMissingRecipient, Sender,
    SmtpServer, Transport, VendorMailError,
};
pub use render::{invoice, Addressee, Invoice, InvoiceFields, MailKind, Rendered, Templates};
pub use smtp::{Mailer, SendError};

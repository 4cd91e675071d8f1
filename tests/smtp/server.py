#!/usr/bin/python3
"""A real SMTP server for defer-worker's e-mail tests (Debian's python3-aiosmtpd).

Listens on 127.0.0.1 on a free port and prints `READY <port>` on stdout once it accepts connections.
Every accepted message is written to --maildir as <n>.eml (the bytes received after DATA) plus <n>.json:
the envelope, whether the session was TLS and who authenticated, and the message as Python's own e-mail
parser reads it (decoded From/To/Subject, Content-Type, the text and HTML parts), so the Rust tests can
check headers and bodies with a parser that is not ours.

  --tls starttls|implicit|none   STARTTLS required before MAIL (default), TLS from the first byte, or none
  --cert/--key PEM files         the server certificate (needed unless --tls none)
  --auth USER:PASSWORD           require AUTH (LOGIN and PLAIN offered; only over TLS with starttls)
  --auth-exclude MECH            do not offer this mechanism (e.g. PLAIN, to force LOGIN)
  --port N                       listen on this port (default: a free one); restarting on the same port
                                 lets a test stop and start "the" server under a running worker
  --rules FILE                   JSON {"rcpt": {"<address>": "<reply>"}}, read at every RCPT TO: a listed
                                 recipient gets that reply (e.g. "451 4.3.0 Try again later" or
                                 "550 5.1.1 Mailbox unavailable") instead of 250. Edit it between attempts.

Stops on SIGTERM/SIGINT or when stdin closes (so a dead test never leaves it running).
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import signal
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--maildir", required=True)
    p.add_argument("--tls", choices=["starttls", "implicit", "none"], default="starttls")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--auth")
    p.add_argument("--auth-exclude", action="append", default=[])
    p.add_argument("--rules")
    p.add_argument("--port", type=int, default=0)
    return p.parse_args()


def summary(raw: bytes) -> dict:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    parts = {}
    for part in msg.walk():
        ctype = part.get_content_type()
        if part.is_multipart():
            continue
        content = part.get_content()
        if isinstance(content, str):
            content = content.replace("\r\n", "\n")
        parts.setdefault(ctype, content)
    return {
        "from": str(msg["From"]),
        "to": str(msg["To"]),
        "subject": str(msg["Subject"]),
        "content_type": msg.get_content_type(),
        "mime_version": str(msg["MIME-Version"]),
        "message_id": str(msg["Message-ID"]),
        "date": str(msg["Date"]),
        "text": parts.get("text/plain"),
        "html": parts.get("text/html"),
        "part_types": [p.get_content_type() for p in msg.walk()],
    }


class Handler:
    def __init__(self, args):
        self.args = args
        self.count = 0

    def rules(self) -> dict:
        if not self.args.rules or not os.path.exists(self.args.rules):
            return {}
        with open(self.args.rules, encoding="utf-8") as f:
            return json.load(f).get("rcpt", {})

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.rules().get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        name = os.path.join(self.args.maildir, f"{os.getpid()}-{self.count:04d}")
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "auth_user": session.auth_data if session.authenticated else None,
            "message": summary(raw),
        }
        with open(name + ".eml.tmp", "wb") as f:
            f.write(raw)
        with open(name + ".json.tmp", "w", encoding="utf-8") as f:
            json.dump(meta, f, ensure_ascii=False, indent=1)
        # The .json appears last and atomically: a test that sees it sees the whole message.
        os.rename(name + ".eml.tmp", name + ".eml")
        os.rename(name + ".json.tmp", name + ".json")
        return "250 Message accepted for delivery"


def make_authenticator(expected: str):
    user, _, password = expected.partition(":")

    def authenticate(server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = auth_data.login.decode() == user and auth_data.password.decode() == password
        return AuthResult(success=ok, handled=False, auth_data=f"{user} via {mechanism}" if ok else None)

    return authenticate


async def main():
    args = parse_args()
    os.makedirs(args.maildir, exist_ok=True)
    handler = Handler(args)
    context = None
    if args.tls != "none":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)

    def factory():
        kwargs = {
            "hostname": "smtp.test",
            "ident": "defer-worker test SMTP",
            "auth_exclude_mechanism": args.auth_exclude,
        }
        if args.auth:
            kwargs["authenticator"] = make_authenticator(args.auth)
            kwargs["auth_required"] = True
        if args.tls == "starttls":
            kwargs["tls_context"] = context
            kwargs["require_starttls"] = True
        else:
            # Implicit TLS (the socket is TLS already) or a plain test server: AUTH is allowed as is.
            kwargs["auth_require_tls"] = False
        return SMTP(handler, **kwargs)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        factory, host="127.0.0.1", port=args.port, ssl=context if args.tls == "implicit" else None
    )
    port = server.sockets[0].getsockname()[1]
    print(f"READY {port}", flush=True)

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.read(1) else None)
    await stop.wait()
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())

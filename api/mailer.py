"""Sends queued mail through any SMTP relay (standard settings: SMTP_HOST, SMTP_PORT,
SMTP_USER, SMTP_PASSWORD, SMTP_STARTTLS, SMTP_FROM), off the request path: each API
process runs one sender task that takes from `stores.mail_queue`."""

from __future__ import annotations

import asyncio
import logging
import smtplib
from email.message import EmailMessage
from email.utils import make_msgid

from stores.mail_queue import Mail, MailQueue
from stores.settings import Settings

log = logging.getLogger("api.mailer")
MAX_ATTEMPTS = 5


class SmtpSender:
    def __init__(self, settings: Settings) -> None:
        self.host = settings.smtp_host
        self.port = settings.smtp_port
        self.user = settings.smtp_user
        self.password = settings.smtp_password
        self.starttls = settings.smtp_starttls
        self.sender = settings.smtp_from

    def _connect(self) -> smtplib.SMTP:
        smtp = smtplib.SMTP(self.host, self.port, timeout=10)
        if self.starttls:
            smtp.starttls()
        if self.user and self.password:
            smtp.login(self.user, self.password)
        return smtp

    def send(self, mail: Mail) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message["Message-ID"] = make_msgid(domain="agora.localhost")
        message.set_content(mail.text)
        with self._connect() as smtp:
            smtp.send_message(message)

    def ping(self) -> None:
        with self._connect() as smtp:
            code, _ = smtp.noop()
            if code != 250:
                raise ConnectionError(f"SMTP NOOP answered {code}")


async def run_sender(queue: MailQueue, sender: SmtpSender, stop: asyncio.Event) -> None:
    """Sends until `stop` is set; a failed send is retried (5 attempts, then dropped
    with a log line that names no address)."""
    await queue.requeue_stranded()
    while not stop.is_set():
        try:
            taken = await queue.take(wait_seconds=1)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a damaged entry or Redis trouble: log, go on
            log.warning("mail queue: %s", type(exc).__name__)
            await asyncio.sleep(1)
            continue
        if taken is None:
            continue
        raw, mail = taken
        try:
            await asyncio.to_thread(sender.send, mail)
        except (OSError, smtplib.SMTPException) as exc:
            if mail.attempts + 1 >= MAX_ATTEMPTS:
                log.error("mail dropped after %d attempts: %s", MAX_ATTEMPTS, type(exc).__name__)
                await queue.done(raw)
            else:
                log.warning("mail send failed (%s); retrying", type(exc).__name__)
                await queue.retry(raw, mail)
                await asyncio.sleep(min(2**mail.attempts, 30))
            continue
        await queue.done(raw)

"""Sending providers: e-mail over SMTP (aiosmtplib), SMS through an HTTP provider, and a log
provider for both in local mode. A provider raises :class:`SendFailed` with ``permanent=True``
when retrying cannot help (the address is refused), otherwise the delivery is retried."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib
import httpx

from distnet.settings import NotifySettings

logger = logging.getLogger(__name__)


class SendFailed(Exception):
    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class Outgoing:
    to: str
    subject: str
    body: str


class LogProvider:
    """Local mode: the message is written to the log (and the delivery recorded as sent)."""

    def __init__(self, channel: str) -> None:
        self.name = f"log-{channel}"

    async def send(self, message: Outgoing) -> None:
        logger.info("%s to %s: %s | %s", self.name, message.to, message.subject, message.body)


class SmtpProvider:
    name = "smtp"

    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings

    async def send(self, message: Outgoing) -> None:
        s = self.settings
        email = EmailMessage()
        email["From"] = s.smtp_from
        email["To"] = message.to
        email["Subject"] = message.subject
        email.set_content(message.body)
        try:
            await aiosmtplib.send(
                email,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username,
                password=s.smtp_password,
                start_tls=s.smtp_starttls or None,
                timeout=20,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise SendFailed(f"address refused: {exc}", permanent=True) from exc
        except aiosmtplib.SMTPResponseException as exc:
            # 5xx is the server's final answer; 4xx (greylisting, mailbox busy) is worth a retry
            raise SendFailed(f"SMTP {exc.code}: {exc.message}", permanent=exc.code >= 500) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise SendFailed(f"SMTP unavailable: {exc}") from exc


class HttpSmsProvider:
    """POST ``{"to", "text"}`` as JSON to the provider's URL with ``Authorization: Bearer <key>``;
    2xx is accepted; 4xx other than 408/429 refuses the message for good; anything else retries."""

    name = "sms-http"

    def __init__(self, settings: NotifySettings) -> None:
        if not settings.sms_url:
            raise ValueError("DISTNET_SMS_PROVIDER=http needs DISTNET_SMS_URL")
        self.url = settings.sms_url
        self.key = settings.sms_key

    async def send(self, message: Outgoing) -> None:
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                resp = await client.post(
                    self.url, json={"to": message.to, "text": message.body}, headers=headers
                )
        except httpx.HTTPError as exc:
            raise SendFailed(f"SMS provider unavailable: {exc}") from exc
        if resp.is_success:
            return
        permanent = 400 <= resp.status_code < 500 and resp.status_code not in (408, 429)
        raise SendFailed(f"SMS provider answered {resp.status_code}: {resp.text[:200]}", permanent=permanent)


def provider_for(channel: str, settings: NotifySettings) -> LogProvider | SmtpProvider | HttpSmsProvider:
    if channel == "email":
        return SmtpProvider(settings) if settings.smtp_host else LogProvider("email")
    if channel == "sms":
        return HttpSmsProvider(settings) if settings.sms_provider == "http" else LogProvider("sms")
    raise ValueError(f"channel {channel} is not sent by a provider")


def rate_per_minute(channel: str, settings: NotifySettings) -> int:
    return settings.email_per_minute if channel == "email" else settings.sms_per_minute

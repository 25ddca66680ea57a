"""The notification domain's fixtures (a real SMTP server, a Redis prefix per test) for key recovery."""

from tests.notifications.conftest import notify_settings, redis_prefix, smtp_server  # noqa: F401

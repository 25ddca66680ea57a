"""The notification domain's fixtures (a real SMTP server) for the codes of payout account changes,
and the finance keys of the payout tests."""

from tests.notifications.conftest import notify_settings, redis_prefix, smtp_server  # noqa: F401
from tests.payouts.conftest import finance  # noqa: F401

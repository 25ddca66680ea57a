"""Settings read once from the environment (``DISTNET_*``)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "distnet"


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str | None
    """SQLAlchemy URL; None means local mode (embedded PostgreSQL under the data dir)."""
    pool_size: int = 10


@dataclass(frozen=True, slots=True)
class RedisSettings:
    url: str | None
    """None means local mode (embedded Redis under the data dir)."""


@dataclass(frozen=True, slots=True)
class BusinessSettings:
    max_levels_cap: int = 3
    """Platform cap on commission levels: three-level distribution is the legal ceiling."""
    erasure_retention_days: int = 30
    default_currency: str = "CNY"
    default_hold_days: int = 15
    payout_min_amount: int = 10000
    appeal_due_business_days: int = 3
    appeal_claim_idle_minutes: int = 60
    appeal_max_submissions: int = 3
    forfeit_after_days: int = 14
    """A confirmed violation hold's withheld commissions are forfeited this long after confirmation
    when no appeal is open."""
    payout_account_cooling_hours: int = 72
    """After a payout account changes, payouts to the distributor are skipped this long (account
    takeover: the owner has time to notice the notice and react)."""
    payout_skip_open_risk_case: bool = True
    """Payout runs skip distributors named in an open risk case."""
    tax_retention_years: int = 10
    """Tax records (name, resident ID, payments) outlive the erasure of a closed account this long."""
    time_zone: str = "Asia/Shanghai"
    """The business calendar: a payment's tax month is its run's cutoff month in this zone."""


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    idle_minutes: int = 8 * 60
    """A console session unused this long is gone (``DISTNET_CONSOLE_IDLE_MINUTES``)."""
    sign_in_failures: int = 10
    """Failed sign-in steps allowed per client address per ``sign_in_window_minutes``."""
    sign_in_window_minutes: int = 15
    time_zone: str = "Asia/Shanghai"
    """Times on pages are shown in this zone (``DISTNET_TIME_ZONE``)."""


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    secret_key: bytes
    database: DatabaseSettings
    redis: RedisSettings
    business: BusinessSettings = field(default_factory=BusinessSettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)

    @property
    def local_mode(self) -> bool:
        return self.database.url is None or self.redis.url is None


def _secret_key(data_dir: Path) -> bytes:
    env = os.environ.get("DISTNET_SECRET_KEY")
    if env:
        return env.encode()
    # Local mode: generate once into the data dir; every process on that dir must agree on it,
    # or keyed hashes of personal data would stop matching.
    path = data_dir / "secret.key"
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as fh:
        fh.write(secrets.token_hex(32).encode())
    return path.read_bytes().strip()


def _flag(value: str) -> bool:
    return value.strip().lower() not in ("0", "false", "no", "off", "")


def load_settings() -> Settings:
    data_dir = Path(os.environ.get("DISTNET_DATA_DIR") or _default_data_dir())
    business = BusinessSettings(
        max_levels_cap=int(os.environ.get("DISTNET_MAX_LEVELS_CAP", "3")),
        erasure_retention_days=int(os.environ.get("DISTNET_ERASURE_RETENTION_DAYS", "30")),
        default_currency=os.environ.get("DISTNET_CURRENCY", "CNY"),
        payout_min_amount=int(os.environ.get("DISTNET_PAYOUT_MIN_AMOUNT", "10000")),
        payout_account_cooling_hours=int(os.environ.get("DISTNET_PAYOUT_ACCOUNT_COOLING_HOURS", "72")),
        payout_skip_open_risk_case=_flag(os.environ.get("DISTNET_PAYOUT_SKIP_OPEN_RISK_CASE", "1")),
        tax_retention_years=int(os.environ.get("DISTNET_TAX_RETENTION_YEARS", "10")),
        time_zone=os.environ.get("DISTNET_TIME_ZONE", "Asia/Shanghai"),
    )
    console = ConsoleSettings(
        idle_minutes=int(os.environ.get("DISTNET_CONSOLE_IDLE_MINUTES", str(8 * 60))),
        time_zone=os.environ.get("DISTNET_TIME_ZONE", "Asia/Shanghai"),
    )
    return Settings(
        console=console,
        data_dir=data_dir,
        secret_key=_secret_key(data_dir),
        database=DatabaseSettings(url=os.environ.get("DISTNET_DATABASE_URL") or None),
        redis=RedisSettings(url=os.environ.get("DISTNET_REDIS_URL") or None),
        business=business,
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()

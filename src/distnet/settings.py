"""Settings: every ``DISTNET_*`` environment variable is read here, and only here.

One frozen dataclass per concern, each with a ``from_env`` that reads its variables through
:func:`_read` (typed, validated, a :class:`SettingsError` naming the variable and what it must be).
``get_settings()`` loads them once; the CLI loads them before any command runs, so a bad value
stops the process at start with one clear line. To add a setting: a field on the right section,
one ``_read`` line in its ``from_env``, and a row in README's configuration table (a test checks
the table lists every variable read here and that nothing else reads ``DISTNET_*``)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal, TypeVar, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import make_url

T = TypeVar("T")
Env = Mapping[str, str]


class SettingsError(ValueError):
    """A ``DISTNET_*`` variable has a value distnet cannot use."""


def _read(
    env: Env,
    name: str,
    default: T,
    parse: Callable[[str], T],
    *,
    check: Callable[[T], bool] = lambda _: True,
    must: str = "",
) -> T:
    """``env[name]`` parsed, or ``default`` when unset or empty."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = parse(raw)
    except (ValueError, KeyError, ZoneInfoNotFoundError) as exc:
        raise SettingsError(f"{name}={raw!r} is not valid: {must or exc}") from None
    if not check(value):
        raise SettingsError(f"{name}={raw!r} is not valid: must be {must}")
    return value


def _positive(env: Env, name: str, default: int) -> int:
    return _read(env, name, default, int, check=lambda v: v > 0, must="a whole number above 0")


def _not_negative(env: Env, name: str, default: int) -> int:
    return _read(env, name, default, int, check=lambda v: v >= 0, must="a whole number, 0 or more")


def _text(env: Env, name: str) -> str | None:
    return env.get(name, "").strip() or None


def _flag(env: Env, name: str, default: bool) -> bool:
    choices = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
    return _read(env, name, default, lambda raw: choices[raw.lower()], must="1/true/yes or 0/false/no")


def _choice(env: Env, name: str, default: str, choices: tuple[str, ...]) -> str:
    return _read(env, name, default, str.lower, check=lambda v: v in choices, must=" or ".join(choices))


def normalize_url(url: str) -> str:
    """Accept ``postgres://`` / ``postgresql://`` URLs and use the psycopg 3 driver."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.drivername in ("postgresql", "postgresql+psycopg2", "postgresql+asyncpg"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _database_url(raw: str) -> str:
    url = normalize_url(raw)
    if not url.startswith("postgresql+psycopg://"):
        raise ValueError("must be a postgresql:// URL")
    return url


def _replica_urls(raw: str) -> tuple[str, ...]:
    return tuple(_database_url(part.strip()) for part in raw.split(",") if part.strip())


def _lag(raw: str) -> float:
    # below the 5 s within which a revoked key, a hold or a rank change must be seen
    value = float(raw)
    if not 0 <= value <= 4:
        raise ValueError("must be between 0 and 4")
    return value


def _redis_url(raw: str) -> str:
    if not raw.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("must be a redis:// URL")
    return raw


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str | None
    """SQLAlchemy URL; None means local mode (embedded PostgreSQL under the data dir)."""
    pool_size: int = 10
    replica_urls: tuple[str, ...] = ()
    """Streaming replicas that read-only requests and reports may use (kit/replicas.py)."""
    replica_max_lag: float = 2.0
    """Seconds a replica may be behind before its reads go to the primary."""

    @classmethod
    def from_env(cls, env: Env) -> DatabaseSettings:
        return cls(
            url=_read(env, "DISTNET_DATABASE_URL", None, _database_url),
            pool_size=_positive(env, "DISTNET_DATABASE_POOL_SIZE", 10),
            replica_urls=_read(env, "DISTNET_DATABASE_REPLICA_URLS", (), _replica_urls),
            replica_max_lag=_read(
                env, "DISTNET_REPLICA_MAX_LAG_SECONDS", 2.0, _lag, must="a number of seconds between 0 and 4"
            ),
        )


@dataclass(frozen=True, slots=True)
class RedisSettings:
    url: str | None
    """None means local mode (embedded Redis under the data dir)."""

    @classmethod
    def from_env(cls, env: Env) -> RedisSettings:
        return cls(url=_read(env, "DISTNET_REDIS_URL", None, _redis_url))


BrokerKind = Literal["auto", "redis", "stub"]


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    kind: BrokerKind = "auto"
    """``auto``: a StubBroker under pytest, Redis otherwise."""
    namespace: str = "distnet"
    """Redis key prefix of the broker's queues (the demo uses its own)."""

    @classmethod
    def from_env(cls, env: Env) -> BrokerSettings:
        return cls(
            kind=cast(BrokerKind, _choice(env, "DISTNET_BROKER", "auto", ("auto", "redis", "stub"))),
            namespace=_text(env, "DISTNET_BROKER_NAMESPACE") or "distnet",
        )


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    min_backoff_ms: int = 5_000
    max_backoff_ms: int = 60 * 60 * 1000
    max_retries: int = 12

    @classmethod
    def from_env(cls, env: Env) -> WebhookSettings:
        default = cls()
        found = cls(
            min_backoff_ms=_positive(env, "DISTNET_WEBHOOK_MIN_BACKOFF_MS", default.min_backoff_ms),
            max_backoff_ms=_positive(env, "DISTNET_WEBHOOK_MAX_BACKOFF_MS", default.max_backoff_ms),
            max_retries=_not_negative(env, "DISTNET_WEBHOOK_MAX_RETRIES", default.max_retries),
        )
        if found.max_backoff_ms < found.min_backoff_ms:
            raise SettingsError(
                "DISTNET_WEBHOOK_MAX_BACKOFF_MS must not be below DISTNET_WEBHOOK_MIN_BACKOFF_MS"
            )
        return found


@dataclass(frozen=True, slots=True)
class RankSettings:
    period_days: int = 90
    """Trailing period of the sales that rank thresholds count."""
    ladder: str | None = None
    """JSON override of the ladder's thresholds (parsed and checked by ``ranks.ladder``): the
    default ladder, until a version is stored through the API."""
    points_expiry_months: int = 12
    """Points expire this many months after they were earned (first in, first out)."""
    points_expiry_notice_days: int = 30
    """Members are told this many days before their points expire."""

    @classmethod
    def from_env(cls, env: Env) -> RankSettings:
        default = cls()
        return cls(
            period_days=_positive(env, "DISTNET_RANK_PERIOD_DAYS", default.period_days),
            ladder=_text(env, "DISTNET_RANK_LADDER"),
            points_expiry_months=_positive(env, "DISTNET_POINTS_EXPIRY_MONTHS", default.points_expiry_months),
            points_expiry_notice_days=_positive(
                env, "DISTNET_POINTS_EXPIRY_NOTICE_DAYS", default.points_expiry_notice_days
            ),
        )


@dataclass(frozen=True, slots=True)
class HousekeepingSettings:
    event_retention_days: int = 7
    """Published outbox rows and consumers' processed-event markers older than this are pruned."""
    notification_retention_days: int = 90
    """Delivered (sent) e-mail and SMS notifications older than this are pruned (the inbox is kept)."""

    @classmethod
    def from_env(cls, env: Env) -> HousekeepingSettings:
        d = cls()
        return cls(
            event_retention_days=_positive(env, "DISTNET_EVENT_RETENTION_DAYS", d.event_retention_days),
            notification_retention_days=_positive(
                env, "DISTNET_NOTIFICATION_RETENTION_DAYS", d.notification_retention_days
            ),
        )


@dataclass(frozen=True, slots=True)
class ServeSettings:
    background: bool = False
    """Set by ``distnet serve`` for its server processes: run a worker and the scheduler inside."""

    @classmethod
    def from_env(cls, env: Env) -> ServeSettings:
        return cls(background=_flag(env, "DISTNET_SERVE_BACKGROUND", False))


@dataclass(frozen=True, slots=True)
class LogSettings:
    format: str = "auto"
    """``json`` (one JSON object a line, for production), ``console`` (readable lines) or ``auto``:
    console on a terminal, JSON otherwise."""
    level: str = "info"

    @classmethod
    def from_env(cls, env: Env) -> LogSettings:
        return cls(
            format=_choice(env, "DISTNET_LOG_FORMAT", "auto", ("auto", "json", "console")),
            level=_choice(env, "DISTNET_LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
        )


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
    """The platform's business calendar: what a day and a month are (IANA zone name)."""

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @classmethod
    def from_env(cls, env: Env) -> BusinessSettings:
        default = cls()
        return cls(
            max_levels_cap=_read(
                env,
                "DISTNET_MAX_LEVELS_CAP",
                default.max_levels_cap,
                int,
                check=lambda v: 1 <= v <= 10,
                must="a whole number from 1 to 10",
            ),
            erasure_retention_days=_not_negative(
                env, "DISTNET_ERASURE_RETENTION_DAYS", default.erasure_retention_days
            ),
            default_currency=_read(
                env,
                "DISTNET_CURRENCY",
                default.default_currency,
                str.upper,
                check=lambda v: len(v) == 3 and v.isalpha(),
                must="an ISO 4217 code like CNY",
            ),
            payout_min_amount=_positive(env, "DISTNET_PAYOUT_MIN_AMOUNT", default.payout_min_amount),
            payout_account_cooling_hours=_not_negative(
                env, "DISTNET_PAYOUT_ACCOUNT_COOLING_HOURS", default.payout_account_cooling_hours
            ),
            payout_skip_open_risk_case=_flag(
                env, "DISTNET_PAYOUT_SKIP_OPEN_RISK_CASE", default.payout_skip_open_risk_case
            ),
            tax_retention_years=_not_negative(
                env, "DISTNET_TAX_RETENTION_YEARS", default.tax_retention_years
            ),
            time_zone=_read(
                env,
                "DISTNET_TIME_ZONE",
                default.time_zone,
                lambda raw: ZoneInfo(raw).key,
                must="an IANA time zone such as Asia/Shanghai",
            ),
        )


@dataclass(frozen=True, slots=True)
class NotifySettings:
    """Channels of notices and one-time codes (README "Notifications")."""

    smtp_host: str | None = None
    """None: e-mail goes to the log provider (local mode)."""
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_from: str = "distnet <no-reply@distnet.local>"
    sms_provider: str = "log"
    """``log`` (local mode: the message is logged) or ``http`` (POST to ``sms_url`` with ``sms_key``)."""
    sms_url: str | None = None
    sms_key: str | None = None
    email_per_minute: int = 600
    sms_per_minute: int = 60
    """Sending rate per provider, shared by every worker (Redis)."""
    redis_prefix: str = "distnet"
    """Namespace of the rate-limit keys in Redis."""
    rate_limits: str = ""
    """Overrides of the request rate limits, ``register.ip=20/3600,code_send.person=5/900``; ``off``."""
    maintenance_min_notice_hours: float = 24
    downgrade_warning_days: int = 7
    require_verified_contact: bool = False
    """A verified phone or e-mail is a condition of the first payout."""
    terms_version: str = "2026-12"
    privacy_version: str = "2026-12"

    @classmethod
    def from_env(cls, env: Env) -> NotifySettings:
        d = cls()
        return cls(
            smtp_host=_text(env, "DISTNET_SMTP_HOST"),
            smtp_port=_positive(env, "DISTNET_SMTP_PORT", d.smtp_port),
            smtp_username=_text(env, "DISTNET_SMTP_USERNAME"),
            smtp_password=_text(env, "DISTNET_SMTP_PASSWORD"),
            smtp_starttls=_flag(env, "DISTNET_SMTP_STARTTLS", d.smtp_starttls),
            smtp_from=_text(env, "DISTNET_SMTP_FROM") or d.smtp_from,
            sms_provider=_choice(env, "DISTNET_SMS_PROVIDER", d.sms_provider, ("log", "http")),
            sms_url=_text(env, "DISTNET_SMS_URL"),
            sms_key=_text(env, "DISTNET_SMS_KEY"),
            email_per_minute=_positive(env, "DISTNET_EMAIL_PER_MINUTE", d.email_per_minute),
            sms_per_minute=_positive(env, "DISTNET_SMS_PER_MINUTE", d.sms_per_minute),
            redis_prefix=_text(env, "DISTNET_REDIS_PREFIX") or d.redis_prefix,
            rate_limits=_text(env, "DISTNET_RATE_LIMITS") or "",
            maintenance_min_notice_hours=_read(
                env,
                "DISTNET_MAINTENANCE_MIN_NOTICE_HOURS",
                d.maintenance_min_notice_hours,
                float,
                check=lambda v: v >= 0,
                must="a number of hours, 0 or more",
            ),
            downgrade_warning_days=_not_negative(
                env, "DISTNET_DOWNGRADE_WARNING_DAYS", d.downgrade_warning_days
            ),
            require_verified_contact=_flag(
                env, "DISTNET_REQUIRE_VERIFIED_CONTACT", d.require_verified_contact
            ),
            terms_version=_text(env, "DISTNET_TERMS_VERSION") or d.terms_version,
            privacy_version=_text(env, "DISTNET_PRIVACY_VERSION") or d.privacy_version,
        )


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    idle_minutes: int = 8 * 60
    """A console session unused this long is gone (``DISTNET_CONSOLE_IDLE_MINUTES``)."""
    sign_in_failures: int = 10
    """Failed sign-in steps allowed per client address per ``sign_in_window_minutes``."""
    sign_in_window_minutes: int = 15
    time_zone: str = "Asia/Shanghai"
    """Times on pages are shown in this zone (``DISTNET_TIME_ZONE``)."""

    @classmethod
    def from_env(cls, env: Env) -> ConsoleSettings:
        d = cls()
        return cls(
            idle_minutes=_positive(env, "DISTNET_CONSOLE_IDLE_MINUTES", d.idle_minutes),
            time_zone=_read(
                env,
                "DISTNET_TIME_ZONE",
                d.time_zone,
                lambda raw: ZoneInfo(raw).key,
                must="an IANA time zone such as Asia/Shanghai",
            ),
        )


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    secret_key: bytes
    database: DatabaseSettings
    redis: RedisSettings
    business: BusinessSettings = field(default_factory=BusinessSettings)
    broker: BrokerSettings = field(default_factory=BrokerSettings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    ranks: RankSettings = field(default_factory=RankSettings)
    serve: ServeSettings = field(default_factory=ServeSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    housekeeping: HousekeepingSettings = field(default_factory=HousekeepingSettings)

    @property
    def local_mode(self) -> bool:
        return self.database.url is None or self.redis.url is None


def _default_data_dir(env: Env) -> Path:
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "distnet"


def _secret_key(env: Env, data_dir: Path) -> bytes:
    if raw := _text(env, "DISTNET_SECRET_KEY"):
        return raw.encode()
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


def load_settings(env: Env | None = None) -> Settings:
    """Read and check every ``DISTNET_*`` variable; raises :class:`SettingsError`."""
    env = os.environ if env is None else env
    data_dir = _read(env, "DISTNET_DATA_DIR", _default_data_dir(env), lambda raw: Path(raw).expanduser())
    return Settings(
        console=ConsoleSettings.from_env(env),
        data_dir=data_dir,
        secret_key=_secret_key(env, data_dir),
        database=DatabaseSettings.from_env(env),
        redis=RedisSettings.from_env(env),
        business=BusinessSettings.from_env(env),
        broker=BrokerSettings.from_env(env),
        webhooks=WebhookSettings.from_env(env),
        ranks=RankSettings.from_env(env),
        serve=ServeSettings.from_env(env),
        notify=NotifySettings.from_env(env),
        housekeeping=HousekeepingSettings.from_env(env),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


S = TypeVar("S", BusinessSettings, BrokerSettings, WebhookSettings, RankSettings, ServeSettings, LogSettings)


def read_section(section: type[S]) -> S:
    """One section read now, for what is configured at import time (the broker, the webhook retry
    schedule) or may change within a process (the demo's broker namespace): unlike
    ``get_settings()`` it needs no data directory and generates no secret."""
    return section.from_env(os.environ)

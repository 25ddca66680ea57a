"""Staff console sign-in: server-side sessions and the attempts that rate-limit sign-in."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from distnet.models.base import Base, created_at_column


class ConsoleSession(Base):
    """One browser's sign-in. The cookie carries a random token (signed); only its SHA-256 is
    stored, so a database reader cannot sign in as anyone."""

    __tablename__ = "console_session"
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("api_key.id"))
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    stage: Mapped[str] = mapped_column(String(16))
    """``second_factor`` (the key was right, a TOTP code is still due) or ``active``."""
    csrf_token: Mapped[str] = mapped_column(String(64))
    enrol_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    """A TOTP seed offered on first sign-in (Fernet-encrypted) until a code confirms it."""
    failed_codes: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = created_at_column()
    last_seen_at: Mapped[datetime] = created_at_column()
    """Idle expiry counts from here; touched at most once a minute."""


class ConsoleSignInAttempt(Base):
    """Failed sign-in steps by client address: too many in the window and sign-in is refused."""

    __tablename__ = "console_sign_in_attempt"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = created_at_column()
    client: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(16))

    __table_args__ = (Index("ix_console_sign_in_attempt_client", "client", "at"),)

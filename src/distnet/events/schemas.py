from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

Topic = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^(\*|[a-z_]+\.(\*|[a-z_.]+))$")]


class WebhookCreate(msgspec.Struct, forbid_unknown_fields=True):
    url: Annotated[str, msgspec.Meta(min_length=8, max_length=500)]
    topics: Annotated[list[Topic], msgspec.Meta(min_length=1, max_length=50)]
    """Exact topics (``hold.placed``), families (``hold.*``) or ``*`` for every event."""
    secret: Annotated[str, msgspec.Meta(min_length=16, max_length=128)] | None = None
    """Signing secret; generated when omitted. Returned once, in the creation response."""


class WebhookEndpointView(msgspec.Struct):
    id: int
    url: str
    topics: list[str]
    active: bool
    created_at: datetime


class NewWebhookEndpoint(WebhookEndpointView):
    secret: str
    """The signing secret (HMAC-SHA256 of the body): shown once, here."""

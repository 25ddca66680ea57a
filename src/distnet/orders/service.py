"""Orders: the domain's service functions, by concern in their own modules (ingest of single
orders, batches, refunds, views); routes and other domains import them from here."""

from __future__ import annotations

from distnet.orders.batch import create_batch
from distnet.orders.ingest import (
    CLOCK_SKEW,
    PreparedOrder,
    accept,
    canonical_hash,
    create_order,
    prepare,
    sell_refusal,
)
from distnet.orders.refunds import refund, reverse_commissions
from distnet.orders.views import (
    commission_view,
    get_order,
    order_status,
    order_views,
    seller_order_views,
    seller_orders,
    shown_buyer_refs,
)

__all__ = [
    "CLOCK_SKEW",
    "PreparedOrder",
    "accept",
    "canonical_hash",
    "commission_view",
    "create_batch",
    "create_order",
    "get_order",
    "order_status",
    "order_views",
    "prepare",
    "refund",
    "reverse_commissions",
    "sell_refusal",
    "seller_order_views",
    "seller_orders",
    "shown_buyer_refs",
]

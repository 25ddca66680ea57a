"""How another person's name is shown to a distributor (upline on their orders, their team): the
first character and one star, 张三丰 -> 张*. One star whatever the length, so the mask does not give
the length away either (DESIGN invariant 10: code, masked name, rank, period sales; nothing else)."""

from __future__ import annotations


def mask_name(name: str | None, *, erased: bool = False) -> str:
    if erased or not name or not name.strip():
        return "*"
    return name.strip()[0] + "*"

from __future__ import annotations

import pytest

from tests.factories import make_tree


@pytest.fixture
async def chain(client, admin_headers):
    """root -> a -> b -> c: c sells."""
    return await make_tree(client, admin_headers, 3)

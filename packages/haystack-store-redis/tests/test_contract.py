"""The storage protocol's contract suite on the shared single node and on a real
three-master cluster started by the tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from projecthaystack.server.storetests import StoreContract
from projecthaystack.stores.redis import RedisStore


class TestSingleNode(StoreContract):
    @pytest.fixture
    async def store(self, single: RedisStore) -> AsyncIterator[RedisStore]:
        return single


class TestCluster(StoreContract):
    @pytest.fixture
    async def store(self, on_cluster: RedisStore) -> AsyncIterator[RedisStore]:
        return on_cluster

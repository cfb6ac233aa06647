"""The storage protocol's contract suite, on two store instances per backend: the shared
single node (a fresh key prefix per test), a real three-master cluster started here, and
a Valkey server started here."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from projecthaystack.server import Store
from projecthaystack.server.storetests import StoreContract
from projecthaystack.stores.redis import RedisStore


class RedisContract(StoreContract):
    async def reopen_with_schema(self, store: Store, schema: int) -> Store:
        assert isinstance(store, RedisStore)
        await store.redis.hset(store.keys.meta, "layout", str(schema))
        return RedisStore(
            store.url, prefix=store.keys.prefix, cluster=store.cluster, protocol=store.protocol
        )


class TestSingleNode(RedisContract):
    @pytest.fixture
    async def stores(
        self, pair_single: tuple[RedisStore, RedisStore]
    ) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
        return pair_single


class TestCluster(RedisContract):
    @pytest.fixture
    async def stores(
        self, pair_cluster: tuple[RedisStore, RedisStore]
    ) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
        return pair_cluster


class TestSingleNodeResp3(RedisContract):
    @pytest.fixture
    async def stores(
        self, pair_single_resp3: tuple[RedisStore, RedisStore]
    ) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
        return pair_single_resp3


class TestClusterResp3(RedisContract):
    @pytest.fixture
    async def stores(
        self, pair_cluster_resp3: tuple[RedisStore, RedisStore]
    ) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
        return pair_cluster_resp3


class TestValkey(RedisContract):
    @pytest.fixture
    async def stores(
        self, pair_valkey: tuple[RedisStore, RedisStore]
    ) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
        return pair_valkey


class TestValkeyResp3(RedisContract):
    @pytest.fixture
    async def stores(
        self, pair_valkey_resp3: tuple[RedisStore, RedisStore]
    ) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
        return pair_valkey_resp3

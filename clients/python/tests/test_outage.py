"""INTERNAL_SERVER_ERROR from the real service: its database stopped under it."""

import asyncio
from collections.abc import Iterator

import pytest

from service import Service, start_service
from wallet_service_client import InternalServerError
from wallet_service_client.aio import AsyncClient
from wallet_service_client.sync import Client


@pytest.fixture(scope="module")
def orphaned() -> Iterator[Service]:
    """A service of its own on a database of `npm run db`'s, which the test stops."""
    running = start_service(separate_database=True)
    yield running
    running.stop()


def test_a_failure_of_the_service_is_an_internal_server_error_with_its_request_id(orphaned: Service) -> None:
    with Client(orphaned.graphql, token=orphaned.agent_token) as client:
        assert client.managed_wallets(first=1).managed_wallets.edges == []
        assert orphaned.database is not None
        assert orphaned.database.stop() == 0

        with pytest.raises(InternalServerError) as failed:
            client.managed_wallets(first=1)
    assert failed.value.code == "INTERNAL_SERVER_ERROR"
    assert str(failed.value) == "database unavailable"
    assert failed.value.request_id

    async def agent() -> None:
        async with AsyncClient(orphaned.graphql, token=orphaned.agent_token) as client:
            with pytest.raises(InternalServerError):
                await client.managed_wallet(id="0123456789abcdef01234567")

    asyncio.run(agent())

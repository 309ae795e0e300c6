"""Each code of the contract comes back as its exception class, from the real service."""

import asyncio

import httpx
import pytest

from service import Owner, Service
from wallet_service_client import (
    BadUserInputError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    UnauthenticatedError,
    UnexpectedResponseError,
    WalletServiceError,
)
from wallet_service_client.aio import AsyncClient
from wallet_service_client.sync import Client

UNKNOWN_ID = "0123456789abcdef01234567"


def test_a_bad_token_is_unauthenticated_and_the_token_is_in_no_part_of_the_error(service: Service) -> None:
    token = "not-a-token-" + "S3CR3T" * 8
    with Client(service.graphql, token=token) as client:
        with pytest.raises(UnauthenticatedError) as raised:
            client.managed_wallets(first=1)
    error = raised.value
    assert error.code == "UNAUTHENTICATED"
    assert error.status_code == 401
    assert error.request_id
    for text in (str(error), repr(error), repr(error.errors), repr(error.extensions), repr(error.args)):
        assert "S3CR3T" not in text


def test_a_users_token_is_forbidden_the_agents_operations(service: Service, owner: Owner) -> None:
    with Client(service.graphql, token=owner.token) as client:
        with pytest.raises(ForbiddenError) as raised:
            client.managed_wallets(first=1)
    assert raised.value.code == "FORBIDDEN"
    assert raised.value.path == ["managedWallets"]


def test_an_unknown_wallet_is_not_found(service: Service) -> None:
    with Client(service.graphql, token=service.agent_token) as client:
        with pytest.raises(NotFoundError):
            client.managed_wallet(id=UNKNOWN_ID)

    async def agent() -> None:
        async with AsyncClient(service.graphql, token=service.agent_token) as client:
            with pytest.raises(NotFoundError):
                await client.managed_wallet(id=UNKNOWN_ID)

    asyncio.run(agent())


def test_an_invalid_value_is_bad_user_input_before_anything_runs(service: Service) -> None:
    with Client(service.graphql, token=service.agent_token) as client:
        with pytest.raises(BadUserInputError) as raised:
            client.managed_wallet(id="not an object id")
    # GraphQL's own variable errors are answered with HTTP 400 and a GraphQL body.
    assert raised.value.status_code == 400
    assert "not an object id" not in str(raised.value)


def test_too_many_registrations_are_rate_limited(service: Service, owner: Owner) -> None:
    """Through the client's generic execute (register is no agent operation), for a code the agents'
    own operations reach only at 60,000 requests a minute. The owner is registered first (the
    session's only registration), and the service allows REGISTRATIONS_PER_HOUR."""
    with Client(service.graphql) as client:
        with pytest.raises(RateLimitedError) as raised:
            for n in range(5):
                client.get_data(
                    client.execute(
                        "mutation($i: RegisterInput!) { register(input: $i) { token } }",
                        variables={"i": {"email": f"burst-{n}@agents.test", "password": "a long enough password"}},
                    )
                )
    assert raised.value.code == "RATE_LIMITED"
    assert raised.value.status_code == 429


def test_an_answer_that_is_not_graphql_is_an_unexpected_response(service: Service) -> None:
    with Client(service.base_url + "/no-such-endpoint", token=service.agent_token) as client:
        with pytest.raises(UnexpectedResponseError) as raised:
            client.me()
    assert raised.value.status_code == 404
    assert isinstance(raised.value, WalletServiceError)


def test_an_http_client_of_the_callers_own_keeps_no_token(service: Service) -> None:
    http = httpx.Client(timeout=10)
    with Client(service.graphql, token=service.agent_token, http_client=http) as client:
        assert client.me().me.name == service.agent_name
    assert "authorization" not in http.headers

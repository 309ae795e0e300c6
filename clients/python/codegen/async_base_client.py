"""The async client's base (ariadne-codegen's base_client_name): HTTP with httpx, the service's
errors raised as the exceptions of wallet_service_client.errors."""

from typing import Any, Optional, TypeVar

import httpx

from .._http import request_body, request_headers, response_data
from .base_model import UNSET

Self = TypeVar("Self", bound="AsyncWalletServiceBaseClient")


class AsyncWalletServiceBaseClient:
    def __init__(
        self,
        url: str,
        token: Optional[str] = None,
        *,
        headers: Optional[dict[str, str]] = None,
        http_client: Optional[httpx.AsyncClient] = None,
        timeout: float = 30.0,
    ) -> None:
        """url: the service's /graphql endpoint; token: an agent token (issueAgentToken)."""
        self.url = url
        # Sent with each request rather than set on the httpx client, so a caller's own
        # http_client never keeps the token.
        self._headers = request_headers(token, headers)
        self.http_client = http_client if http_client is not None else httpx.AsyncClient(timeout=timeout)

    async def __aenter__(self: Self) -> Self:
        return self

    async def __aexit__(self, exc_type: object, exc_val: object, exc_tb: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.http_client.aclose()

    async def execute(
        self,
        query: str,
        operation_name: Optional[str] = None,
        variables: Optional[dict[str, Any]] = None,
        **kwargs: Any,
    ) -> httpx.Response:
        return await self.http_client.post(
            self.url,
            json=request_body(query, operation_name, variables, UNSET),
            headers=self._headers,
            **kwargs,
        )

    def get_data(self, response: httpx.Response) -> dict[str, Any]:
        return response_data(response)

"""The sync client's base (ariadne-codegen's base_client_name): HTTP with httpx, the service's
errors raised as the exceptions of wallet_service_client.errors."""

from typing import Any, Optional, TypeVar

import httpx

from .._http import request_body, request_headers, response_data
from .base_model import UNSET

Self = TypeVar("Self", bound="WalletServiceBaseClient")


class WalletServiceBaseClient:
    def __init__(
        self,
        url: str,
        token: Optional[str] = None,
        *,
        headers: Optional[dict[str, str]] = None,
        http_client: Optional[httpx.Client] = None,
        timeout: float = 30.0,
    ) -> None:
        """url: the service's /graphql endpoint; token: an agent token (issueAgentToken)."""
        self.url = url
        # Sent with each request rather than set on the httpx client, so a caller's own
        # http_client never keeps the token.
        self._headers = request_headers(token, headers)
        self.http_client = http_client if http_client is not None else httpx.Client(timeout=timeout)

    def __enter__(self: Self) -> Self:
        return self

    def __exit__(self, exc_type: object, exc_val: object, exc_tb: object) -> None:
        self.close()

    def close(self) -> None:
        self.http_client.close()

    def execute(
        self,
        query: str,
        operation_name: Optional[str] = None,
        variables: Optional[dict[str, Any]] = None,
        **kwargs: Any,
    ) -> httpx.Response:
        return self.http_client.post(
            self.url,
            json=request_body(query, operation_name, variables, UNSET),
            headers=self._headers,
            **kwargs,
        )

    def get_data(self, response: httpx.Response) -> dict[str, Any]:
        return response_data(response)

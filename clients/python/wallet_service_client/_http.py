"""What the sync and the async client share: the request body, the headers, reading the answer."""

from __future__ import annotations

from typing import Any, Optional

import httpx
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from .errors import UnexpectedResponseError, error_from_response


def request_headers(token: Optional[str], headers: Optional[dict[str, str]]) -> dict[str, str]:
    merged = {"accept": "application/graphql-response+json, application/json"}
    merged.update(headers or {})
    if token is not None:
        merged["authorization"] = f"Bearer {token}"
    return merged


def request_body(
    query: str,
    operation_name: Optional[str],
    variables: Optional[dict[str, Any]],
    unset: object,
) -> dict[str, Any]:
    """The POST body; variables left UNSET are left out, so the service applies its defaults."""
    converted = {key: _convert(value) for key, value in (variables or {}).items() if value is not unset}
    return to_jsonable_python({"query": query, "operationName": operation_name, "variables": converted})


def _convert(value: Any) -> Any:
    # An input model sends only the fields it was given: the service's writes are partial updates.
    if isinstance(value, BaseModel):
        return value.model_dump(by_alias=True, exclude_unset=True)
    if isinstance(value, list):
        return [_convert(item) for item in value]
    return value


def response_data(response: httpx.Response) -> dict[str, Any]:
    """The answer's data, or the exception for its errors.

    The service answers some errors with an HTTP error status and a GraphQL body (401, 429, 400 for
    an invalid document), so the body is read before the status."""
    request_id = response.headers.get("x-request-id")
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        errors = body.get("errors")
        data = body.get("data")
        if isinstance(errors, list) and errors:
            raise error_from_response(errors, data if isinstance(data, dict) else None, response.status_code, request_id)
        if response.is_success and isinstance(data, dict):
            return data
    raise UnexpectedResponseError(
        f"the service answered HTTP {response.status_code} without a GraphQL result",
        status_code=response.status_code,
        request_id=request_id,
    )

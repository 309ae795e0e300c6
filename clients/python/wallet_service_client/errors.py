"""The service's errors as exceptions: one class per code of its contract (``extensions.code``).

Both clients raise them for a request the service refused or failed; a request that raised
changed nothing. Messages are the service's own, which never quote a secret or a value sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Optional


class WalletServiceError(Exception):
    """Any error the service answered with; a code outside the contract stays this class."""

    CODE: ClassVar[Optional[str]] = None

    def __init__(
        self,
        message: str,
        *,
        code: Optional[str] = None,
        path: Optional[list[Any]] = None,
        extensions: Optional[dict[str, Any]] = None,
        errors: Optional[list[dict[str, Any]]] = None,
        data: Optional[dict[str, Any]] = None,
        status_code: Optional[int] = None,
        request_id: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else self.CODE
        self.path = path
        self.extensions = extensions or {}
        # Every error of the response (this one is the first) and whatever data came with them.
        self.errors = errors or []
        self.data = data
        self.status_code = status_code
        # The service logs a failure's details under this id (its x-request-id header).
        self.request_id = request_id

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code!r})"


class UnauthenticatedError(WalletServiceError):
    """No token, or one that is not (or no longer) good: expired, revoked, its issuer gone."""

    CODE = "UNAUTHENTICATED"


class ForbiddenError(WalletServiceError):
    """The token's role may not do this (an agent token is needed for agents' operations), or a
    GRANTED_WALLETS agent's grant on the wallet lacks the permission the operation needs
    (MANAGE_STATE to write the AI state, PAUSE_RESUME to pause and resume)."""

    CODE = "FORBIDDEN"


class NotFoundError(WalletServiceError):
    """No such wallet (or other resource). A GRANTED_WALLETS agent gets the same answer, word for
    word, for a wallet it holds no grant in force on: it tells nothing of whether the wallet exists."""

    CODE = "NOT_FOUND"


@dataclass(frozen=True)
class BoundViolation:
    """One bound of the wallet's that a refused write breaks: ``value`` (the number sent) is
    ``AT_MOST`` or ``AT_LEAST`` ``bound``, as ``rule`` says; ``field`` in the API's names."""

    field: str
    rule: str
    bound: float
    value: float


def bound_violations(raw: Any) -> list[BoundViolation]:
    """The violations of an error's ``extensions`` (or a batch item's ``OperationError``)."""
    found = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            continue
        field, rule, bound, value = (item.get(k) for k in ("field", "rule", "bound", "value"))
        rule = getattr(rule, "value", rule)  # a generated BoundRule enum, or its name
        numbers = all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in (bound, value))
        if isinstance(field, str) and rule in ("AT_MOST", "AT_LEAST") and numbers:
            found.append(BoundViolation(field, rule, float(bound), float(value)))
    return found


class BadUserInputError(WalletServiceError):
    """An input the service refused; ``field`` names it, e.g. ``currentLeverage``. A write
    outside the wallet's bounds lists every bound it breaks in ``violations``."""

    CODE = "BAD_USER_INPUT"

    @property
    def field(self) -> Optional[str]:
        field = self.extensions.get("field")
        return field if isinstance(field, str) else None

    @property
    def violations(self) -> list[BoundViolation]:
        """Every bound the write breaks, the first refused field's first; empty when the refusal
        is not about bounds (a value that is no whole number, say)."""
        return bound_violations(self.extensions.get("violations"))


class ConflictError(WalletServiceError):
    """The wallet is not where the write expected: a stale ``expectedVersion`` (then
    ``current_version`` is the wallet's version now), or a state the write can't leave from."""

    CODE = "CONFLICT"

    @property
    def current_version(self) -> Optional[int]:
        version = self.extensions.get("currentVersion")
        return version if isinstance(version, int) and not isinstance(version, bool) else None


class RateLimitedError(WalletServiceError):
    """Too many requests; ``retry_after_seconds`` when the service says how long to wait."""

    CODE = "RATE_LIMITED"

    @property
    def retry_after_seconds(self) -> Optional[int]:
        seconds = self.extensions.get("retryAfterSeconds")
        return seconds if isinstance(seconds, int) and not isinstance(seconds, bool) else None


class InternalServerError(WalletServiceError):
    """The service failed (its database away, say); the details are in its log under ``request_id``."""

    CODE = "INTERNAL_SERVER_ERROR"


class UnexpectedResponseError(WalletServiceError):
    """An answer that is not GraphQL: an HTTP error without a GraphQL body (a proxy's 502, say)."""


BY_CODE: dict[str, type[WalletServiceError]] = {
    cls.CODE: cls
    for cls in (
        UnauthenticatedError,
        ForbiddenError,
        NotFoundError,
        BadUserInputError,
        ConflictError,
        RateLimitedError,
        InternalServerError,
    )
    if cls.CODE is not None
}


def error_from_response(
    errors: list[dict[str, Any]],
    data: Optional[dict[str, Any]],
    status_code: int,
    request_id: Optional[str],
) -> WalletServiceError:
    """The exception for a GraphQL response's errors: the first error's code picks the class."""
    first = errors[0] if isinstance(errors[0], dict) else {}
    extensions = first.get("extensions")
    extensions = extensions if isinstance(extensions, dict) else {}
    code = extensions.get("code")
    code = code if isinstance(code, str) else None
    message = first.get("message")
    cls = BY_CODE.get(code, WalletServiceError) if code is not None else WalletServiceError
    return cls(
        message if isinstance(message, str) else "the service answered with an error",
        code=code,
        path=first.get("path") if isinstance(first.get("path"), list) else None,
        extensions=extensions,
        errors=errors,
        data=data,
        status_code=status_code,
        request_id=request_id,
    )


__all__ = [
    "BadUserInputError",
    "BoundViolation",
    "ConflictError",
    "ForbiddenError",
    "InternalServerError",
    "NotFoundError",
    "RateLimitedError",
    "UnauthenticatedError",
    "UnexpectedResponseError",
    "WalletServiceError",
    "bound_violations",
    "error_from_response",
]

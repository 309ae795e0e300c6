"""Every wallet of a listing, page after page, for the sync and the async client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from .aio import AsyncClient
    from .aio.fragments import ManagedWalletFields as AsyncManagedWalletFields
    from .sync import Client
    from .sync.enums import WalletStatus
    from .sync.fragments import ManagedWalletFields


def _status(status: Optional[WalletStatus]) -> dict[str, Any]:
    # Left out rather than sent as null: no status means every status.
    return {} if status is None else {"status": status}


def iter_managed_wallets(
    client: Client, status: Optional[WalletStatus] = None, page_size: int = 100
) -> Iterator[ManagedWalletFields]:
    """managedWallets, oldest first: each wallet once, however many pages (page_size at most 500)."""
    after: Optional[str] = None
    while True:
        page = client.managed_wallets(first=page_size, after=after, **_status(status)).managed_wallets
        for edge in page.edges:
            yield edge.node
        if not page.page_info.has_next_page or page.page_info.end_cursor is None:
            return
        after = page.page_info.end_cursor


def iter_managed_wallet_changes(
    client: Client, since: datetime, page_size: int = 100
) -> Iterator[ManagedWalletFields]:
    """managedWalletChanges: the wallets whose limits or status changed at or after since (a
    timezone-aware datetime), oldest change first. A wallet changed again meanwhile comes again."""
    after: Optional[str] = None
    while True:
        page = client.managed_wallet_changes(since=since, first=page_size, after=after).managed_wallet_changes
        for edge in page.edges:
            yield edge.node
        if not page.page_info.has_next_page or page.page_info.end_cursor is None:
            return
        after = page.page_info.end_cursor


async def aiter_managed_wallets(
    client: AsyncClient, status: Optional[WalletStatus] = None, page_size: int = 100
) -> AsyncIterator[AsyncManagedWalletFields]:
    """iter_managed_wallets for the async client."""
    after: Optional[str] = None
    while True:
        page = (await client.managed_wallets(first=page_size, after=after, **_status(status))).managed_wallets
        for edge in page.edges:
            yield edge.node
        if not page.page_info.has_next_page or page.page_info.end_cursor is None:
            return
        after = page.page_info.end_cursor


async def aiter_managed_wallet_changes(
    client: AsyncClient, since: datetime, page_size: int = 100
) -> AsyncIterator[AsyncManagedWalletFields]:
    """iter_managed_wallet_changes for the async client."""
    after: Optional[str] = None
    while True:
        page = (await client.managed_wallet_changes(since=since, first=page_size, after=after)).managed_wallet_changes
        for edge in page.edges:
            yield edge.node
        if not page.page_info.has_next_page or page.page_info.end_cursor is None:
            return
        after = page.page_info.end_cursor

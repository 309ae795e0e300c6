"""The same agent's loop with the async client, against the real service."""

import asyncio
from datetime import timedelta

import pytest

from service import Owner, Service
from wallet_service_client import (
    BadUserInputError,
    ConflictError,
    aiter_managed_wallet_changes,
    aiter_managed_wallets,
)
from wallet_service_client.aio import (
    AiManagedStateInput,
    AiStateUpdateInput,
    AsyncClient,
    ManagedWalletFields,
    Role,
    WalletStatus,
)


def inside(wallet: ManagedWalletFields) -> AiManagedStateInput:
    bounds = wallet.ai_bounds
    return AiManagedStateInput(
        current_max_position_size=bounds.max_position_size,
        current_leverage=bounds.leverage.max,
        current_risk=bounds.max_total_risk / 2,
    )


def test_an_agents_pass_over_every_wallet(service: Service, owner: Owner) -> None:
    """Page all wallets, write each inside its bounds, concurrently; one lost race recovered."""
    mine = [service.create_wallet(owner, max_total_risk=100 * (n + 1)) for n in range(4)]
    raced = mine[1]

    async def agent() -> None:
        async with AsyncClient(service.graphql, token=service.agent_token) as client:
            assert (await client.me()).me.role == Role.AGENT
            wallets = [wallet async for wallet in aiter_managed_wallets(client, page_size=3)]
            assert [wallet.id for wallet in wallets] == service.wallets
            ours = [wallet for wallet in wallets if wallet.id in mine]
            # The owner changes one of them after the agent read it.
            moved_to = service.set_limits(owner, raced, max_total_risk=50)

            async def decide(wallet: ManagedWalletFields) -> int:
                try:
                    written = await client.update_ai_managed_state(
                        wallet_id=wallet.id, expected_version=wallet.version, input=inside(wallet)
                    )
                except ConflictError as lost:
                    assert wallet.id == raced and lost.current_version == moved_to
                    fresh = (await client.managed_wallet(id=wallet.id)).managed_wallet
                    assert fresh.version == lost.current_version
                    written = await client.update_ai_managed_state(
                        wallet_id=wallet.id, expected_version=lost.current_version, input=inside(fresh)
                    )
                return int(written.update_ai_managed_state.ai_managed_state.current_max_position_size)

            sizes = await asyncio.gather(*(decide(wallet) for wallet in ours))
            assert sizes == [100, 50, 300, 400]

            with pytest.raises(BadUserInputError) as refused:
                wallet = (await client.managed_wallet(id=mine[0])).managed_wallet
                await client.update_ai_managed_state(
                    wallet_id=wallet.id,
                    expected_version=wallet.version,
                    input=AiManagedStateInput(current_leverage=wallet.ai_bounds.leverage.max + 1),
                )
            assert refused.value.field == "currentLeverage"

    asyncio.run(agent())


def test_pauses_resumes_writes_in_a_batch_and_follows_the_feed(service: Service, owner: Owner) -> None:
    first, second = (service.create_wallet(owner) for _ in range(2))

    async def agent() -> None:
        async with AsyncClient(service.graphql, token=service.agent_token) as client:
            since = max([w.user_changed_at async for w in aiter_managed_wallets(client)]) + timedelta(milliseconds=1)

            paused = (await client.ai_pause_wallet(wallet_id=first, reason="volatility")).ai_pause_wallet
            assert (paused.status, paused.pause_reason) == (WalletStatus.AI_PAUSED, "volatility")
            assert (await client.ai_resume_wallet(wallet_id=first)).ai_resume_wallet.status == WalletStatus.ACTIVE

            a, b = [(await client.managed_wallet(id=wallet_id)).managed_wallet for wallet_id in (first, second)]
            outcomes = (
                await client.update_ai_managed_states(
                    updates=[
                        AiStateUpdateInput(wallet_id=a.id, expected_version=a.version, input=inside(a)),
                        AiStateUpdateInput(wallet_id=b.id, expected_version=b.version - 1, input=inside(b)),
                    ]
                )
            ).update_ai_managed_states
            assert outcomes[0].wallet is not None and outcomes[0].wallet.version == a.version + 1
            assert outcomes[1].error is not None
            assert (outcomes[1].error.code, outcomes[1].error.current_version) == ("CONFLICT", b.version)

            # The agent's pause, resume and writes are no change for the feed; the owner's is.
            service.set_limits(owner, second, max_total_risk=123)
            changed = [wallet async for wallet in aiter_managed_wallet_changes(client, since=since)]
            assert [wallet.id for wallet in changed] == [second]
            assert changed[0].user_limits.max_total_risk == 123

    asyncio.run(agent())


def test_tells_a_paper_wallet_from_a_real_one(service: Service, owner: Owner) -> None:
    real = service.create_wallet(owner)
    paper = service.create_wallet(owner, paper=True)

    async def agent() -> dict[str, bool]:
        async with AsyncClient(service.graphql, token=service.agent_token) as client:
            return {wallet.id: wallet.is_paper async for wallet in aiter_managed_wallets(client)}

    seen = asyncio.run(agent())
    assert (seen[real], seen[paper]) == (False, True)

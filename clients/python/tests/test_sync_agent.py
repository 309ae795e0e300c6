"""An agent's loop with the sync client, against the real service."""

from collections.abc import Iterator
from datetime import timedelta

import pytest

from service import Owner, Service
from wallet_service_client import (
    BadUserInputError,
    ConflictError,
    iter_managed_wallet_changes,
    iter_managed_wallets,
)
from wallet_service_client.sync import (
    AiManagedStateInput,
    AiStateUpdateInput,
    Client,
    ManagedWalletFields,
    MarketSentiment,
    Role,
    TradingMode,
    WalletStatus,
)


@pytest.fixture
def client(service: Service) -> Iterator[Client]:
    with Client(service.graphql, token=service.agent_token) as agent:
        yield agent


def inside(wallet: ManagedWalletFields) -> AiManagedStateInput:
    """A decision at the very edge of what the policy allows the wallet now."""
    bounds = wallet.ai_bounds
    return AiManagedStateInput(
        current_max_position_size=bounds.max_position_size,
        current_leverage=bounds.leverage.max,
        adaptive_stop_loss=3.5,
        risk_score=35,
        market_sentiment=MarketSentiment.BULLISH,
        confidence_level=80,
        current_risk=bounds.max_total_risk / 2,
    )


def test_me_describes_the_agents_token(client: Client, service: Service) -> None:
    me = client.me().me
    assert me.role == Role.AGENT
    assert me.name == service.agent_name
    assert me.email == ""


def test_tells_a_paper_wallet_from_a_real_one(client: Client, service: Service, owner: Owner) -> None:
    real = service.create_wallet(owner)
    paper = service.create_wallet(owner, paper=True)
    seen = {wallet.id: wallet.is_paper for wallet in iter_managed_wallets(client)}
    assert (seen[real], seen[paper]) == (False, True)


def test_pages_every_wallet_once_oldest_first(client: Client, service: Service, owner: Owner) -> None:
    for _ in range(5):
        service.create_wallet(owner)
    seen = [wallet.id for wallet in iter_managed_wallets(client, page_size=2)]
    assert seen == service.wallets

    # By hand, as iter_managed_wallets does it: pageInfo's endCursor as the next page's after.
    first = client.managed_wallets(first=2).managed_wallets
    assert [edge.node.id for edge in first.edges] == service.wallets[:2]
    assert first.page_info.has_next_page and first.page_info.end_cursor
    second = client.managed_wallets(first=2, after=first.page_info.end_cursor).managed_wallets
    assert [edge.node.id for edge in second.edges] == service.wallets[2:4]

    paused = service.create_wallet(owner)
    service.user_pause(owner, paused)
    active = list(iter_managed_wallets(client, status=WalletStatus.ACTIVE, page_size=3))
    assert {wallet.status for wallet in active} == {WalletStatus.ACTIVE}
    assert paused not in [wallet.id for wallet in active]
    user_paused = list(iter_managed_wallets(client, status=WalletStatus.USER_PAUSED))
    assert paused in [wallet.id for wallet in user_paused]
    assert len(active) + len(user_paused) <= len(service.wallets)


def test_writes_inside_the_bounds_it_read(client: Client, service: Service, owner: Owner) -> None:
    wallet = client.managed_wallet(id=service.create_wallet(owner, max_total_risk=800)).managed_wallet
    assert wallet.ai_bounds.max_position_size == 800
    assert wallet.ai_bounds.leverage.max == 10  # MODERATE on Binance

    written = client.update_ai_managed_state(
        wallet_id=wallet.id, expected_version=wallet.version, input=inside(wallet)
    ).update_ai_managed_state
    assert written.version == wallet.version + 1
    assert written.status == WalletStatus.ACTIVE
    state = written.ai_managed_state
    assert (state.current_max_position_size, state.current_leverage, state.risk_score) == (800, 10, 35)
    assert state.market_sentiment == MarketSentiment.BULLISH
    assert state.last_ai_decision is not None and state.last_ai_decision.tzinfo is not None
    # A partial update: what the input left out stays as it was.
    assert state.open_positions == wallet.ai_managed_state.open_positions
    assert state.daily_pnl == wallet.ai_managed_state.daily_pnl


def test_is_refused_outside_the_bounds_and_nothing_is_written(client: Client, service: Service, owner: Owner) -> None:
    wallet = client.managed_wallet(id=service.create_wallet(owner, max_total_risk=500)).managed_wallet
    bounds = wallet.ai_bounds
    past = {
        "currentLeverage": AiManagedStateInput(current_leverage=bounds.leverage.max + 1),
        "currentMaxPositionSize": AiManagedStateInput(current_max_position_size=bounds.max_position_size + 0.01),
        "riskScore": AiManagedStateInput(risk_score=101),
    }
    for field, decision in past.items():
        with pytest.raises(BadUserInputError) as refused:
            client.update_ai_managed_state(wallet_id=wallet.id, expected_version=wallet.version, input=decision)
        assert refused.value.field == field
        assert refused.value.code == "BAD_USER_INPUT"
    again = client.managed_wallet(id=wallet.id).managed_wallet
    assert again.version == wallet.version
    assert again.ai_managed_state == wallet.ai_managed_state


def test_loses_a_race_and_recovers_from_the_current_version(client: Client, service: Service, owner: Owner) -> None:
    wallet = client.managed_wallet(id=service.create_wallet(owner, max_total_risk=1000)).managed_wallet
    decision = inside(wallet)
    # Meanwhile the owner tightens the limits: the version moves, the bounds shrink.
    moved_to = service.set_limits(owner, wallet.id, max_total_risk=400)

    with pytest.raises(ConflictError) as lost:
        client.update_ai_managed_state(wallet_id=wallet.id, expected_version=wallet.version, input=decision)
    assert lost.value.current_version == moved_to
    assert lost.value.current_version == wallet.version + 1

    fresh = client.managed_wallet(id=wallet.id).managed_wallet
    assert fresh.version == lost.value.current_version
    assert fresh.ai_bounds.max_position_size == 400
    # The old decision would now be refused; the one made again on what is there now is written.
    with pytest.raises(BadUserInputError) as refused:
        client.update_ai_managed_state(wallet_id=wallet.id, expected_version=lost.value.current_version, input=decision)
    assert refused.value.field == "currentMaxPositionSize"
    written = client.update_ai_managed_state(
        wallet_id=wallet.id, expected_version=lost.value.current_version, input=inside(fresh)
    ).update_ai_managed_state
    assert written.version == fresh.version + 1
    assert written.ai_managed_state.current_max_position_size == 400


def test_pauses_and_resumes_but_not_a_users_pause(client: Client, service: Service, owner: Owner) -> None:
    wallet_id = service.create_wallet(owner)
    paused = client.ai_pause_wallet(wallet_id=wallet_id, reason="exchange outage").ai_pause_wallet
    assert paused.status == WalletStatus.AI_PAUSED
    assert paused.pause_reason == "exchange outage"
    resumed = client.ai_resume_wallet(wallet_id=wallet_id).ai_resume_wallet
    assert resumed.status == WalletStatus.ACTIVE
    assert resumed.pause_reason is None

    service.user_pause(owner, wallet_id)
    with pytest.raises(ConflictError) as refused:
        client.ai_resume_wallet(wallet_id=wallet_id)
    assert refused.value.current_version is None
    assert client.managed_wallet(id=wallet_id).managed_wallet.status == WalletStatus.USER_PAUSED


def test_a_risk_past_the_limit_pauses_the_wallet(client: Client, service: Service, owner: Owner) -> None:
    wallet = client.managed_wallet(id=service.create_wallet(owner, max_total_risk=300)).managed_wallet
    written = client.update_ai_managed_state(
        wallet_id=wallet.id, expected_version=wallet.version, input=AiManagedStateInput(current_risk=301)
    ).update_ai_managed_state
    assert written.status == WalletStatus.AI_PAUSED
    assert written.pause_reason and written.pause_reason.startswith("risk limit exceeded")


def test_the_batched_write_gives_each_outcome_in_order(client: Client, service: Service, owner: Owner) -> None:
    good, stale, wide = (client.managed_wallet(id=service.create_wallet(owner)).managed_wallet for _ in range(3))
    moved_to = service.set_limits(owner, stale.id, max_total_risk=900)
    outcomes = client.update_ai_managed_states(
        updates=[
            AiStateUpdateInput(wallet_id=good.id, expected_version=good.version, input=inside(good)),
            AiStateUpdateInput(wallet_id=stale.id, expected_version=stale.version, input=AiManagedStateInput(risk_score=40)),
            AiStateUpdateInput(
                wallet_id=wide.id,
                expected_version=wide.version,
                input=AiManagedStateInput(current_leverage=wide.ai_bounds.leverage.max + 1),
            ),
        ]
    ).update_ai_managed_states
    assert [outcome.wallet_id for outcome in outcomes] == [good.id, stale.id, wide.id]

    assert outcomes[0].error is None and outcomes[0].wallet is not None
    assert outcomes[0].wallet.version == good.version + 1
    assert outcomes[0].wallet.ai_managed_state.current_leverage == good.ai_bounds.leverage.max

    assert outcomes[1].wallet is None and outcomes[1].error is not None
    assert (outcomes[1].error.code, outcomes[1].error.current_version) == ("CONFLICT", moved_to)

    assert outcomes[2].wallet is None and outcomes[2].error is not None
    assert (outcomes[2].error.code, outcomes[2].error.field) == ("BAD_USER_INPUT", "currentLeverage")
    assert client.managed_wallet(id=wide.id).managed_wallet.version == wide.version

    # More than 100 writes is refused as a whole.
    with pytest.raises(BadUserInputError) as refused:
        client.update_ai_managed_states(
            updates=[AiStateUpdateInput(wallet_id=good.id, input=AiManagedStateInput(risk_score=1))] * 101
        )
    assert refused.value.field == "updates"


def test_follows_the_change_feed(client: Client, service: Service, owner: Owner) -> None:
    tightened, paused, written = (service.create_wallet(owner) for _ in range(3))
    # Everything up to now is old news: the next pass starts after the latest change there is.
    since = max(wallet.user_changed_at for wallet in iter_managed_wallets(client)) + timedelta(milliseconds=1)

    service.set_limits(owner, tightened, max_total_risk=250, trading_mode="CONSERVATIVE")
    service.user_pause(owner, paused)
    target = client.managed_wallet(id=written).managed_wallet
    client.update_ai_managed_state(wallet_id=written, expected_version=target.version, input=inside(target))

    changed = list(iter_managed_wallet_changes(client, since=since, page_size=1))
    # The owner's changes, oldest first; the agent's own write is no change for the feed.
    assert [wallet.id for wallet in changed] == [tightened, paused]
    assert changed[0].user_limits.trading_mode == TradingMode.CONSERVATIVE
    assert changed[0].ai_bounds.max_position_size == 250
    assert changed[0].ai_bounds.leverage.max == 3
    assert changed[1].status == WalletStatus.USER_PAUSED
    assert all(wallet.user_changed_at >= since for wallet in changed)

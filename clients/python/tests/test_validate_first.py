"""An agent that asks before it acts (validate_only), and reads every bound a refused write breaks."""

from collections.abc import Iterator

import pytest

from service import Owner, Service
from wallet_service_client import BadUserInputError, BoundViolation
from wallet_service_client.sync import (
    AiManagedStateInput,
    AiStateUpdateInput,
    BoundRule,
    Client,
    ManagedWalletFields,
    WalletStatus,
)


@pytest.fixture
def client(service: Service) -> Iterator[Client]:
    with Client(service.graphql, token=service.agent_token) as agent:
        yield agent


def decide(wallet: ManagedWalletFields, risk: float) -> AiManagedStateInput:
    """A decision that takes `risk`, at the edge of the bounds the agent read."""
    return AiManagedStateInput(
        current_risk=risk,
        current_leverage=wallet.ai_bounds.leverage.max,
        current_max_position_size=wallet.ai_bounds.max_position_size,
        risk_score=60,
    )


def test_an_agent_loop_validates_first_then_writes_what_passed(client: Client, service: Service, owner: Owner) -> None:
    ids = [service.create_wallet(owner, max_total_risk=300) for _ in range(3)]
    wallets = [client.managed_wallet(id=i).managed_wallet for i in ids]
    # The last decision would take more risk than its owner allows: it would pause the wallet.
    decisions = [decide(wallets[0], 100), decide(wallets[1], 250), decide(wallets[2], 400)]

    checked = client.update_ai_managed_states(
        updates=[
            AiStateUpdateInput(wallet_id=w.id, expected_version=w.version, input=d, validate_only=True)
            for w, d in zip(wallets, decisions)
        ]
    ).update_ai_managed_states
    assert [c.error for c in checked] == [None, None, None]
    assert [c.wallet.status for c in checked] == [WalletStatus.ACTIVE, WalletStatus.ACTIVE, WalletStatus.AI_PAUSED]
    assert [c.wallet.version for c in checked] == [w.version + 1 for w in wallets]
    # Nothing was stored.
    assert [client.managed_wallet(id=i).managed_wallet.version for i in ids] == [w.version for w in wallets]

    # The agent writes only the decisions that would not pause their wallet.
    go = [(w, d) for w, d, c in zip(wallets, decisions, checked) if c.wallet.status == WalletStatus.ACTIVE]
    written = client.update_ai_managed_states(
        updates=[AiStateUpdateInput(wallet_id=w.id, expected_version=w.version, input=d) for w, d in go]
    ).update_ai_managed_states
    assert [o.error for o in written] == [None, None]
    for outcome, check in zip(written, checked):
        assert outcome.wallet.version == check.wallet.version
        assert outcome.wallet.ai_managed_state.current_risk == check.wallet.ai_managed_state.current_risk
    untouched = client.managed_wallet(id=ids[2]).managed_wallet
    assert (untouched.version, untouched.status) == (wallets[2].version, WalletStatus.ACTIVE)

    # One at a time alike: validate_only answers the wallet as the write would leave it.
    wallet = client.managed_wallet(id=ids[0]).managed_wallet
    decision = AiManagedStateInput(risk_score=20)
    would = client.update_ai_managed_state(
        wallet_id=wallet.id, expected_version=wallet.version, input=decision, validate_only=True
    ).update_ai_managed_state
    assert client.managed_wallet(id=wallet.id).managed_wallet.version == wallet.version
    did = client.update_ai_managed_state(
        wallet_id=wallet.id, expected_version=wallet.version, input=decision
    ).update_ai_managed_state
    assert (would.version, would.ai_managed_state.risk_score) == (did.version, did.ai_managed_state.risk_score)


def test_reads_every_broken_bound_of_a_refused_write(client: Client, service: Service, owner: Owner) -> None:
    wallet = client.managed_wallet(id=service.create_wallet(owner, max_total_risk=500)).managed_wallet
    past = AiManagedStateInput(
        current_max_position_size=600,
        current_leverage=wallet.ai_bounds.leverage.max + 5,
        risk_score=120,
    )
    expected = [
        BoundViolation("currentMaxPositionSize", "AT_MOST", 500.0, 600.0),
        BoundViolation(
            "currentLeverage", "AT_MOST", float(wallet.ai_bounds.leverage.max), float(wallet.ai_bounds.leverage.max + 5)
        ),
        BoundViolation("riskScore", "AT_MOST", 100.0, 120.0),
    ]
    for validate_only in (True, False):
        with pytest.raises(BadUserInputError) as refused:
            client.update_ai_managed_state(wallet_id=wallet.id, input=past, validate_only=validate_only)
        assert refused.value.field == "currentMaxPositionSize"
        assert refused.value.violations == expected

    # In a batch, on the item's error.
    [outcome] = client.update_ai_managed_states(
        updates=[AiStateUpdateInput(wallet_id=wallet.id, input=past)]
    ).update_ai_managed_states
    assert outcome.error is not None and outcome.error.code == "BAD_USER_INPUT"
    assert [(v.field, v.rule, v.bound, v.value) for v in outcome.error.violations] == [
        (e.field, BoundRule(e.rule), e.bound, e.value) for e in expected
    ]

    # A refusal that is no bound lists none.
    with pytest.raises(BadUserInputError) as refused:
        client.update_ai_managed_state(wallet_id=wallet.id, input=AiManagedStateInput(adaptive_stop_loss=0))
    assert refused.value.field == "adaptiveStopLoss"
    assert refused.value.violations == []
    assert client.managed_wallet(id=wallet.id).managed_wallet.version == wallet.version

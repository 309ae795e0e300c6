"""An agent that acts only where owners granted it (a GRANTED_WALLETS token), against the real
service: it sees, validates and writes its granted wallets, and nothing it is answered about the
others tells it they exist."""

import secrets
from collections.abc import Iterator

import pytest

from service import Agent, Owner, Service
from wallet_service_client import (
    BadUserInputError,
    BoundViolation,
    ForbiddenError,
    NotFoundError,
    iter_managed_wallets,
)
from wallet_service_client.sync import (
    AgentPermission,
    AiManagedStateInput,
    AiStateUpdateInput,
    Client,
    ManagedWalletFields,
    WalletStatus,
)

MANAGE_STATE = AgentPermission.MANAGE_STATE
PAUSE_RESUME = AgentPermission.PAUSE_RESUME


@pytest.fixture
def agent(service: Service) -> Agent:
    """A GRANTED_WALLETS token of its own for each test, so that no grant outlives its test."""
    return service.issue_agent_token(f"granted-agent-{secrets.token_hex(3)}")


@pytest.fixture
def client(service: Service, agent: Agent) -> Iterator[Client]:
    with Client(service.graphql, token=agent.token) as granted:
        yield granted


def inside(wallet: ManagedWalletFields) -> AiManagedStateInput:
    """A decision at the edge of the bounds the agent read."""
    return AiManagedStateInput(
        current_risk=wallet.ai_bounds.max_total_risk / 2,
        current_leverage=wallet.ai_bounds.leverage.max,
        current_max_position_size=wallet.ai_bounds.max_position_size,
        risk_score=40,
    )


def unknown_id_error(client: Client) -> NotFoundError:
    with pytest.raises(NotFoundError) as unknown:
        client.managed_wallet(id=secrets.token_hex(12))
    return unknown.value


def test_a_granted_agents_loop_sees_validates_and_writes_only_its_wallets(
    client: Client, service: Service, owner: Owner, agent: Agent
) -> None:
    state_only, both, pause_only, ungranted = (service.create_wallet(owner, max_total_risk=300) for _ in range(4))
    service.grant_agent(owner, state_only, agent, ["MANAGE_STATE"])
    service.grant_agent(owner, both, agent, ["MANAGE_STATE", "PAUSE_RESUME"])
    service.grant_agent(owner, pause_only, agent, ["PAUSE_RESUME"])

    grants = {grant.wallet_id: grant for grant in client.my_grants().my_grants}
    assert {wallet: set(grant.permissions) for wallet, grant in grants.items()} == {
        state_only: {MANAGE_STATE},
        both: {MANAGE_STATE, PAUSE_RESUME},
        pause_only: {PAUSE_RESUME},
    }
    for grant in grants.values():
        assert (grant.agent_id, grant.agent_name, grant.expires_at, grant.revoked_at) == (agent.id, agent.name, None, None)

    # Any grant lets it read the wallet: the listing is exactly the granted wallets, oldest first,
    # whatever else the service holds (`ungranted`, the other tests' wallets).
    wallets = list(iter_managed_wallets(client, page_size=2))
    assert [wallet.id for wallet in wallets] == [state_only, both, pause_only]

    # The loop: a decision for each wallet it may write, all validated first; the one on `both`
    # would take more leverage than its bounds allow.
    writable = [wallet for wallet in wallets if MANAGE_STATE in grants[wallet.id].permissions]
    assert [wallet.id for wallet in writable] == [state_only, both]
    decisions = [inside(writable[0]), inside(writable[1])]
    decisions[1].current_leverage = writable[1].ai_bounds.leverage.max + 5
    checked = client.update_ai_managed_states(
        updates=[
            AiStateUpdateInput(wallet_id=w.id, expected_version=w.version, input=d, validate_only=True)
            for w, d in zip(writable, decisions)
        ]
    ).update_ai_managed_states
    assert checked[0].error is None and checked[0].wallet.version == writable[0].version + 1
    assert checked[1].error is not None and checked[1].error.code == "BAD_USER_INPUT"
    assert [v.field for v in checked[1].error.violations] == ["currentLeverage"]
    assert [client.managed_wallet(id=w.id).managed_wallet.version for w in writable] == [w.version for w in writable]

    passed = [(w, d) for w, d, c in zip(writable, decisions, checked) if c.error is None]
    written = client.update_ai_managed_states(
        updates=[AiStateUpdateInput(wallet_id=w.id, expected_version=w.version, input=d) for w, d in passed]
    ).update_ai_managed_states
    assert [(o.wallet_id, o.error) for o in written] == [(state_only, None)]
    assert written[0].wallet.version == checked[0].wallet.version
    assert written[0].wallet.ai_managed_state.current_leverage == writable[0].ai_bounds.leverage.max
    assert client.managed_wallet(id=both).managed_wallet.version == writable[1].version

    # PAUSE_RESUME where it holds it.
    assert client.ai_pause_wallet(wallet_id=both, reason="market halted").ai_pause_wallet.status == WalletStatus.AI_PAUSED
    assert client.ai_resume_wallet(wallet_id=both).ai_resume_wallet.status == WalletStatus.ACTIVE


def test_an_ungranted_wallet_is_an_unknown_id_and_a_missing_permission_is_forbidden(
    client: Client, service: Service, owner: Owner, agent: Agent
) -> None:
    state_only, pause_only, ungranted = (service.create_wallet(owner) for _ in range(3))
    service.grant_agent(owner, state_only, agent, ["MANAGE_STATE"])
    service.grant_agent(owner, pause_only, agent, ["PAUSE_RESUME"])
    unknown = unknown_id_error(client)
    wallet = client.managed_wallet(id=state_only).managed_wallet
    decision = inside(wallet)
    # The wallets exist: the platform's ALL_WALLETS agent reads them.
    with Client(service.graphql, token=service.agent_token) as everywhere:
        versions = [everywhere.managed_wallet(id=i).managed_wallet.version for i in (ungranted, pause_only)]

    # Yet this agent is answered exactly as for an id that names no wallet, reading or writing.
    for attempt in (
        lambda: client.managed_wallet(id=ungranted),
        lambda: client.update_ai_managed_state(wallet_id=ungranted, input=decision),
        lambda: client.update_ai_managed_state(wallet_id=ungranted, input=decision, validate_only=True),
        lambda: client.ai_pause_wallet(wallet_id=ungranted, reason="market halted"),
        lambda: client.ai_resume_wallet(wallet_id=ungranted),
    ):
        with pytest.raises(NotFoundError) as refused:
            attempt()
        assert (refused.value.message, refused.value.extensions) == (unknown.message, unknown.extensions)

    # A grant without the permission: reading works, the write is FORBIDDEN, validate-only alike.
    assert client.managed_wallet(id=pause_only).managed_wallet.id == pause_only
    for validate_only in (True, False):
        with pytest.raises(ForbiddenError):
            client.update_ai_managed_state(wallet_id=pause_only, input=decision, validate_only=validate_only)
    with pytest.raises(ForbiddenError):
        client.ai_pause_wallet(wallet_id=state_only, reason="market halted")

    # In a batch, each is its own outcome's error; the granted write goes on.
    outcomes = client.update_ai_managed_states(
        updates=[
            AiStateUpdateInput(wallet_id=ungranted, input=decision),
            AiStateUpdateInput(wallet_id=pause_only, input=decision),
            AiStateUpdateInput(wallet_id=state_only, expected_version=wallet.version, input=decision),
        ]
    ).update_ai_managed_states
    assert [(o.wallet_id, o.error and o.error.code) for o in outcomes] == [
        (ungranted, "NOT_FOUND"),
        (pause_only, "FORBIDDEN"),
        (state_only, None),
    ]
    assert outcomes[0].error is not None and outcomes[0].error.message == unknown.message
    assert outcomes[2].wallet is not None and outcomes[2].wallet.version == wallet.version + 1

    with Client(service.graphql, token=service.agent_token) as everywhere:
        assert [everywhere.managed_wallet(id=i).managed_wallet.version for i in (ungranted, pause_only)] == versions


def test_a_revoked_grant_makes_the_wallet_an_unknown_id(
    client: Client, service: Service, owner: Owner, agent: Agent
) -> None:
    kept, revoked = (service.create_wallet(owner) for _ in range(2))
    for wallet_id in (kept, revoked):
        service.grant_agent(owner, wallet_id, agent, ["MANAGE_STATE"])
    wallet = client.managed_wallet(id=revoked).managed_wallet
    assert client.update_ai_managed_state(
        wallet_id=revoked, expected_version=wallet.version, input=inside(wallet)
    ).update_ai_managed_state.version == wallet.version + 1

    assert service.revoke_agent_grant(owner, revoked, agent)["revokedAt"] is not None
    unknown = unknown_id_error(client)
    for attempt in (
        lambda: client.managed_wallet(id=revoked),
        lambda: client.update_ai_managed_state(wallet_id=revoked, input=inside(wallet), validate_only=True),
        lambda: client.update_ai_managed_state(wallet_id=revoked, input=inside(wallet)),
    ):
        with pytest.raises(NotFoundError) as refused:
            attempt()
        assert (refused.value.message, refused.value.extensions) == (unknown.message, unknown.extensions)
    assert [wallet.id for wallet in iter_managed_wallets(client)] == [kept]
    assert [grant.wallet_id for grant in client.my_grants().my_grants] == [kept]


def test_a_refused_write_under_a_grant_lists_every_broken_bound(
    client: Client, service: Service, owner: Owner, agent: Agent
) -> None:
    wallet_id = service.create_wallet(owner, max_total_risk=500)
    service.grant_agent(owner, wallet_id, agent, ["MANAGE_STATE"])
    wallet = client.managed_wallet(id=wallet_id).managed_wallet
    past = AiManagedStateInput(current_max_position_size=600, risk_score=120)
    for validate_only in (True, False):
        with pytest.raises(BadUserInputError) as refused:
            client.update_ai_managed_state(wallet_id=wallet_id, input=past, validate_only=validate_only)
        assert refused.value.field == "currentMaxPositionSize"
        assert refused.value.violations == [
            BoundViolation("currentMaxPositionSize", "AT_MOST", 500.0, 600.0),
            BoundViolation("riskScore", "AT_MOST", 100.0, 120.0),
        ]
    assert client.managed_wallet(id=wallet_id).managed_wallet.version == wallet.version

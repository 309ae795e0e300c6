"""The agents of docs/agents.md (the ten-line one, and a GRANTED_WALLETS one), run as they are
written there, against the real service."""

import re

import pytest

from service import ROOT, Owner, Service
from wallet_service_client.sync import Client, WalletStatus

AGENTS_DOC = "docs/agents.md"
MARKER = "<!-- the-ten-line-agent: clients/python/tests/test_readme.py runs this block -->"
GRANTED_MARKER = "<!-- the-granted-agent: clients/python/tests/test_readme.py runs this block -->"


def documented_agent(marker: str = MARKER) -> str:
    doc = (ROOT / AGENTS_DOC).read_text()
    # A blank line may part the marker from the block (Prettier puts one there).
    match = re.search(re.escape(marker) + r"\n+```python\n(.*?)\n```\n", doc, re.DOTALL)
    assert match, f"the agent block of {AGENTS_DOC} is missing"
    return match.group(1)


def test_the_documented_agent_writes_every_active_wallet_inside_its_bounds(
    service: Service, owner: Owner, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = [service.create_wallet(owner, max_total_risk=100 * (n + 1)) for n in range(3)]
    code = documented_agent()
    assert len(code.splitlines()) <= 16

    monkeypatch.setenv("WALLET_SERVICE_URL", service.graphql)
    monkeypatch.setenv("AGENT_TOKEN", service.agent_token)
    exec(compile(code, AGENTS_DOC, "exec"), {"__name__": "__main__"})

    with Client(service.graphql, token=service.agent_token) as client:
        for n, wallet_id in enumerate(ours):
            wallet = client.managed_wallet(id=wallet_id).managed_wallet
            assert wallet.status == WalletStatus.ACTIVE
            assert wallet.ai_managed_state.current_max_position_size == 50 * (n + 1)
            assert wallet.ai_managed_state.current_leverage == wallet.ai_bounds.leverage.min
            assert wallet.ai_managed_state.last_ai_decision is not None


def test_the_documented_granted_agent_writes_only_where_it_may(
    service: Service, owner: Owner, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = service.issue_agent_token("documented-granted-agent")
    writable, paused_only, ungranted = (service.create_wallet(owner) for _ in range(3))
    service.grant_agent(owner, writable, agent, ["MANAGE_STATE"])
    service.grant_agent(owner, paused_only, agent, ["PAUSE_RESUME"])
    code = documented_agent(GRANTED_MARKER)
    assert len(code.splitlines()) <= 16

    monkeypatch.setenv("WALLET_SERVICE_URL", service.graphql)
    monkeypatch.setenv("AGENT_TOKEN", agent.token)
    exec(compile(code, AGENTS_DOC, "exec"), {"__name__": "__main__"})

    with Client(service.graphql, token=service.agent_token) as platform:  # an ALL_WALLETS agent sees all
        written, left, other = (platform.managed_wallet(id=i).managed_wallet for i in (writable, paused_only, ungranted))
    assert written.version == 1
    assert written.ai_managed_state.current_leverage == written.ai_bounds.leverage.min
    assert (left.version, other.version) == (0, 0)

"""The ten-line agent of docs/agents.md, run as it is written there, against the real service."""

import re

import pytest

from service import ROOT, Owner, Service
from wallet_service_client.sync import Client, WalletStatus

AGENTS_DOC = "docs/agents.md"
MARKER = "<!-- the-ten-line-agent: clients/python/tests/test_readme.py runs this block -->"


def documented_agent() -> str:
    doc = (ROOT / AGENTS_DOC).read_text()
    # A blank line may part the marker from the block (Prettier puts one there).
    match = re.search(re.escape(MARKER) + r"\n+```python\n(.*?)\n```\n", doc, re.DOTALL)
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

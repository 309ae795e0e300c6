"""The real wallet service for the client's tests: dist/main.js (and dist/db/db-cli.js) started as
processes on a fresh embedded database, and what a test needs set up through its GraphQL API."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import httpx

ROOT = Path(__file__).resolve().parents[3]
DIST = ROOT / "dist"
ADMIN_EMAIL = "admin@agents.test"
ADMIN_PASSWORD = "admin-password-for-the-client-tests"
USER_PASSWORD = "correct horse battery staple"
# Low, so that a test can run into it; the session registers one owner, and nothing else does.
REGISTRATIONS_PER_HOUR = 3


class Process:
    """A node entry point of dist/, its stdout lines collected as they come."""

    def __init__(self, script: str, env: dict[str, str]) -> None:
        path = DIST / script
        if not path.exists():
            raise RuntimeError(f"dist/{script} is missing: run `npm run build` first (npm test does)")
        self.lines: list[str] = []
        self.child = subprocess.Popen(
            ["node", str(path)],
            cwd=ROOT,
            # Only what the service needs, as a deployment would give it.
            env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", ""), **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.child.stdout is not None
        for line in self.child.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for_line(self, what: str, match: Any, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if match(line):
                    return line
            if self.child.poll() is not None:
                raise RuntimeError(f"{what}: the process exited with {self.child.returncode}:\n" + "\n".join(self.lines[-40:]))
            time.sleep(0.05)
        raise RuntimeError(f"timed out waiting for {what}:\n" + "\n".join(self.lines[-40:]))

    def stop(self, timeout: float = 30.0) -> Optional[int]:
        if self.child.poll() is None:
            self.child.send_signal(signal.SIGTERM)
            try:
                self.child.wait(timeout)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait()
        self._reader.join(5)
        return self.child.returncode


def _listening_url(line: str) -> Optional[str]:
    if "wallet service listening" not in line:
        return None
    return json.loads(line)["url"]


@dataclass
class Owner:
    id: str
    token: str


@dataclass
class Agent:
    """An agent token as issueAgentToken answers it: id is what grantAgent takes."""

    id: str
    name: str
    token: str


@dataclass
class Service:
    """One running service; `graphql` is its /graphql URL."""

    graphql: str
    process: Process
    data_dir: str
    database: Optional[Process] = None
    admin_token: str = ""
    agent_token: str = ""
    agent_name: str = "pytest-agent"
    # Every wallet created through this service, in creation order.
    wallets: list[str] = field(default_factory=list)
    _binance: Optional[dict[str, Any]] = None

    @property
    def base_url(self) -> str:
        return self.graphql.removesuffix("/graphql")

    def gql(self, query: str, variables: Optional[dict[str, Any]] = None, token: Optional[str] = None) -> dict[str, Any]:
        """A set-up request (not the client under test); any error fails the test."""
        headers = {"authorization": f"Bearer {token}"} if token else {}
        response = httpx.post(self.graphql, json={"query": query, "variables": variables or {}}, headers=headers, timeout=60)
        body = response.json()
        if body.get("errors"):
            raise AssertionError(f"set-up request failed: {body['errors']}")
        return body["data"]

    def login_admin(self) -> None:
        self.admin_token = self.gql(
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            {"e": ADMIN_EMAIL, "p": ADMIN_PASSWORD},
        )["login"]["token"]
        self.agent_token = self.gql(
            "mutation($n: String!) { issueAgentToken(name: $n, expiresInDays: 1) { token } }",
            {"n": self.agent_name},
            self.admin_token,
        )["issueAgentToken"]["token"]

    def issue_agent_token(self, name: str, scope: str = "GRANTED_WALLETS") -> Agent:
        """The admin issues an agent token of that scope: by default one that acts only where
        owners grant it (an agent users may choose)."""
        issued = self.gql(
            "mutation($n: String!, $s: AgentScope!) { issueAgentToken(name: $n, expiresInDays: 1, scope: $s) { id name token } }",
            {"n": name, "s": scope},
            self.admin_token,
        )["issueAgentToken"]
        return Agent(id=issued["id"], name=issued["name"], token=issued["token"])

    def grant_agent(
        self, owner: Owner, wallet_id: str, agent: Agent, permissions: list[str], expires_at: Optional[str] = None
    ) -> dict[str, Any]:
        """The owner lets the agent act on their wallet; the grant as the service answers it."""
        return self.gql(
            "mutation($w: ObjectID!, $a: ObjectID!, $p: [AgentPermission!]!, $e: DateTimeISO) {"
            " grantAgent(walletId: $w, agentId: $a, permissions: $p, expiresAt: $e) { id walletId agentId permissions } }",
            {"w": wallet_id, "a": agent.id, "p": permissions, "e": expires_at},
            owner.token,
        )["grantAgent"]

    def revoke_agent_grant(self, owner: Owner, wallet_id: str, agent: Agent) -> dict[str, Any]:
        """The owner takes the agent's grant on their wallet back."""
        return self.gql(
            "mutation($w: ObjectID!, $a: ObjectID!) { revokeAgentGrant(walletId: $w, agentId: $a) { id revokedAt } }",
            {"w": wallet_id, "a": agent.id},
            owner.token,
        )["revokeAgentGrant"]

    def register_owner(self) -> Owner:
        email = f"owner-{secrets.token_hex(4)}@agents.test"
        payload = self.gql(
            "mutation($i: RegisterInput!) { register(input: $i) { token user { id } } }",
            {"i": {"email": email, "password": USER_PASSWORD, "name": "Wallet owner"}},
        )["register"]
        return Owner(id=payload["user"]["id"], token=payload["token"])

    def binance(self) -> dict[str, Any]:
        if self._binance is None:
            self._binance = self.gql(
                '{ walletDefinition(slug: "binance") { id features { leverage { min max } supportedAssets } } }'
            )["walletDefinition"]
        return self._binance

    def create_wallet(
        self, owner: Owner, max_total_risk: float = 1000, trading_mode: str = "MODERATE", paper: bool = False
    ) -> str:
        """A Binance credential of the owner (values that only need to pass validation, or a PAPER one) and a wallet on it."""
        keys = {
            "values": [
                {"key": "api_key", "value": f"key-{secrets.token_hex(12)}"},
                {"key": "api_secret", "value": f"secret-{secrets.token_hex(16)}"},
            ]
        }
        if paper:
            keys = {"environment": "PAPER", "values": [], "paperBalances": [{"asset": "USDT", "amount": 1000}]}
        credential = self.gql(
            "mutation($i: CreateCredentialInput!) { createCredential(input: $i) { id } }",
            {"i": {"walletId": self.binance()["id"], "name": f"Binance {len(self.wallets) + 1}", **keys}},
            owner.token,
        )["createCredential"]["id"]
        wallet = self.gql(
            "mutation($i: CreateUserWalletInput!) { createUserWallet(input: $i) { id } }",
            {
                "i": {
                    "credentialId": credential,
                    "name": f"Wallet {len(self.wallets) + 1}",
                    "userLimits": {"maxTotalRisk": max_total_risk, "allowedSymbols": None, "tradingMode": trading_mode},
                }
            },
            owner.token,
        )["createUserWallet"]["id"]
        self.wallets.append(wallet)
        return wallet

    def set_limits(self, owner: Owner, wallet_id: str, max_total_risk: float, trading_mode: str = "MODERATE") -> int:
        """The owner changes the wallet's limits (a user's write); the version it made."""
        return self.gql(
            "mutation($id: ObjectID!, $i: UpdateUserWalletInput!) { updateUserWallet(id: $id, input: $i) { version } }",
            {"id": wallet_id, "i": {"userLimits": {"maxTotalRisk": max_total_risk, "allowedSymbols": None, "tradingMode": trading_mode}}},
            owner.token,
        )["updateUserWallet"]["version"]

    def user_pause(self, owner: Owner, wallet_id: str) -> None:
        self.gql("mutation($id: ObjectID!) { pauseUserWallet(id: $id) { status } }", {"id": wallet_id}, owner.token)

    def stop(self) -> None:
        self.process.stop()
        if self.database is not None:
            self.database.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def start_service(separate_database: bool = False) -> Service:
    """main.js with NODE_ENV=test on a fresh embedded database in a temporary DATA_DIR: its own
    engine, or (separate_database) one of `npm run db`'s that a test can stop under it."""
    data_dir = tempfile.mkdtemp(prefix="wallet-client-tests-")
    env = {
        "NODE_ENV": "test",
        "HOST": "127.0.0.1",
        "PORT": "0",
        "LOG_LEVEL": "info",
        "DATA_DIR": data_dir,
        "ADMIN_EMAIL": ADMIN_EMAIL,
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "RATE_LIMIT_REGISTRATIONS_PER_HOUR": str(REGISTRATIONS_PER_HOUR),
        "MAX_CREDENTIALS_PER_USER": "500",
        "MAX_WALLETS_PER_USER": "500",
    }
    database = None
    if separate_database:
        database = Process("db/db-cli.js", {"NODE_ENV": "test", "DATA_DIR": os.path.join(data_dir, "db")})
        uri = database.wait_for_line("the database's URI", lambda line: line.startswith("mongodb://"))
        env["MONGODB_URI"] = uri.rstrip("/") + "/wallet_client_tests"
    process = Process("main.js", env)
    try:
        line = process.wait_for_line("the service to listen", lambda line: _listening_url(line) is not None)
    except BaseException:
        process.stop()
        if database is not None:
            database.stop()
        raise
    service = Service(graphql=_listening_url(line) or "", process=process, data_dir=data_dir, database=database)
    service.login_admin()
    return service

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

import wallet_service_client
from service import Owner, Service, start_service

SOURCE = Path(__file__).resolve().parents[1] / "wallet_service_client"


def _digest(package: Path) -> dict[str, str]:
    return {
        str(path.relative_to(package)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(package.rglob("*.py"))
    }


def pytest_sessionstart(session: pytest.Session) -> None:
    # The tests import the installed package: it must be this tree's, not an older install.
    installed = Path(wallet_service_client.__file__).resolve().parent
    if installed != SOURCE and _digest(installed) != _digest(SOURCE):
        raise pytest.UsageError(
            f"the installed wallet_service_client ({installed}) is not clients/python's: "
            "pip install ./clients/python (or pip install -e ./clients/python while working on it)"
        )


@pytest.fixture(scope="session")
def service() -> Iterator[Service]:
    running = start_service()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def owner(service: Service) -> Owner:
    """The one user of the session whose wallets the agents manage."""
    return service.register_owner()

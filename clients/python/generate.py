"""Generates wallet_service_client.sync and wallet_service_client.aio with ariadne-codegen, from
schema/schema.graphql and queries/*.graphql (`npm run client:python`).

--out DIR writes the two packages under DIR instead (test/python-client.test.ts compares that with
the committed ones). The output depends on the versions of ariadne-codegen, of the ruff it formats
with and of the graphql-core it prints the operations with: all three must be those
requirements-dev.txt pins.
"""

import argparse
import contextlib
import io
import os
import re
import shutil
import sys
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
PINNED = ("ariadne-codegen", "ruff", "graphql-core")
VARIANTS = {
    # package: (async_client, client_name, base client file, base client class)
    "sync": (False, "Client", "codegen/base_client.py", "WalletServiceBaseClient"),
    "aio": (True, "AsyncClient", "codegen/async_base_client.py", "AsyncWalletServiceBaseClient"),
}


def pinned_versions() -> dict[str, str]:
    pins = {}
    for line in (HERE / "requirements-dev.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;#]+)", line.strip())
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def check_tools() -> None:
    pins = pinned_versions()
    problems = []
    for name in PINNED:
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != pins[name]:
            problems.append(f"{name}=={pins[name]} is needed, {'found ' + installed if installed else 'not installed'}")
    if problems:
        sys.exit(
            "generate.py: " + "; ".join(problems) + ". Install the pinned tools "
            "(.ci/run does): python3 -m pip install -r clients/python/requirements-dev.txt"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "wallet_service_client")
    out = parser.parse_args().out.resolve()
    check_tools()

    import toml
    from ariadne_codegen.main import client

    base = toml.loads((HERE / "codegen.toml").read_text())
    # Paths in the config and in the files' source comments stay relative to clients/python.
    cwd = os.getcwd()
    os.chdir(HERE)
    try:
        for package, (async_client, client_name, base_file, base_name) in VARIANTS.items():
            shutil.rmtree(out / package, ignore_errors=True)
            out.mkdir(parents=True, exist_ok=True)
            section = dict(base["tool"]["ariadne-codegen"])
            section.update(
                target_package_name=package,
                target_package_path=str(out),
                async_client=async_client,
                client_name=client_name,
                base_client_name=base_name,
                base_client_file_path=base_file,
            )
            # ariadne-codegen narrates its settings on stdout; only failures matter here.
            with contextlib.redirect_stdout(io.StringIO()):
                client({"tool": {"ariadne-codegen": section}})
            print(f"generated {out / package}")
    finally:
        os.chdir(cwd)


if __name__ == "__main__":
    main()

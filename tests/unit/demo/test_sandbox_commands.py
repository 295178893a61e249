"""``dualbus emulator`` and ``dualbus sandbox`` as a person runs them: they serve until SIGTERM, then exit."""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import time
from pathlib import Path

import httpx

from dualbus.demo.launch import cli_command


def _stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_emulator_prints_its_connection_string(tmp_path: Path) -> None:
    """Without --config the topology's own Config.json is used and the emulator says where it listens."""
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        cli_command("emulator", "--port", "0", "--data-dir", str(tmp_path)),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("Endpoint=sb://127.0.0.1:")
        assert "UseDevelopmentEmulator=true" in line
    finally:
        assert _stop(process) == 0
        if process.stdout is not None:
            process.stdout.close()


def test_emulator_refuses_a_broken_config(tmp_path: Path) -> None:
    """A Config.json that is not valid makes the command fail with a message instead of serving."""
    config = tmp_path / "Config.json"
    config.write_text("{not json")
    result = subprocess.run(  # noqa: S603 - our own CLI
        cli_command("emulator", "--config", str(config), "--port", "0"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "error" in result.stderr.lower()


def test_sandbox_writes_where_the_twins_listen(tmp_path: Path) -> None:
    """The info file names both twins and their credentials, and the seeded twins answer with them."""
    info_file = tmp_path / "sandbox.json"
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        cli_command(
            "sandbox", "--customers", "5", "--vendors", "2", "--products", "2", "--info-file", str(info_file)
        ),
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not info_file.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
        info = json.loads(info_file.read_text())
        form = {
            "grant_type": "client_credentials",
            "client_id": "workload",
            "client_secret": info["clients"]["workload"],
            "scope": info["dataverse"]["scope"],
        }
        token = httpx.post(info["dataverse"]["token_url"], data=form, timeout=10).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        companies = httpx.get(f"{info['dataverse']['api_url']}cdm_companies", headers=headers, timeout=10)
        assert companies.json()["value"]
        assert info["seeded"]["fo"] > 0
        assert info["fo"]["url"].startswith("http://127.0.0.1:")
        # The same tokens over HTTPS, for azure-identity, verified with the CA file the info names.
        fo = info["fo"]
        trust = ssl.create_default_context(cafile=fo["ca_bundle"])
        secure = f"{fo['authority']}/{fo['tenant']}/oauth2/v2.0/token"
        answer = httpx.post(secure, data={**form, "scope": fo["scope"]}, verify=trust, timeout=10)
        assert answer.json()["token_type"] == "Bearer"
    finally:
        assert _stop(process) == 0

"""Every Service Bus client shares one TLS context instead of the SDK building one per connection."""

from __future__ import annotations

import ssl
from pathlib import Path

import certifi
import pytest

from dualbus.shared.bus import _with_tls_context


def test_clients_share_one_context_verifying_like_the_sdk() -> None:
    first = _with_tls_context({"retry_total": 0})
    second = _with_tls_context({})
    context = first["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context is second["ssl_context"]
    assert first["retry_total"] == 0
    # As the SDK's own context: the certificate and the host name are checked.
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.get_ca_certs()  # certifi's bundle, which the SDK loads when told nothing else


def test_a_given_bundle_is_what_the_shared_context_trusts(tmp_path: Path) -> None:
    bundle = tmp_path / "one.pem"
    bundle.write_text(
        Path(certifi.where()).read_text().split("-----END CERTIFICATE-----")[0]
        + "-----END CERTIFICATE-----\n"
    )
    options = _with_tls_context({"connection_verify": str(bundle)})
    assert "connection_verify" not in options
    assert len(options["ssl_context"].get_ca_certs()) == 1


@pytest.mark.parametrize(
    "options", [{"connection_verify": False}, {"ssl_context": ssl.create_default_context()}]
)
def test_an_explicit_choice_is_left_alone(options: dict[str, object]) -> None:
    assert _with_tls_context(dict(options)) == options

"""The emulator's SAS check refuses what Azure refuses, with a refusal, whatever the token holds."""

from __future__ import annotations

import time

import pytest

from dualbus.sandbox.errors import SandboxAuthError
from dualbus.sandbox.servicebus.sas import DEFAULT_KEY_NAME, KeyRing


@pytest.mark.parametrize("signature", ["%C3%A9", "é", "%FF%FE", "sig+with+spaces"])
def test_a_signature_no_key_could_make_is_refused_not_a_crash(signature: str) -> None:
    """Characters beyond ASCII in ``sig`` (which no base64 signature has) are a refusal, not a TypeError
    that left the HTTP client without an answer and a CBS put-token without a reply."""
    expiry = int(time.time()) + 600
    token = f"SharedAccessSignature sr=sb%3A%2F%2Fhost%2Fq&sig={signature}&se={expiry}&skn={DEFAULT_KEY_NAME}"
    with pytest.raises(SandboxAuthError, match="signature does not match"):
        KeyRing().verify(token, "sb://host/q")

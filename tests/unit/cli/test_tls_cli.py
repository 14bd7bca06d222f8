"""meshcli's TLS: the banner says https:// when the API serves it, and how to trust its CA."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshcli.banner import announce, client_url
from meshcore.settings import Settings


def test_the_client_url_says_https_when_tls_is_on() -> None:
    assert client_url("0.0.0.0", 8443, tls=True) == "https://127.0.0.1:8443"
    assert client_url("::1", 8000, tls=True) == "https://[::1]:8000"
    assert client_url("0.0.0.0", 8000) == "http://127.0.0.1:8000"


def test_the_banner_gives_https_urls_and_the_ca_options(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pem = tmp_path / "api.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = Settings(tls_cert_file=pem, tls_key_file=pem)
    announce(settings, host="127.0.0.1", port=8000, data_dir=Path("/data"))
    banner = capsys.readouterr().err

    assert "Mesh is starting on https://127.0.0.1:8000 " in banner
    assert "http://" not in banner
    # The CLI's default is http://127.0.0.1:8000, so `Try it` must name the https URL.
    (try_it,) = [line for line in banner.splitlines() if "Try it:" in line]
    assert "--url https://127.0.0.1:8000" in try_it
    assert "--ca-file" in banner and "--cacert" in banner

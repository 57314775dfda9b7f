"""Helpers every test folder shares: paths, the CLI runner, a dump of the store, secrets to plant.

Fixtures live in the `conftest.py` of each folder; plain helpers live here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rca.cli.app import main
from rca.store import Store
from rca.store.engine import metadata

ROOT = Path(__file__).parents[1]
"""The repository's root."""
EXAMPLES = ROOT / "examples"
"""The example postmortems and incidents."""


def run(data_dir: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(["--data-dir", str(data_dir), *args])
    out, err = capsys.readouterr()
    code = done.value.code
    return (code if isinstance(code, int) else 1), out, err


def dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, for before/after comparisons (but the index writer's lease,
    which any sync takes and releases, changing nothing stored)."""
    with store.engine.connect() as conn:
        return {
            table.name: sorted(tuple(row) for row in conn.execute(table.select()))
            for table in metadata.sorted_tables
            if table.name != "index_leases"
        }


PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n"
    "-----END RSA PRIVATE KEY-----"
)
OPENSSH = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "QyNTUxOQAAACDx3Vq2cO5ZbCxJpP0cT9ev4v5yq2oQx1hQ3T2l8rE9mQAAAJgyVt0dMlbd\n"
    "-----END OPENSSH PRIVATE KEY-----"
)

# Secrets of every kind the redactor must catch: (what, text holding it, the secret).
CANARIES: list[tuple[str, str, str]] = [
    ("aws access key id", "boto: using key AKIAZ3X7QW9PLM2NB4CD", "AKIAZ3X7QW9PLM2NB4CD"),
    (
        "aws secret key",
        "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8Ex4mPlq",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8Ex4mPlq",
    ),
    (
        "github classic token",
        "git clone failed with token ghp_R4nd0mT0k3nV4lu3F0rT3st1ngPurp0s3s",
        "ghp_R4nd0mT0k3nV4lu3F0rT3st1ngPurp0s3s",
    ),
    (
        "github fine-grained token",
        "GH_TOKEN github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV",
    ),
    ("gitlab token", "runner registered glpat-Xy7Qm2Lp9Rt4Vw8Zk3Nb", "glpat-Xy7Qm2Lp9Rt4Vw8Zk3Nb"),
    (
        "slack bot token",
        "slack notifier xoxb-2048113344-5567788990-AbCdEfGhIjKlMnOpQrStUvWx",
        "xoxb-2048113344-5567788990-AbCdEfGhIjKlMnOpQrStUvWx",
    ),
    (
        "slack webhook",
        "POST https://hooks.slack.com/services/T0FAKE123/B0FAKE456/q1w2e3r4t5y6u7i8o9p0a1s2 -> 404",
        "q1w2e3r4t5y6u7i8o9p0a1s2",
    ),
    (
        "stripe key",
        "payments: sk_live_51FakeKeyAbCdEfGh12345678",
        "sk_live_51FakeKeyAbCdEfGh12345678",
    ),
    (
        "google api key",
        "maps quota for key AIzaSyFakeKey0123456789abcdefghijklmnopq exceeded",
        "AIzaSyFakeKey0123456789abcdefghijklmnopq",
    ),
    (
        "openai key",
        "llm client init sk-proj-Fak3Pr0j3ctK3yAbCdEfGhIjKlMn0123456789",
        "sk-proj-Fak3Pr0j3ctK3yAbCdEfGhIjKlMn0123456789",
    ),
    (
        "anthropic key",
        "ANTHROPIC sk-ant-api03-F4k3K3yF0rT3st1ng0123456789abcdefXYZ",
        "sk-ant-api03-F4k3K3yF0rT3st1ng0123456789abcdefXYZ",
    ),
    (
        "jwt",
        "session=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJlLWZha2UtMTIz",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJlLWZha2UtMTIz",
    ),
    (
        "bearer header",
        "curl -H 'Authorization: Bearer opaqueT0kenValue9876xyz' https://api",
        "opaqueT0kenValue9876xyz",
    ),
    (
        "basic auth header",
        "Authorization: Basic YWRtaW46c3VwZXJzZWNyZXQxMjM=",
        "YWRtaW46c3VwZXJzZWNyZXQxMjM=",
    ),
    (
        "password in postgres url",
        "connect postgres://orders:Sup3r-S3cret!@db-1.internal:5432/orders refused",
        "Sup3r-S3cret!",
    ),
    (
        "mongodb connection string",
        "mongodb+srv://admin:Pa55w0rdProd77@cluster0.example.net/app timed out",
        "Pa55w0rdProd77",
    ),
    ("redis url", "REDIS_URL=redis://:r3disS3cret99@cache:6379/0", "r3disS3cret99"),
    (
        "azure storage connection string",
        "DefaultEndpointsProtocol=https;AccountName=logs;AccountKey=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZg==;",
        "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZg==",
    ),
    (
        "azure sas token",
        "GET https://acct.blob.core.windows.net/c/x?sv=2021&sig=AbCdEf0123456789GhIjKlMnOp%3D",
        "AbCdEf0123456789GhIjKlMnOp%3D",
    ),
    (
        "rsa private key",
        f"key material:\n{PEM}\nend",
        "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0t",
    ),
    (
        "openssh private key",
        f"id_ed25519:\n{OPENSSH}",
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ",
    ),
    (
        "twilio key",
        "twilio SK0123456789abcdef0123456789abcdef rejected",
        "SK0123456789abcdef0123456789abcdef",
    ),
    (
        "sendgrid key",
        "mailer SG.FakeSendGridKey123.AbCdEfGhIjKlMnOpQrStUv0123456789",
        "SG.FakeSendGridKey123.AbCdEfGhIjKlMnOpQrStUv0123456789",
    ),
    (
        "npm token",
        "//registry.npmjs.org/:_authToken=npm_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
        "npm_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    ),
    (
        "pypi token",
        "twine upload with pypi-AgEIcHlwaS5vcmcCJGZha2UtdG9rZW4tZm9yLXRlc3RzLW9ubHktMTIzNDU2Nzg5",
        "pypi-AgEIcHlwaS5vcmcCJGZha2UtdG9rZW4tZm9yLXRlc3RzLW9ubHktMTIzNDU2Nzg5",
    ),
    (
        "shopify token",
        "shop api shpat_0123456789abcdef0123456789abcdef",
        "shpat_0123456789abcdef0123456789abcdef",
    ),
    (
        "vault token",
        "VAULT_TOKEN hvs.CAESIFakeVaultTokenForTests0123",
        "hvs.CAESIFakeVaultTokenForTests0123",
    ),
    (
        "digitalocean token",
        "doctl auth dop_v1_" + "ab12" * 16,
        "dop_v1_" + "ab12" * 16,
    ),
    ("env file password", "DB_PASSWORD=Tr0ub4dor&3xample", "Tr0ub4dor&3xample"),
    ("yaml api key", 'api_key: "k3y-F0r-Th3-P4ym3nts"', "k3y-F0r-Th3-P4ym3nts"),
    ("json client secret", '{"client_secret": "cl13ntS3cr3tV4lu3"}', "cl13ntS3cr3tV4lu3"),
    (
        "unlabelled random token",
        "retrying with Qm9zc2VzLWxpa2UtcmFuZG9tLXN0dWZmIQ7Xk2p9 after 401",
        "Qm9zc2VzLWxpa2UtcmFuZG9tLXN0dWZmIQ7Xk2p9",
    ),
    # Secrets in plain language, as responders write them in titles, chat and notes.
    ("password in prose", "the db password is hunter2x for now", "hunter2x"),
    ("short token after a colon", "the api token: a9Zq then 401", "a9Zq"),
    ("secret in prose", "the signing secret is Zq9-k2Lm, rotate it", "Zq9-k2Lm"),
    ("pw in prose", "ssh in as root, pw Tr1cky#1 (temporary)", "Tr1cky#1"),
    ("short passwd in prose", "set passwd=h4x0r and retried", "h4x0r"),
    ("password changed in prose", "admin password was changed to W1nter2026! today", "W1nter2026!"),
]

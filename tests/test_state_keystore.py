"""The state kept like a key store (issue 21, item 4): a stack on the Azure Key Vault secrets provider still runs
offline, and the docs say how to get there.

`pulumi stack change-secrets-provider "azurekeyvault://<vault>.vault.azure.net/keys/<key>"` writes two top-level keys
into Pulumi.<stack>.yaml, beside `config`: `secretsprovider` (the URL) and `encryptedkey` (the stack's data key, wrapped
by the vault key) (pulumi/pulumi sdk/go/common/workspace/project.go `ProjectStack`: SecretsProvider, EncryptedKey).
The offline tools read only `config`, so the migrated file must give the same config as before.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from orca_platform.model.errors import InputError
from tools.offline.engine import PROJECT_DIR, stack_config

VAULT = "azurekeyvault://kv-orca-state.vault.azure.net/keys/pulumi-dev"


def migrated(tmp_path: Path, stack: str = "dev") -> Path:
    """A copy of the project's stack file as `change-secrets-provider` leaves it (top-level keys appended)."""
    shutil.copy(PROJECT_DIR / f"Pulumi.{stack}.yaml", tmp_path / f"Pulumi.{stack}.yaml")
    with (tmp_path / f"Pulumi.{stack}.yaml").open("a", encoding="utf-8") as out:
        out.write(f"secretsprovider: {VAULT}\nencryptedkey: ZW5jcnlwdGVkIGRhdGEga2V5IGZvciB0aGUgdGVzdA==\n")
    return tmp_path


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_stack_on_the_key_vault_provider_gives_the_same_config_offline(tmp_path: Path, stack: str) -> None:
    project = migrated(tmp_path, stack)
    doc = yaml.safe_load((project / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))
    assert doc["secretsprovider"] == VAULT
    assert stack_config(stack, project) == stack_config(stack, PROJECT_DIR)


def test_an_encrypted_config_value_is_still_refused_by_name(tmp_path: Path) -> None:
    """Key Vault or passphrase, offline tools cannot decrypt a `secure:` value: a clear error, not a wrong run."""
    project = migrated(tmp_path)
    path = project / "Pulumi.dev.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["config"]["orca-platform:someSecret"] = {"secure": "v1:AAAA"}
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(InputError) as err:
        stack_config("dev", project)
    assert "orca-platform:someSecret" in str(err.value)


def test_the_docs_give_the_migration_and_the_state_containers_protection() -> None:
    text = (PROJECT_DIR / "docs" / "ci.md").read_text(encoding="utf-8")
    for expected in (
        "pulumi stack change-secrets-provider",
        "azurekeyvault://",
        "--enable-versioning true",
        "--enable-delete-retention true",
        "--enable-container-delete-retention true",
        "Storage Blob Data Reader",
    ):
        assert expected in text, expected


def test_pull_request_previews_refuse_a_writing_identity_before_the_state() -> None:
    doc = yaml.safe_load((PROJECT_DIR / ".github" / "workflows" / "pull-request.yml").read_text(encoding="utf-8"))
    steps = doc["jobs"]["preview"]["steps"]
    names = [str(s.get("name") or s.get("uses")) for s in steps]
    check = names.index("Refuse a writing identity")
    assert check < next(i for i, n in enumerate(names) if n.startswith("pulumi/actions"))
    assert check > next(i for i, n in enumerate(names) if n.startswith("azure/login"))
    for role in ("Contributor", "Storage Blob Data Contributor", "Key Vault Crypto Officer"):
        assert f'"{role}"' in steps[check]["run"]

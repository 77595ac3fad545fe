"""README "Run on Databricks": the commands a user pastes, checked against the files they use.

* Every bash block is valid shell with no unfilled ``<placeholder>`` left outside quotes, and every
  ``sed`` that renders an IAM document or a setup SQL file replaces exactly the placeholders that file has.
* The setup steps that otherwise fail: account groups (not workspace-local ones), the landing external
  location created read-only in one step, the warehouse's CAN_USE for analysts, the KMS policies applied
  with --kms-key-id, the dev catalog's name printed from the bundle, the HMAC secret readable by engineers.
* Both compute choices are deployed, every target named is one of the bundle's, and runs pass job
  parameters the job defines.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess

import pytest
import yaml
from support import REPO_ROOT

from producer.config import DEFAULT_PREFIX

README = REPO_ROOT / "README.md"
SETUP_DIR = REPO_ROOT / "databricks" / "setup"
IAM_DIR = REPO_ROOT / "infra" / "aws" / "iam"


def _section() -> str:
    text = README.read_text()
    start = text.index("\n## Run on Databricks\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def _blocks(text: str | None = None) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", _section() if text is None else text, re.S)


def _commands(text: str | None = None) -> list[str]:
    """Every command of the bash blocks (of the section, or of ``text``), continuation lines joined, comments and
    blank lines dropped."""
    commands = []
    for block in _blocks(text):
        for line in block.replace("\\\n", " ").splitlines():
            if shlex.split(line, comments=True):
                commands.append(" ".join(line.split()))
    return commands


def _with(*words: str) -> list[str]:
    return [c for c in _commands() if all(w in c for w in words)]


def _one(*words: str) -> str:
    found = _with(*words)
    assert len(found) == 1, f"expected one command with {words}, found {found}"
    return found[0]


def _unquoted_tokens(command: str) -> list[str]:
    """The shell's tokens of ``command``, quoted strings kept whole: ``<`` and ``>`` are tokens of their own
    only where the shell would read a redirection."""
    return list(shlex.shlex(command, posix=False, punctuation_chars="<>|&;()"))


def _bundle_targets() -> set[str]:
    return set(yaml.safe_load((REPO_ROOT / "databricks.yml").read_text())["targets"])


# -- the blocks are commands a user can paste ----------------------------------------------------------------


def test_the_section_has_commands():
    assert len(_blocks()) >= 10 and len(_commands()) >= 40


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_every_bash_block_is_valid_shell():
    for block in _blocks():
        done = subprocess.run(["bash", "-n"], input=block, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, f"{done.stderr}\n{block}"


def test_no_placeholder_is_left_for_the_shell_to_misread():
    for command in _commands():
        tokens = _unquoted_tokens(command)
        assert "<" not in tokens, f"an unquoted <...> would be read as a redirection: {command}"
        for i, token in enumerate(tokens):
            if token == ">":
                assert tokens[i + 1].startswith("/tmp/"), f"writes only scratch files: {command}"


def _sed_replacements(command: str) -> set[str]:
    """The literal texts a ``sed -e "s/<x>/.../g"`` command replaces."""
    found = set()
    for expression in re.findall(r'"(s(.).*?\2.*?\2g)"', command):
        script, delimiter = expression
        found.add(script[2:].split(delimiter)[0].replace("\\$", "$"))
    return found


@pytest.mark.parametrize(
    "path",
    sorted(IAM_DIR.glob("*.json")) + sorted(SETUP_DIR.glob("*.sql")),
    ids=lambda p: p.name,
)
def test_each_file_the_commands_render_gets_every_placeholder_filled(path):
    text = path.read_text()
    if path.suffix == ".sql":
        text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
        placeholders = set(re.findall(r"\$\{\w+\}", text))
    else:
        placeholders = set(re.findall(r"<[a-z0-9-]+>", text))
    relative = path.relative_to(REPO_ROOT).as_posix()
    # Anywhere in the README: the declarative pipeline's schema is rendered where that edition is deployed.
    renders = [c for c in _commands(README.read_text()) if "sed " in c and relative in c]
    if path.name == "databricks-trust-policy.json" or placeholders:
        assert renders, f"the README never renders {relative}"
    for command in renders:
        assert _sed_replacements(command) == placeholders, command


# -- setup steps -----------------------------------------------------------------------------------------------


def _sql_principals() -> set[str]:
    text = "\n".join(path.read_text() for path in SETUP_DIR.glob("*.sql"))
    return set(re.findall(r"\bTO `([^`]+)`", text))


def test_groups_are_account_groups_assigned_to_the_workspace():
    principals = _sql_principals()
    assert principals == {"clickstream_engineers", "clickstream_analysts"}
    for group in principals:
        _one("databricks account groups create", f"--display-name {group}", "-p ACCOUNT")
    assert not _with("databricks groups create"), "workspace-local groups cannot be granted to in Unity Catalog"
    assignments = _with("databricks account workspace-assignment update", '"$WORKSPACE_ID"')
    assert {c.split('"$WORKSPACE_ID" ')[1].split()[0] for c in assignments} == {'"$ENGINEERS_ID"', '"$ANALYSTS_ID"', '"$SP_ID"'}
    assert _one("WORKSPACE_ID=$(databricks metastores current -o json")


def test_the_production_service_principal_is_an_engineer_with_an_oauth_secret():
    _one("databricks account service-principals create", "-p ACCOUNT")
    _one("export BUNDLE_VAR_service_principal=", ".applicationId")
    patch = _one("databricks account groups patch", '"$ENGINEERS_ID"', "$SP_ID")
    body = json.loads(shlex.split(patch)[shlex.split(patch).index("--json") + 1].replace("$SP_ID", "1234"))
    assert body["Operations"] == [{"op": "add", "value": {"members": [{"value": "1234"}]}}]
    _one("databricks account service-principal-secrets create", '"$SP_ID"')


def test_the_landing_location_is_created_read_only_in_one_step():
    command = _one("databricks external-locations create clickstream_landing")
    words = shlex.split(command)
    assert words[3:6] == ["clickstream_landing", f"s3://$LANDING_BUCKET/{DEFAULT_PREFIX}", "clickstream_s3"]
    assert "--read-only" in words
    assert not _with("external-locations update"), "never writable, not even for a moment"
    # Created before the SQL that grants on it.
    commands = _commands()
    sql = _one("sed", "databricks/setup/external_locations.sql")
    assert commands.index(command) < commands.index(sql)
    assert "ON EXTERNAL LOCATION clickstream_landing" in (SETUP_DIR / "external_locations.sql").read_text()


def test_analysts_can_use_the_dashboards_warehouse():
    command = _one("databricks warehouses update-permissions")
    words = shlex.split(command)
    assert words[3] == "$BUNDLE_VAR_warehouse_id"
    body = json.loads(words[words.index("--json") + 1])
    assert body == {"access_control_list": [{"group_name": "clickstream_analysts", "permission_level": "CAN_USE"}]}
    dashboard = yaml.safe_load((REPO_ROOT / "resources" / "clickstream.dashboard.yml").read_text())
    (spec,) = dashboard["resources"]["dashboards"].values()
    assert spec["warehouse_id"] == "${var.warehouse_id}" and spec["embed_credentials"] is False


def test_kms_policies_are_applied_only_with_a_kms_key():
    _one("01_setup_aws.sh", '--kms-key-id "$KMS_KEY_ARN"')
    role = _one("aws iam put-role-policy", "--role-name $ROLE", "/tmp/databricks-kms-policy.json")
    assert "--policy-name clickstream-kms" in role
    _one("infra/aws/iam/databricks-kms-policy.json > /tmp/databricks-kms-policy.json")
    user = _one("aws iam put-user-policy", "--user-name clickstream-producer", "/tmp/producer-kms-policy.json")
    assert "--policy-name clickstream-kms" in user
    section = _section()
    for name in ("databricks-kms-policy.json", "producer-kms-policy.json"):
        before = section[: section.index(f"infra/aws/iam/{name}")]
        assert "Only with `--kms-key-id`" in before.split("###")[-1], f"{name} is optional"


def test_the_dev_catalog_name_is_printed_from_the_bundle_not_guessed():
    _one("DEV_CATALOG=$(databricks bundle validate -t dev -o json | jq -r .variables.catalog.value)")
    render = _one("sed", '"s/\\${catalog}/$DEV_CATALOG/g"', "databricks/setup/unity_catalog.sql")
    assert "$LANDING_BUCKET" in render
    _one("sed", '"s/\\${catalog}/clickstream/g"', "databricks/setup/unity_catalog.sql")
    # validate needs the variables without default: exported before it.
    commands = _commands()
    first_validate = min(i for i, c in enumerate(commands) if "databricks bundle validate" in c)
    exported = {c.split("=")[0].split()[-1] for c in commands[:first_validate] if c.startswith("export BUNDLE_VAR_")}
    assert {"BUNDLE_VAR_bucket", "BUNDLE_VAR_warehouse_id"} <= exported


def test_the_hmac_secret_is_the_one_the_job_reads_and_engineers_can_read_it():
    variables = yaml.safe_load((REPO_ROOT / "databricks.yml").read_text())["variables"]
    scope, key = variables["hmac_secret"]["default"].split("/")
    _one(f"databricks secrets create-scope {scope}")
    _one(f"databricks secrets put-secret {scope} {key}", '"$CLICKSTREAM_HMAC_KEY"')
    _one(f"databricks secrets put-acl {scope} clickstream_engineers READ")


# -- deploy and run ---------------------------------------------------------------------------------------------


def test_both_compute_choices_are_deployed_and_every_target_named_exists():
    targets = _bundle_targets()
    named = {m for c in _commands() for m in re.findall(r"(?:^|\s)-t (\S+)", c)}
    assert named <= targets, f"the README names targets the bundle lacks: {sorted(named - targets)}"
    for target in ("dev", "dev_classic", "prod"):
        assert f"databricks bundle deploy -t {target}" in _commands(), target
    section = _section()
    for target in targets:
        assert f"| `{target}`" in section, f"the targets table lacks {target}"


def test_runs_pass_job_parameters_the_job_defines():
    job = yaml.safe_load((REPO_ROOT / "resources" / "clickstream_pipeline.job.yml").read_text())
    names = {p["name"] for p in job["resources"]["jobs"]["clickstream_pipeline"]["parameters"]}
    section = _section()
    assert "--notebook-params" not in section, "the job has job-level parameters: --params"
    passed = re.findall(r"--params (\w+)=", section)
    assert passed and set(passed) <= names


def test_prod_needs_its_variables_and_ci_supplies_them():
    workflow = (REPO_ROOT / ".github" / "workflows" / "deploy.yml").read_text()
    for variable in ("bucket", "warehouse_id", "service_principal", "alert_email"):
        assert f"BUNDLE_VAR_{variable}:" in workflow, variable
    _one("export BUNDLE_VAR_alert_email=")

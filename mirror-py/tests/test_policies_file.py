"""Policies as code from Python: ``Mirror.apply_policies`` reads the same
YAML/TOML file as ``mirror-server apply`` (mirror-core's policy_file), against
Debian's docker-registry with htpasswd auth."""

from __future__ import annotations

import pytest

import regmirror


def policies_yaml(url: str, prefix: str) -> str:
    return f"""\
repositories:
  - name: acme/app
    policies:
      - remoteHost: {url}
        remoteRepository: team/app
        username: bot
        passwordEnv: REGMIRROR_PY_TOKEN
        rules: [{{field: tag, operator: sw, values: ["{prefix}"]}}]
"""


def test_apply_policies_plans_applies_and_refuses_bad_files(make_registry, mirror, tmp_path, monkeypatch):
    registry = make_registry(auth=("bot", "pw"))
    pushed = {tag: registry.push_image("team/app", tag) for tag in ("1.0", "1.1", "2.0")}
    monkeypatch.setenv("REGMIRROR_PY_TOKEN", "pw")
    path = tmp_path / "policies.yaml"
    path.write_text(policies_yaml(registry.url, "1."))

    # A dry run plans and saves nothing.
    plan = mirror.apply_policies(path, dry_run=True)
    assert [a["action"] for a in plan["actions"]] == ["create_repository", "create_policy"]
    assert plan["actions"][1]["remote"] == f"{registry.url}/team/app"
    assert plan["actions"][1]["location"] == "repositories[0].policies[0]"
    assert plan["text"].endswith("Plan: 2 to create, 0 to change, 0 to delete; 0 unchanged.")
    assert mirror.policies() == []

    # Applied: the policy is there and a poll mirrors what the rules keep.
    mirror.apply_policies(str(path))
    (policy,) = mirror.policies("acme/app")
    assert policy.username == "bot"
    assert mirror.poll(policy.id).status == "done"
    assert {t.name: t.digest for t in mirror.tags("acme/app")} == {
        "1.0": pushed["1.0"], "1.1": pushed["1.1"]}

    # Unchanged: nothing to do; changed rules: an update naming the field.
    again = mirror.apply_policies(path)
    assert again["actions"] == [] and again["unchanged"] == 1
    assert again["text"] == "No changes: the policies match the file (1 unchanged)."
    path.write_text(policies_yaml(registry.url, "2."))
    changed = mirror.apply_policies(path)
    assert changed["actions"] == [{
        "action": "update_policy", "repository": "acme/app",
        "remote": f"{registry.url}/team/app", "policy_id": policy.id,
        "changes": ["rules"], "location": "repositories[0].policies[0]"}]

    # The same file in TOML, with the password changed in the environment.
    toml = tmp_path / "policies.toml"
    toml.write_text(f"""\
[[repositories]]
name = "acme/app"
[[repositories.policies]]
remoteHost = "{registry.url}"
remoteRepository = "team/app"
username = "bot"
passwordEnv = "REGMIRROR_PY_TOKEN"
rules = [{{field = "tag", operator = "sw", values = ["2."]}}]
""")
    monkeypatch.setenv("REGMIRROR_PY_TOKEN", "other")
    plan = mirror.apply_policies(toml, dry_run=True)
    assert plan["actions"][0]["changes"] == ["password"]
    assert "password (secret)" in plan["text"] and "other" not in plan["text"]
    # Applying it fails the connection check: the same error class as the API's.
    with pytest.raises(regmirror.AuthenticationError) as refused:
        mirror.apply_policies(toml)
    assert "repositories[0].policies[0]" in str(refused.value)

    # Bad files name the entry and field, and change nothing.
    before = [p.to_dict() for p in mirror.policies()]
    path.write_text(policies_yaml(registry.url, "2.").replace("username:", "usernme:"))
    with pytest.raises(regmirror.InvalidPolicyError) as bad:
        mirror.apply_policies(path)
    assert bad.value.field == "repositories[0].policies[0].usernme"
    assert str(bad.value).startswith(f"{path}: repositories[0].policies[0].usernme: unknown key")
    monkeypatch.delenv("REGMIRROR_PY_TOKEN")
    path.write_text(policies_yaml(registry.url, "2."))
    with pytest.raises(regmirror.InvalidPolicyError) as bad:
        mirror.apply_policies(path)
    assert bad.value.field == "repositories[0].policies[0].passwordEnv"
    assert "REGMIRROR_PY_TOKEN is not set" in str(bad.value)
    assert [p.to_dict() for p in mirror.policies()] == before

"""examples/mirror_list.py run as a script, as a cron job would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import regmirror

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "mirror_list.py"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def test_mirrors_every_listed_repository(make_registry, tmp_path, certs):
    plain = make_registry()
    secured = make_registry(auth=("bot", "s3cret"), tls=True)
    a = plain.push_image("team/a", "v1")
    b = secured.push_image("team/b", "v2")
    config = tmp_path / "mirrors.json"
    config.write_text(json.dumps({
        "data_dir": str(tmp_path / "data"),
        "repositories": [
            {"remote_host": plain.url, "remote_repository": "team/a",
             "local_repository": "mirrors/a"},
            {"remote_host": secured.url, "remote_repository": "team/b",
             "local_repository": "mirrors/b", "username": "bot", "password_env": "B_TOKEN",
             "remote_ca_file": str(certs.ca_file)},
        ],
    }))
    for _ in range(2):  # the second run reuses the policies
        result = run(str(config), env={"B_TOKEN": "s3cret"})
        assert result.returncode == 0, result.stdout + result.stderr
        assert "2 mirrored, 0 failed" in result.stdout
        assert "s3cret" not in result.stdout + result.stderr

    m = regmirror.Mirror(tmp_path / "data")
    assert [t.digest for t in m.tags("mirrors/a")] == [a]
    assert [t.digest for t in m.tags("mirrors/b")] == [b]
    assert len(m.policies()) == 2


def test_exits_non_zero_when_a_repository_fails(registry, tmp_path):
    registry.push_image("team/a", "v1")
    config = tmp_path / "mirrors.json"
    config.write_text(json.dumps({
        "defaults": {"remote_host": registry.url},
        "repositories": [
            {"remote_repository": "team/a", "local_repository": "mirrors/a"},
            {"remote_repository": "team/does-not-exist", "local_repository": "mirrors/x"},
        ],
    }))
    result = run(str(config), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "NotFoundError" in result.stdout and "team/does-not-exist" in result.stdout
    assert "1 mirrored, 1 failed" in result.stdout


def test_exits_2_on_a_bad_file(tmp_path):
    config = tmp_path / "mirrors.json"
    config.write_text("{not json")
    result = run(str(config), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 2
    assert "not valid JSON" in result.stderr


def test_reads_yaml_when_pyyaml_is_there(registry, tmp_path):
    pytest.importorskip("yaml", reason="PyYAML is not installed; JSON is the supported format")
    digest = registry.push_image("team/a", "v1")
    config = tmp_path / "mirrors.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        "repositories:\n"
        f"  - remote_host: {registry.url}\n"
        "    remote_repository: team/a\n"
        "    local_repository: mirrors/a\n"
    )
    result = run(str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert [t.digest for t in regmirror.Mirror(tmp_path / "data").tags("mirrors/a")] == [digest]

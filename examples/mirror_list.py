#!/usr/bin/env python3
"""Mirror a list of repositories read from a JSON (or YAML) file.

    python3 examples/mirror_list.py mirrors.json [--data-dir DIR]
    python3 examples/mirror_list.py mirrors.json --server http://127.0.0.1:5000 \\
        --username admin --password-env MIRROR_PASSWORD

With --data-dir (or "data_dir" in the file) the engine runs in this process;
with --server the same calls go to a running mirror-server. Each entry gets a
poll mirroring policy (reused on later runs: same local repository and remote
host) and one poll now. The exit status is 0 when every repository was
mirrored, 1 when any failed, 2 when the file is unusable.

The file (YAML needs PyYAML; JSON always works):

    {
      "data_dir": "./data",
      "defaults": {"remote_host": "https://index.docker.io"},
      "repositories": [
        {"remote_repository": "library/alpine", "local_repository": "mirrors/alpine"},
        {"remote_host": "https://registry.example.com", "remote_repository": "team/app",
         "local_repository": "mirrors/app", "username": "bot",
         "password_env": "APP_TOKEN", "remote_ca_file": "/etc/ssl/example-ca.pem",
         "initial_evaluation": false}
      ]
    }

Passwords are never written in the file: "password_env" names an environment
variable that holds the password or access token.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Union

import regmirror

KEYS = {
    "remote_host", "remote_repository", "local_repository", "username", "password_env",
    "remote_ca_file", "skip_tls_verification", "initial_evaluation", "enabled",
}


class ConfigError(Exception):
    pass


def load(path: Path) -> dict[str, Any]:
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml  # type: ignore[import-untyped]
        except ImportError:
            raise ConfigError(f"{path}: reading YAML needs PyYAML; use JSON instead") from None
        data = yaml.safe_load(text)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("repositories"), list):
        raise ConfigError(f'{path}: expected an object with a "repositories" list')
    return data


def entries(data: dict[str, Any]) -> list[dict[str, Any]]:
    defaults = data.get("defaults") or {}
    out = []
    for i, item in enumerate(data["repositories"]):
        if not isinstance(item, dict):
            raise ConfigError(f"repositories[{i}]: expected an object")
        entry = {**defaults, **item}
        unknown = set(entry) - KEYS
        if unknown:
            raise ConfigError(f"repositories[{i}]: unknown keys {sorted(unknown)}")
        for key in ("remote_host", "remote_repository"):
            if not entry.get(key):
                raise ConfigError(f"repositories[{i}]: {key} is missing")
        entry.setdefault("local_repository", entry["remote_repository"])
        out.append(entry)
    return out


def credentials(entry: dict[str, Any]) -> dict[str, Any]:
    """The connection keyword arguments of an entry."""
    kwargs: dict[str, Any] = {}
    if entry.get("username"):
        kwargs["username"] = entry["username"]
    if entry.get("password_env"):
        var = entry["password_env"]
        if var not in os.environ:
            raise ConfigError(f"environment variable {var} is not set")
        kwargs["password"] = os.environ[var]
    if entry.get("remote_ca_file"):
        kwargs["remote_ca"] = Path(entry["remote_ca_file"]).read_text()
    if "skip_tls_verification" in entry:
        kwargs["skip_tls_verification"] = bool(entry["skip_tls_verification"])
    return kwargs


def ensure_policy(engine: Union[regmirror.Mirror, regmirror.Client],
                  entry: dict[str, Any]) -> regmirror.Policy:
    """The entry's policy: an earlier run's (updated), or a new one."""
    local = entry["local_repository"]
    host = entry["remote_host"].rstrip("/")
    kwargs = credentials(entry)
    try:
        existing = engine.policies(local)
    except regmirror.NotFoundError:  # a server without the repository yet
        existing = []
    for policy in existing:
        if policy.remote_host.rstrip("/") == host:
            return engine.update_policy(policy.id, remote_repository=entry["remote_repository"],
                                        **kwargs)
    return engine.add_policy(local, remote_host=host,
                             remote_repository=entry["remote_repository"],
                             initial_evaluation=bool(entry.get("initial_evaluation", True)),
                             enabled=bool(entry.get("enabled", True)), **kwargs)


def mirror_one(engine: Union[regmirror.Mirror, regmirror.Client], entry: dict[str, Any]) -> bool:
    name = f'{entry["remote_host"]}/{entry["remote_repository"]} -> {entry["local_repository"]}'
    try:
        policy = ensure_policy(engine, entry)
        job = engine.poll(policy.id)
    except (regmirror.MirrorError, ConfigError, OSError) as e:
        print(f"FAILED  {name}: {type(e).__name__}: {e}", flush=True)
        return False
    if job.status != "done":
        print(f"FAILED  {name}: job {job.id} ended {job.status}", flush=True)
        for line in job.log_lines()[-5:]:
            print(f"        {line}")
        return False
    tags = engine.tags(entry["local_repository"])
    print(f"OK      {name}: {len(tags)} tags", flush=True)
    for tag in tags:
        print(f"        {tag.name:<24} {tag.digest}")
    return True


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path, help="JSON or YAML file")
    parser.add_argument("--data-dir", help="embedded engine data directory")
    parser.add_argument("--server", help="URL of a running mirror-server instead")
    parser.add_argument("--username", default="admin", help="server user (with --server)")
    parser.add_argument("--password-env", default="MIRROR_PASSWORD",
                        help="variable holding the server password (with --server)")
    args = parser.parse_args(argv)
    try:
        data = load(args.config)
        todo = entries(data)
        if args.server:
            engine: Union[regmirror.Mirror, regmirror.Client] = regmirror.Client(
                args.server, args.username, os.environ.get(args.password_env, ""))
        else:
            data_dir = args.data_dir or data.get("data_dir")
            if not data_dir:
                raise ConfigError("give --data-dir, --server, or data_dir in the file")
            engine = regmirror.Mirror(data_dir)
    except (ConfigError, OSError, regmirror.MirrorError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    results = [mirror_one(engine, entry) for entry in todo]
    failed = results.count(False)
    print(f"{len(results) - failed} mirrored, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

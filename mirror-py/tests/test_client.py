"""regmirror.Client against a mirror-server started by the test, with
docker-registry as the upstream. The same calls as the embedded tests, so a
script can switch between the two."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

import regmirror

from conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
SERVER_BIN = Path(os.environ.get("REGMIRROR_SERVER_BIN", ROOT / "target" / "debug" / "mirror-server"))
ADMIN_PASSWORD = "admin-password-for-tests"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    if not SERVER_BIN.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"mirror-server binary not found at {SERVER_BIN} (CI must build it)")
        pytest.skip(f"mirror-server binary not found at {SERVER_BIN}: "
                    "build it with `cargo build -p mirror-server` (or set REGMIRROR_SERVER_BIN)")
    port = free_port()
    log = tmp_path / "server.log"
    proc = subprocess.Popen(
        [str(SERVER_BIN), "--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "server")],
        env={**os.environ, "MIRROR_ADMIN_PASSWORD": ADMIN_PASSWORD, "RUST_LOG": "warn"},
        stdout=log.open("w"), stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"mirror-server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            urllib.request.urlopen(f"{url}/api/v0/repositories", timeout=2).close()
            break
        except urllib.error.HTTPError:
            break  # 401: up
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise RuntimeError(f"mirror-server did not come up:\n{log.read_text()}")
            time.sleep(0.1)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_client_mirrors_through_the_server(server, registry):
    pushed = {tag: registry.push_image("team/app", tag) for tag in ("v1", "v2")}
    client = regmirror.Client(server, "admin", ADMIN_PASSWORD)
    assert client.check_connection(remote_host=registry.url, remote_repository="team/app") \
        == {"read": True, "write": True}

    policy = client.add_policy("mirrors/app", remote_host=registry.url,
                               remote_repository="team/app", username="", password="")
    assert policy.local_repository == "mirrors/app" and policy.remote_host == registry.url
    assert not hasattr(policy, "password") and "password" not in policy.to_dict()

    job = client.poll(policy.id)
    assert job.status == "done", job.log_lines()
    assert job.log_lines(), "no log lines"
    tags = {t.name: t for t in client.tags("mirrors/app")}
    assert sorted(tags) == sorted(pushed)
    for name, tag in tags.items():
        assert tag.digest == registry.manifest_digest("team/app", name) == pushed[name]
        assert tag.mirrored_by == policy.id
        assert tag.mirrored_from and tag.mirrored_from.endswith(f"team/app:{name}")

    assert [p.id for p in client.policies()] == [policy.id]
    assert [p.id for p in client.policies("mirrors/app")] == [policy.id]
    assert client.policy(policy.id).last_status.code == "SUCCESS"
    assert client.job(job.id).status == "done"
    assert job.id in [j.id for j in client.jobs(action="poll_mirror")]
    assert client.update_policy(policy.id, enabled=False).enabled is False
    assert client.delete_policy(policy.id) is True
    assert client.delete_policy(policy.id) is False
    with pytest.raises(regmirror.NotFoundError):
        client.policy(policy.id)


def test_client_raises_the_same_exception_classes(server, make_registry, tmp_path):
    upstream = make_registry(auth=("bot", "right-password"))
    upstream.push_image("team/private", "v1")
    client = regmirror.Client(server, "admin", ADMIN_PASSWORD)

    with pytest.raises(regmirror.AuthenticationError) as err:
        client.add_policy("mirrors/private", remote_host=upstream.url,
                          remote_repository="team/private", username="bot", password="wrong-pw")
    assert "team/private" in str(err.value) and "wrong-pw" not in str(err.value)
    with pytest.raises(regmirror.AuthenticationError) as local_err:
        regmirror.Mirror(tmp_path / "data").check_connection(
            remote_host=upstream.url, remote_repository="team/private", username="bot",
            password="wrong-pw")
    assert str(local_err.value) == str(err.value)

    with pytest.raises(regmirror.NotFoundError):
        client.add_policy("mirrors/missing", remote_host=upstream.url,
                          remote_repository="team/missing", username="bot",
                          password="right-password")

    with pytest.raises(regmirror.InvalidPolicyError) as err:
        client.add_policy("mirrors/app", remote_host="not a url", remote_repository="team/app")
    assert err.value.field == "remoteHost"
    # The embedded engine words bad input as the server does.
    with pytest.raises(regmirror.InvalidPolicyError) as local_err:
        regmirror.Mirror(tmp_path / "data").add_policy(
            "mirrors/app", remote_host="not a url", remote_repository="team/app")
    assert str(local_err.value) == str(err.value)
    assert local_err.value.field == err.value.field

    with pytest.raises(regmirror.NotFoundError):
        client.job("no-such-job")

    with pytest.raises(regmirror.AuthenticationError):
        regmirror.Client(server, "admin", "not-the-password").jobs()


def test_client_async_twins(server, registry):
    digest = registry.push_image("team/app", "v1")
    client = regmirror.Client(server, "admin", ADMIN_PASSWORD)

    async def main():
        policy = await client.add_policy_async("mirrors/app", remote_host=registry.url,
                                               remote_repository="team/app")
        job = await client.poll_async(policy.id)
        return job, await client.tags_async("mirrors/app")

    job, tags = asyncio.run(main())
    assert job.status == "done"
    assert [t.digest for t in tags] == [digest]


def test_client_rules_and_preview_match_the_engine(server, registry, tmp_path):
    pushed = {tag: registry.push_image("team/app", tag) for tag in ("1.0", "1.1", "2.0", "dev")}
    client = regmirror.Client(server, "admin", ADMIN_PASSWORD)
    local = regmirror.Mirror(tmp_path / "data")
    remote = {"remote_host": registry.url, "remote_repository": "team/app"}
    rules = [{"operator": "semver", "values": ["^1"]},
             {"operator": "oo", "values": ["1.0"], "exclude": True}]

    preview = client.preview_tags(**remote, rules=rules)
    assert preview == {"tags_listed": 4, "matching_tags": ["1.1"]}
    assert local.preview_tags(**remote, rules=rules) == preview
    everything = client.preview_tags(**remote)
    assert everything == local.preview_tags(**remote)
    assert sorted(everything["matching_tags"]) == sorted(pushed)
    assert client.check_connection(**remote, rules=rules) == {"read": True, "write": True}

    policy = client.add_policy("mirrors/app", **remote, rules=rules)
    want = [{"field": "tag", "operator": "semver", "values": ["^1"], "exclude": False, "by": "version"},
            {"field": "tag", "operator": "oo", "values": ["1.0"], "exclude": True, "by": "version"}]
    assert policy.rules == want
    assert client.policy(policy.id).rules == want
    assert client.poll(policy.id).status == "done"
    assert [(t.name, t.digest) for t in client.tags("mirrors/app")] == [("1.1", pushed["1.1"])]
    assert client.update_policy(policy.id, rules=[]).rules == []

    async def main():
        return await client.preview_tags_async(**remote, rules=[{"operator": "c", "values": ["."]}])

    assert asyncio.run(main()) == {"tags_listed": 4, "matching_tags": ["1.0", "1.1", "2.0"]}

    # A bad rule: the same class, field and text as the embedded engine's.
    for bad, field in (([{"operator": "sw", "values": []}], "rules[0].values"),
                       ([{"operator": "starts", "values": ["1"]}], "rules[0].operator"),
                       ([{"operator": "sw", "values": [1]}], "rules[0].values[0]")):
        with pytest.raises(regmirror.InvalidPolicyError) as err:
            client.preview_tags(**remote, rules=bad)
        with pytest.raises(regmirror.InvalidPolicyError) as local_err:
            local.preview_tags(**remote, rules=bad)
        assert err.value.field == local_err.value.field == field
        assert str(err.value) == str(local_err.value)
        with pytest.raises(regmirror.InvalidPolicyError) as err:
            client.add_policy("mirrors/other", **remote, rules=bad)
        assert err.value.field == field
    assert [p.id for p in client.policies()] == [policy.id]


def test_example_script_against_the_server(server, registry, tmp_path):
    import json
    import sys

    digest = registry.push_image("team/a", "v1")
    config = tmp_path / "mirrors.json"
    config.write_text(json.dumps({"repositories": [
        {"remote_host": registry.url, "remote_repository": "team/a",
         "local_repository": "mirrors/a"}]}))
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "mirror_list.py"), str(config),
         "--server", server, "--username", "admin", "--password-env", "SERVER_PW"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "SERVER_PW": ADMIN_PASSWORD})
    assert result.returncode == 0, result.stdout + result.stderr
    client = regmirror.Client(server, "admin", ADMIN_PASSWORD)
    assert [t.digest for t in client.tags("mirrors/a")] == [digest]


def test_client_tag_history(server, registry):
    first = registry.push_image("team/hist", "v1")
    client = regmirror.Client(server, "admin", ADMIN_PASSWORD)
    policy = client.add_policy("mirrors/hist", remote_host=registry.url,
                               remote_repository="team/hist", username="", password="")
    assert client.poll(policy.id).status == "done"
    second = registry.push_image("team/hist", "v1")
    assert client.poll(policy.id).status == "done"
    [entry] = client.tag_history("mirrors/hist", "v1")
    assert (entry.digest, entry.replaced_by, entry.available) == (first, second, True)
    assert entry.mirrored_by == policy.id
    with pytest.raises(regmirror.NotFoundError):
        client.tag_history("mirrors/hist", "never")


def test_client_push_policies(server, registry, make_registry):
    dest = make_registry(auth=("pusher", "push-secret-1"))
    digest = registry.push_image("team/app", "v1")
    client = regmirror.Client(server, "admin", ADMIN_PASSWORD)
    pull = client.add_policy("mirrors/app", remote_host=registry.url, remote_repository="team/app")
    assert client.poll(pull.id).status == "done"

    with pytest.raises(regmirror.InvalidPolicyError) as bad:
        client.add_push_policy("mirrors/app", remote_host=dest.url, remote_repository="edge/app",
                               username="pusher", password="push-secret-1", tag_template="%n/x")
    assert bad.value.field == "tagTemplate"
    with pytest.raises(regmirror.AuthenticationError):
        client.add_push_policy("mirrors/app", remote_host=dest.url, remote_repository="edge/app",
                               username="pusher", password="wrong")

    policy = client.add_push_policy("mirrors/app", remote_host=dest.url,
                                    remote_repository="edge/app", username="pusher",
                                    password="push-secret-1", tag_template="%n-copy")
    assert policy.tag_template == "%n-copy" and "password" not in policy.to_dict()
    job = client.push(policy.id, "v1")
    assert job.status == "done", job.log_lines()
    assert dest.manifest_digest("edge/app", "v1-copy") == digest
    assert [p.id for p in client.push_policies()] == [policy.id]
    assert [p.id for p in client.push_policies("mirrors/app")] == [policy.id]
    assert client.push_policy(policy.id).last_status.code == "SUCCESS"
    assert client.update_push_policy(policy.id, enabled=False).enabled is False
    assert client.delete_push_policy(policy.id) is True
    assert client.delete_push_policy(policy.id) is False
    with pytest.raises(regmirror.NotFoundError):
        client.push_policy(policy.id)


def test_client_proxy_caches(server):
    hub, token = "https://index.docker.io", "dckr_pat_proxy-cache-secret"
    client = regmirror.Client(server, "admin", ADMIN_PASSWORD)
    cache = client.add_proxy_cache(namespace="hub", remote_host=hub, tag_ttl_secs=60)
    assert isinstance(cache, regmirror.ProxyCache)
    assert (cache.namespace, cache.remote_host, cache.tag_ttl_secs) == ("hub", hub, 60)
    assert cache.has_password is False and cache.created_at
    assert [c.namespace for c in client.proxy_caches()] == ["hub"]
    untimed = {k: v for k, v in cache.to_dict().items() if not k.endswith("_at")}
    read = client.proxy_cache("hub").to_dict()
    assert {k: v for k, v in read.items() if not k.endswith("_at")} == untimed

    changed = client.update_proxy_cache("hub", username="hub-bot", password=token,
                                        anonymous_pull=True)
    assert changed.username == "hub-bot" and changed.has_password is True
    assert changed.anonymous_pull and changed.tag_ttl_secs == 60
    assert not hasattr(changed, "password") and "password" not in changed.to_dict()
    assert token not in repr(client.proxy_caches()) + str(changed.to_dict())

    # The server's errors are the engine's classes, naming the same field.
    with pytest.raises(regmirror.InvalidPolicyError) as bad:
        client.add_proxy_cache(namespace="ghcr", remote_host="ghcr.io")
    assert bad.value.field == "remoteHost" and "remoteHost" in str(bad.value)
    with pytest.raises(regmirror.InvalidPolicyError) as bad:
        client.update_proxy_cache("hub", tag_ttl_secs=8 * 24 * 3600)
    assert bad.value.field == "tagTTLSecs"
    with pytest.raises(TypeError, match="unexpected keyword argument 'remote_repository'"):
        client.add_proxy_cache(namespace="ghcr", remote_host="https://ghcr.io",
                               remote_repository="acme/tool")
    with pytest.raises(regmirror.MirrorError) as dup:
        client.add_proxy_cache(namespace="hub", remote_host=hub)
    assert dup.value.kind == "conflict"
    with pytest.raises(regmirror.AuthenticationError):
        regmirror.Client(server).proxy_caches()

    async def run() -> list[str]:
        listed = await client.proxy_caches_async()
        assert (await client.proxy_cache_async("hub")).username == "hub-bot"
        return [c.namespace for c in listed]

    assert asyncio.run(run()) == ["hub"]
    assert client.delete_proxy_cache("hub") is True
    assert client.delete_proxy_cache("hub") is False
    assert client.proxy_caches() == []
    with pytest.raises(regmirror.NotFoundError):
        client.proxy_cache("hub")

"""regmirror.Mirror (the embedded engine) against docker-registry on loopback."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import regmirror

SECRET = "hunter2-very-secret"


def test_mirror_with_initial_evaluation_copies_every_tag(registry, mirror):
    pushed = {tag: registry.push_image("team/app", tag) for tag in ("v1", "v2", "latest")}

    policy = mirror.add_policy("mirrors/app", remote_host=registry.url,
                               remote_repository="team/app")
    assert policy.local_repository == "mirrors/app"
    assert policy.remote_host == registry.url
    assert policy.last_status.code == "NEVER_RUN"

    job = mirror.poll(policy.id)
    assert job.status == "done", job.log_lines()
    assert job.finished and job.action == "poll_mirror"
    assert job.parameters == {"policyID": policy.id}
    assert any("job done" in line for line in job.log_lines())

    tags = {t.name: t for t in mirror.tags("mirrors/app")}
    assert sorted(tags) == sorted(pushed)
    for name, tag in tags.items():
        assert tag.digest == registry.manifest_digest("team/app", name) == pushed[name]
        assert tag.media_type == "application/vnd.docker.distribution.manifest.v2+json"
        assert tag.mirrored_by == policy.id
        assert tag.size > 0
        assert tag.to_dict()["digest"] == tag.digest

    after = mirror.policy(policy.id)
    assert after.last_status.code == "SUCCESS"
    assert after.last_mirrored_at is not None
    assert [p.id for p in mirror.policies("mirrors/app")] == [policy.id]
    assert mirror.job(job.id).status == "done"
    assert [j.id for j in mirror.jobs(action="poll_mirror", running=False)] == [job.id]
    assert mirror.jobs(running=True) == []


def test_without_initial_evaluation_only_new_tags_are_mirrored(registry, mirror):
    registry.push_image("team/app", "old")
    policy = mirror.add_policy("mirrors/app", remote_host=registry.url,
                               remote_repository="team/app", initial_evaluation=False)
    assert policy.initial_evaluation is False
    assert mirror.poll(policy.id).status == "done"
    assert mirror.tags("mirrors/app") == []

    new = registry.push_image("team/app", "new")
    assert mirror.poll(policy.id).status == "done"
    assert [(t.name, t.digest) for t in mirror.tags("mirrors/app")] == [("new", new)]


def test_bad_credentials_raise_authentication_error(make_registry, mirror):
    upstream = make_registry(auth=("bot", "right-password"))
    upstream.push_image("team/private", "v1")

    with pytest.raises(regmirror.AuthenticationError) as err:
        mirror.add_policy("mirrors/private", remote_host=upstream.url,
                          remote_repository="team/private", username="bot", password=SECRET)
    message = str(err.value)
    assert "team/private" in message
    assert SECRET not in message and SECRET not in repr(err.value)
    assert err.value.kind == "unauthorized"
    assert isinstance(err.value, regmirror.MirrorError)
    with pytest.raises(regmirror.AuthenticationError):
        mirror.check_connection(remote_host=upstream.url, remote_repository="team/private")
    assert mirror.policies() == []

    good = mirror.add_policy("mirrors/private", remote_host=upstream.url,
                             remote_repository="team/private", username="bot",
                             password="right-password")
    assert mirror.poll(good.id).status == "done"
    assert [t.name for t in mirror.tags("mirrors/private")] == ["v1"]


def test_unknown_remote_repository_raises_not_found(registry, mirror):
    registry.push_image("team/app", "v1")
    with pytest.raises(regmirror.NotFoundError) as err:
        mirror.add_policy("mirrors/missing", remote_host=registry.url,
                          remote_repository="team/missing")
    assert "team/missing" in str(err.value)
    with pytest.raises(regmirror.NotFoundError):
        mirror.policy("no-such-policy")
    with pytest.raises(regmirror.NotFoundError):
        mirror.job("no-such-job")
    with pytest.raises(regmirror.NotFoundError):
        mirror.tags("mirrors/never-created")


def test_tls_needs_the_ca(make_registry, mirror, certs):
    upstream = make_registry(tls=True)
    digest = upstream.push_image("team/app", "v1")

    with pytest.raises(regmirror.TLSError) as err:
        mirror.add_policy("mirrors/app", remote_host=upstream.url, remote_repository="team/app")
    assert err.value.kind == "tls"
    with pytest.raises(regmirror.TLSError):
        mirror.check_connection(remote_host=upstream.url, remote_repository="team/app")

    assert mirror.check_connection(remote_host=upstream.url, remote_repository="team/app",
                                   remote_ca=certs.ca_pem) == {"read": True, "write": True}
    policy = mirror.add_policy("mirrors/app", remote_host=upstream.url,
                               remote_repository="team/app", remote_ca=certs.ca_pem)
    assert policy.remote_ca == certs.ca_pem
    assert mirror.poll(policy.id).status == "done"
    assert [t.digest for t in mirror.tags("mirrors/app")] == [digest]


def test_invalid_input_names_the_field(mirror):
    with pytest.raises(regmirror.InvalidPolicyError) as err:
        mirror.add_policy("mirrors/app", remote_host="not a url", remote_repository="team/app")
    assert err.value.field == "remoteHost"
    assert "remoteHost" in str(err.value)
    assert isinstance(err.value, ValueError)

    with pytest.raises(regmirror.InvalidPolicyError) as err:
        mirror.add_policy("mirrors/app", remote_host="http://127.0.0.1:1",
                          remote_repository="team/app", remote_ca="not a certificate")
    assert err.value.field == "remoteCA"

    with pytest.raises(regmirror.InvalidPolicyError) as err:
        mirror.add_policy("Mirrors/App", remote_host="http://127.0.0.1:1",
                          remote_repository="team/app")
    assert err.value.field == "localRepository"
    assert "Mirrors/App" in str(err.value)

    with pytest.raises(TypeError):
        mirror.update_policy("x", colour="blue")


def test_rules_choose_the_tags_a_poll_copies(registry, mirror):
    pushed = {tag: registry.push_image("team/app", tag)
              for tag in ("v1.0", "v1.1", "v1.2-rc1", "v2.0", "latest")}
    rules = [{"operator": "sw", "values": ["v1."]},
             {"operator": "ew", "values": ("-rc1",), "exclude": True}]
    policy = mirror.add_policy("mirrors/app", remote_host=registry.url,
                               remote_repository="team/app", rules=rules)
    want = [{"field": "tag", "operator": "sw", "values": ["v1."], "exclude": False, "by": "version"},
            {"field": "tag", "operator": "ew", "values": ["-rc1"], "exclude": True, "by": "version"}]
    assert policy.rules == want
    assert mirror.policy(policy.id).rules == want
    assert policy.to_dict()["rules"] == want

    assert mirror.poll(policy.id).status == "done"
    tags = {t.name: t.digest for t in mirror.tags("mirrors/app")}
    assert tags == {"v1.0": pushed["v1.0"], "v1.1": pushed["v1.1"]}

    # Changed rules choose what the next poll copies; other fields stay.
    updated = mirror.update_policy(policy.id, rules=[
        {"field": "tag", "operator": "semver", "values": [">=2"]}])
    assert updated.rules == [{"field": "tag", "operator": "semver", "values": [">=2"],
                              "exclude": False, "by": "version"}]
    assert updated.remote_repository == "team/app"
    assert mirror.update_policy(policy.id, enabled=False).rules == updated.rules
    assert mirror.poll(policy.id).status == "done"
    assert sorted(t.name for t in mirror.tags("mirrors/app")) == ["v1.0", "v1.1", "v2.0"]

    # No rules: every tag.
    plain = mirror.add_policy("mirrors/all", remote_host=registry.url,
                              remote_repository="team/app")
    assert plain.rules == []


def test_platforms_and_referrers_are_policy_keywords(registry, mirror):
    registry.push_image("team/app", "v1")
    remote = {"remote_host": registry.url, "remote_repository": "team/app"}
    policy = mirror.add_policy("mirrors/app", **remote)
    # The defaults: every platform, referrers copied, deletion off.
    assert (policy.platforms, policy.platform_mode, policy.mirror_referrers,
            policy.referrer_artifact_types) == ([], "sparse", True, [])
    assert (policy.delete_removed, policy.delete_removed_dry_run,
            policy.delete_removed_max_percent) == (False, False, 10)

    updated = mirror.update_policy(
        policy.id, platforms=["linux/arm64/v8", "linux/amd64"], platform_mode="rewrite",
        mirror_referrers=True,
        referrer_artifact_types=["application/vnd.dev.cosign.artifact.sig.v1+json"],
        delete_removed=True, delete_removed_max_percent=25)
    assert updated.platforms == ["linux/arm64/v8", "linux/amd64"]
    assert updated.platform_mode == "rewrite"
    assert updated.referrer_artifact_types == [
        "application/vnd.dev.cosign.artifact.sig.v1+json"]
    assert (updated.delete_removed, updated.delete_removed_max_percent) == (True, 25)
    assert mirror.policy(policy.id).to_dict()["platforms"] == updated.platforms

    for form, field in [({"platforms": ["linux"]}, "platforms[0]"),
                        ({"referrer_artifact_types": ["sig"]}, "referrerArtifactTypes[0]"),
                        ({"platform_mode": "thin"}, "platformMode")]:
        with pytest.raises(regmirror.InvalidPolicyError) as err:
            mirror.update_policy(policy.id, **form)
        assert err.value.field == field, (form, err.value)
    assert mirror.policy(policy.id).platforms == updated.platforms


def test_a_bandwidth_limit_is_a_policy_keyword(registry, mirror):
    registry.push_image("team/app", "v1")
    remote = {"remote_host": registry.url, "remote_repository": "team/app"}
    policy = mirror.add_policy("mirrors/app", **remote)
    assert policy.max_bytes_per_sec == 0
    updated = mirror.update_policy(policy.id, max_bytes_per_sec=5 * 1024 * 1024)
    assert mirror.policy(policy.id).max_bytes_per_sec == updated.max_bytes_per_sec == 5 << 20
    with pytest.raises(regmirror.InvalidPolicyError) as err:
        mirror.update_policy(policy.id, max_bytes_per_sec=100)
    assert err.value.field == "maxBytesPerSec"
    assert "at least 1024" in str(err.value)
    # A limited poll still copies, and says what it waited for.
    progress = []
    job = mirror.poll(policy.id, progress=progress.append)
    assert job.status == "done", job.log_lines()
    assert "bandwidth limit: 5.0 MiB/s (policy)" in "\n".join(job.log_lines())
    assert all("bandwidth_wait_ms" in p for p in progress)


def test_preview_tags_lists_the_matching_tags(registry, mirror):
    for tag in ("1.19", "1.20", "1.21.3", "2.0", "latest"):
        registry.push_image("team/app", tag)
    remote = {"remote_host": registry.url, "remote_repository": "team/app"}

    preview = mirror.preview_tags(**remote, rules=[
        {"operator": "semver", "values": [">=1.20 <2"]}])
    assert preview == {"tags_listed": 5, "matching_tags": ["1.20", "1.21.3"]}
    newest = mirror.preview_tags(**remote, rules=[{"operator": "newest", "values": ["2"]}])
    assert sorted(newest["matching_tags"]) == ["1.21.3", "2.0"]
    everything = mirror.preview_tags(**remote)
    assert everything["tags_listed"] == 5
    assert sorted(everything["matching_tags"]) == ["1.19", "1.20", "1.21.3", "2.0", "latest"]
    assert mirror.preview_tags(**remote, rules=[{"operator": "eq", "values": ["nope"]}]) \
        == {"tags_listed": 5, "matching_tags": []}

    async def main():
        return await mirror.preview_tags_async(**remote, rules=[
            {"operator": "matches", "values": [r"1\.\d+"]}])

    assert asyncio.run(main()) == {"tags_listed": 5, "matching_tags": ["1.19", "1.20"]}
    # Nothing is saved.
    assert mirror.policies() == []


def test_bad_rules_name_their_field(registry, mirror):
    registry.push_image("team/app", "v1")
    remote = {"remote_host": registry.url, "remote_repository": "team/app"}

    cases = [
        ([{"operator": "sw", "values": []}], "rules[0].values"),
        ([{"operator": "sw", "values": ["v"]}, {"operator": "matches", "values": ["("]}],
         "rules[1].values"),
        ([{"operator": "semver", "values": ["not a range"]}], "rules[0].values"),
        ([{"operator": "newest", "values": ["many"]}], "rules[0].values"),
        ([{"operator": "sw", "values": [1]}], "rules[0].values[0]"),
        ([{"operator": "starts", "values": ["v"]}], "rules[0].operator"),
        ([{"field": "digest", "operator": "sw", "values": ["v"]}], "rules[0].field"),
        ([{"values": ["v"]}], "rules[0]"),
        ("sw", "rules"),
    ]
    for rules, field in cases:
        for call in (mirror.preview_tags, mirror.check_connection):
            with pytest.raises(regmirror.InvalidPolicyError) as err:
                call(**remote, rules=rules)
            assert err.value.field == field, (rules, err.value)
            assert str(err.value).startswith(f"{field}: "), (rules, str(err.value))
        with pytest.raises(regmirror.InvalidPolicyError) as err:
            mirror.add_policy("mirrors/app", **remote, rules=rules)
        assert err.value.field == field
    assert mirror.policies() == []

    policy = mirror.add_policy("mirrors/app", **remote)
    with pytest.raises(regmirror.InvalidPolicyError) as err:
        mirror.update_policy(policy.id, rules=[{"operator": "sw", "values": []}])
    assert err.value.field == "rules[0].values"
    assert mirror.policy(policy.id).rules == []

    # A value JSON cannot hold is a TypeError naming the argument.
    with pytest.raises(TypeError) as type_err:
        mirror.preview_tags(**remote, rules=[{"operator": "sw", "values": [object()]}])
    assert "rules" in str(type_err.value)


def test_remote_guard_refuses_inside_hosts_before_connecting(registry, tmp_path):
    registry.push_image("team/app", "v1")
    port = registry.url.rsplit(":", 1)[1]
    guarded = regmirror.Mirror(tmp_path / "guarded", forbid_private_remotes=True,
                               remote_hosts_allow=[f"127.0.0.1:{port}"])
    # The host named exactly in the allow-list is reachable...
    guarded.add_policy("mirrors/app", remote_host=registry.url, remote_repository="team/app")
    # ...other loopback, private and metadata addresses are not, nor names
    # that resolve to them.
    for host in ("http://127.0.0.1:1", "http://[::1]:5000", f"http://localhost:{port}",
                 "http://10.0.0.1", "http://169.254.169.254"):
        with pytest.raises(regmirror.InvalidPolicyError) as err:
            guarded.add_policy("mirrors/other", remote_host=host, remote_repository="team/app")
        assert err.value.field == "remoteHost", host
        assert "remoteHost" in str(err.value)
    with pytest.raises(regmirror.InvalidPolicyError) as err:
        regmirror.Mirror(tmp_path / "bad", remote_hosts_allow=["https://x.example"])
    assert err.value.field == "remote_hosts_allow"


def test_unreachable_host(mirror):
    from socket import socket

    with socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(regmirror.UnreachableError) as err:
        mirror.add_policy("mirrors/app", remote_host=f"http://127.0.0.1:{port}",
                          remote_repository="team/app")
    assert isinstance(err.value, ConnectionError)


def test_password_is_never_readable(make_registry, mirror):
    upstream = make_registry(auth=("bot", SECRET))
    upstream.push_image("team/app", "v1")
    policy = mirror.add_policy("mirrors/app", remote_host=upstream.url,
                               remote_repository="team/app", username="bot", password=SECRET,
                               auth_token="")
    for p in (policy, mirror.policy(policy.id), *mirror.policies()):
        assert not hasattr(p, "password") and not hasattr(p, "auth_token")
        d = p.to_dict()
        assert "password" not in d and "auth_token" not in d
        assert d["username"] == "bot" and d["remote_repository"] == "team/app"
        assert SECRET not in repr(p) and SECRET not in str(d)
    # The stored credentials still work: a poll authenticates with them.
    assert mirror.poll(policy.id).status == "done"

    updated = mirror.update_policy(policy.id, enabled=False)
    assert updated.enabled is False and not hasattr(updated, "password")
    with pytest.raises(regmirror.AuthenticationError):
        mirror.update_policy(policy.id, password="wrong")
    assert mirror.delete_policy(policy.id) is True
    assert mirror.delete_policy(policy.id) is False


def test_poll_async_under_asyncio_run(registry, mirror):
    digest = registry.push_image("team/app", "v1")

    async def main():
        policy = await mirror.add_policy_async("mirrors/app", remote_host=registry.url,
                                               remote_repository="team/app")
        # Other coroutines keep running while the poll is in flight.
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        t = asyncio.create_task(ticker())
        job = await mirror.poll_async(policy.id)
        t.cancel()
        tags = await mirror.tags_async("mirrors/app")
        lines = await job.log_lines_async()
        policies = await mirror.policies_async()
        return job, tags, lines, policies, ticks

    job, tags, lines, policies, ticks = asyncio.run(main())
    assert job.status == "done"
    assert [t.digest for t in tags] == [digest]
    assert lines and len(policies) == 1
    assert ticks > 0


def test_async_twin_needs_a_running_loop(mirror):
    with pytest.raises(RuntimeError):
        mirror.policies_async()


def test_async_errors_are_the_same_classes(mirror):
    async def main():
        await mirror.add_policy_async("mirrors/app", remote_host="not a url",
                                      remote_repository="team/app")

    with pytest.raises(regmirror.InvalidPolicyError) as err:
        asyncio.run(main())
    assert err.value.field == "remoteHost"


def test_progress_callback_reports_bytes(registry, mirror):
    registry.push_image("team/big", "v1", layer_size=3 * 1024 * 1024)
    policy = mirror.add_policy("mirrors/big", remote_host=registry.url,
                               remote_repository="team/big")
    reports: list[dict] = []
    job = mirror.poll(policy.id, progress=reports.append)
    assert job.status == "done"
    assert reports, "the callback was never called"
    last = reports[-1]
    assert set(last) == {"bytes_copied", "blobs_copied", "blobs_reused", "tags_copied",
                         "tags_planned", "retries", "bandwidth_wait_ms"}
    assert last["bandwidth_wait_ms"] == 0
    assert last["bytes_copied"] >= 3 * 1024 * 1024
    assert last["blobs_copied"] == 2 and last["tags_copied"] == 1


def test_exception_in_progress_callback_cancels_the_job_cleanly(registry, slow_proxy, mirror):
    registry.push_image("team/big", "v1", layer_size=4 * 1024 * 1024)
    proxy = slow_proxy(rate=512 * 1024)
    policy = mirror.add_policy("mirrors/big", remote_host=proxy, remote_repository="team/big")

    class Stop(Exception):
        pass

    def progress(d):
        raise Stop()

    started = time.monotonic()
    with pytest.raises(Stop):
        mirror.poll(policy.id, progress=progress)
    assert time.monotonic() - started < 6, "the job did not stop promptly"
    [job] = mirror.jobs()
    assert job.status == "canceled", job.log_lines()
    assert job.error_kind == "canceled", job.to_dict()
    assert job.error_message
    assert mirror.tags("mirrors/big") == []
    assert mirror.policy(policy.id).last_status.code == "CANCELED"


def test_ctrl_c_cancels_the_job_cleanly(registry, slow_proxy, tmp_path):
    registry.push_image("team/big", "v1", layer_size=4 * 1024 * 1024)
    proxy = slow_proxy(rate=512 * 1024)
    data = tmp_path / "data"
    m = regmirror.Mirror(data)
    policy = m.add_policy("mirrors/big", remote_host=proxy, remote_repository="team/big")
    script = textwrap.dedent("""
        import sys, regmirror
        m = regmirror.Mirror(sys.argv[1])
        said = False
        def progress(d):
            global said
            if d["bytes_copied"] > 0 and not said:
                said = True
                print("copying", flush=True)
        try:
            m.poll(sys.argv[2], progress=progress)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(130)
        print("finished", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script, str(data), policy.id],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "copying"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (out, err)
    assert out.strip() == "interrupted"
    [job] = m.jobs()
    assert job.status == "canceled", job.log_lines()
    assert m.tags("mirrors/big") == []


def test_poll_of_unknown_policy_is_refused(mirror):
    with pytest.raises(regmirror.InvalidPolicyError) as err:
        mirror.poll("no-such-policy")
    assert "no-such-policy" in str(err.value)


def test_reprs_and_dicts(registry, mirror):
    registry.push_image("team/app", "v1")
    policy = mirror.add_policy("mirrors/app", remote_host=registry.url,
                               remote_repository="team/app")
    job = mirror.poll(policy.id)
    assert repr(policy).startswith("Policy(") and policy.id in repr(policy)
    assert repr(job).startswith("Job(") and "done" in repr(job)
    assert job.error_kind is None and job.error_message is None
    d = policy.to_dict()
    assert d["last_status"]["code"] == "NEVER_RUN"
    assert set(job.to_dict()) >= {"id", "status", "action", "parameters", "retry_from_id",
                                  "worker_id", "scheduled_at", "last_updated"}
    assert str(mirror.data_dir) == str(Path(os.fspath(mirror.data_dir)))


@pytest.mark.asyncio
async def test_concurrent_async_polls_in_one_loop(make_registry, mirror):
    upstreams = [make_registry(), make_registry()]
    digests = [u.push_image("team/app", "v1") for u in upstreams]
    policies = [await mirror.add_policy_async(f"mirrors/app{i}", remote_host=u.url,
                                              remote_repository="team/app")
                for i, u in enumerate(upstreams)]
    jobs = await asyncio.gather(*(mirror.poll_async(p.id) for p in policies))
    assert [j.status for j in jobs] == ["done", "done"]
    for i, digest in enumerate(digests):
        assert [t.digest for t in await mirror.tags_async(f"mirrors/app{i}")] == [digest]


def test_cancelling_poll_async_cancels_the_job_cleanly(registry, slow_proxy, mirror):
    registry.push_image("team/big", "v1", layer_size=4 * 1024 * 1024)
    proxy = slow_proxy(rate=512 * 1024)
    policy = mirror.add_policy("mirrors/big", remote_host=proxy, remote_repository="team/big")

    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(mirror.poll_async(policy.id), timeout=1.0)

    asyncio.run(main())
    deadline = time.monotonic() + 15
    while mirror.jobs()[0].status not in ("canceled", "done", "errored"):
        assert time.monotonic() < deadline, "the job did not stop"
        time.sleep(0.1)
    [job] = mirror.jobs()
    assert job.status == "canceled", job.log_lines()
    assert mirror.tags("mirrors/big") == []


def test_a_moved_tag_keeps_its_history(registry, mirror):
    first = registry.push_image("team/app", "v1")
    policy = mirror.add_policy("mirrors/app", remote_host=registry.url,
                               remote_repository="team/app")
    assert mirror.poll(policy.id).status == "done"
    assert mirror.tag_history("mirrors/app", "v1") == []

    second = registry.push_image("team/app", "v1")
    assert mirror.poll(policy.id).status == "done"
    assert [t.digest for t in mirror.tags("mirrors/app")] == [second]
    [entry] = mirror.tag_history("mirrors/app", "v1")
    assert (entry.digest, entry.replaced_by, entry.mirrored_by) == (first, second, policy.id)
    assert entry.available is True
    assert entry.media_type == "application/vnd.docker.distribution.manifest.v2+json"
    assert entry.size > 0 and entry.tagged_at <= entry.replaced_at
    assert entry.to_dict()["replaced_by"] == second

    async def history_async():
        return await mirror.tag_history_async("mirrors/app", "v1")

    assert [e.digest for e in asyncio.run(history_async())] == [first]

    with pytest.raises(regmirror.NotFoundError):
        mirror.tag_history("mirrors/app", "never")
    with pytest.raises(regmirror.NotFoundError):
        mirror.tag_history("mirrors/none", "v1")

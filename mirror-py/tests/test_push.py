"""Push mirroring policies with regmirror.Mirror: a tag mirrored in from one
docker-registry is pushed on to another (Basic auth), whose /v2 is checked."""

from __future__ import annotations

import asyncio

import pytest

import regmirror

PUSHER = ("pusher", "push-secret-1")


def test_push_policy_pushes_a_mirrored_tag_to_the_remote(registry, make_registry, mirror):
    dest = make_registry(auth=PUSHER)
    digests = {tag: registry.push_image("team/app", tag) for tag in ("v1", "v2")}
    pull = mirror.add_policy("mirrors/app", remote_host=registry.url, remote_repository="team/app")
    assert mirror.poll(pull.id).status == "done"

    policy = mirror.add_push_policy(
        "mirrors/app", remote_host=dest.url, remote_repository="edge/app",
        username=PUSHER[0], password=PUSHER[1], tag_template="%n-copy",
        rules=[{"field": "tag", "operator": "eq", "values": ["v1"]}])
    assert isinstance(policy, regmirror.PushPolicy)
    assert policy.local_repository == "mirrors/app" and policy.remote_repository == "edge/app"
    assert policy.tag_template == "%n-copy" and policy.enabled
    assert policy.last_status.code == "NEVER_RUN" and policy.last_mirrored_at is None
    assert [r["values"] for r in policy.rules] == [["v1"]]
    assert not hasattr(policy, "password")
    assert PUSHER[1] not in repr(policy) and PUSHER[1] not in str(policy.to_dict())

    job = mirror.push(policy.id, "v1")
    assert job.status == "done", job.log_lines()
    assert job.action == "push_mirror_tag"
    assert dest.manifest_digest("edge/app", "v1-copy") == digests["v1"]
    after = mirror.push_policy(policy.id)
    assert after.last_status.code == "SUCCESS" and after.last_mirrored_at is not None

    assert [p.id for p in mirror.push_policies()] == [policy.id]
    assert [p.id for p in mirror.push_policies("mirrors/app")] == [policy.id]
    assert mirror.push_policies("mirrors/other") == []
    # The poll policies are another list.
    assert [p.id for p in mirror.policies("mirrors/app")] == [pull.id]

    changed = mirror.update_push_policy(policy.id, tag_template="%n-two", enabled=False)
    assert changed.tag_template == "%n-two" and changed.enabled is False
    assert mirror.push(policy.id, "v2").status == "done"
    assert dest.manifest_digest("edge/app", "v2-two") == digests["v2"]

    assert mirror.delete_push_policy(policy.id) is True
    assert mirror.delete_push_policy(policy.id) is False
    with pytest.raises(regmirror.NotFoundError):
        mirror.push_policy(policy.id)


def test_push_policy_errors_name_the_field(make_registry, mirror):
    dest = make_registry(auth=PUSHER)
    form = dict(remote_host=dest.url, remote_repository="edge/app", username=PUSHER[0])
    with pytest.raises(regmirror.AuthenticationError):
        mirror.add_push_policy("mirrors/app", password="wrong", **form)
    with pytest.raises(regmirror.InvalidPolicyError) as bad:
        mirror.add_push_policy("mirrors/app", password=PUSHER[1], tag_template="%n/x", **form)
    assert bad.value.field == "tagTemplate"
    with pytest.raises(regmirror.InvalidPolicyError) as bad:
        mirror.add_push_policy("mirrors/app", remote_repository="edge/app")
    assert bad.value.field == "remoteHost"
    with pytest.raises(TypeError, match="unexpected keyword argument 'platforms'"):
        mirror.add_push_policy("mirrors/app", platforms=["linux/amd64"], **form)
    assert mirror.push_policies() == []


def test_push_policy_async_twins(make_registry, mirror):
    dest = make_registry(auth=PUSHER)

    async def run() -> list[str]:
        policy = await mirror.add_push_policy_async(
            "mirrors/app", remote_host=dest.url, remote_repository="edge/app",
            username=PUSHER[0], password=PUSHER[1])
        assert policy.tag_template == "%n"
        listed = await mirror.push_policies_async("mirrors/app")
        updated = await mirror.update_push_policy_async(policy.id, tag_template="%n-%D")
        assert updated.tag_template == "%n-%D"
        assert (await mirror.push_policy_async(policy.id)).tag_template == "%n-%D"
        assert await mirror.delete_push_policy_async(policy.id) is True
        return [p.id for p in listed]

    assert len(asyncio.run(run())) == 1

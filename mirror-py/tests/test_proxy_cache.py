"""Proxy caches (pull-through) with regmirror.Mirror: created, listed,
changed and deleted through the form's keywords; the password is
write-only (only `has_password` shows it). Nothing is pulled: creating a
cache reaches no remote."""

from __future__ import annotations

import asyncio

import pytest

import regmirror

HUB = "https://index.docker.io"
TOKEN = "dckr_pat_proxy-cache-secret"


def test_proxy_cache_is_added_listed_updated_and_deleted(mirror):
    cache = mirror.add_proxy_cache(namespace="hub", remote_host=HUB, tag_ttl_secs=60)
    assert isinstance(cache, regmirror.ProxyCache)
    assert (cache.namespace, cache.remote_host, cache.tag_ttl_secs) == ("hub", HUB, 60)
    assert (cache.username, cache.has_password, cache.remote_ca) == ("", False, "")
    assert (cache.skip_tls_verification, cache.max_bytes) == (False, 0)
    assert (cache.anonymous_pull, cache.is_default) == (False, False)
    assert cache.created_at and cache.updated_at
    assert [c.namespace for c in mirror.proxy_caches()] == ["hub"]
    # What create answers is what is stored, times included.
    assert mirror.proxy_cache("hub").to_dict() == cache.to_dict()

    changed = mirror.update_proxy_cache("hub", username="hub-bot", password=TOKEN,
                                        anonymous_pull=True, is_default=True, max_bytes=1 << 30)
    assert changed.username == "hub-bot" and changed.has_password is True
    assert changed.anonymous_pull and changed.is_default and changed.max_bytes == 1 << 30
    assert changed.tag_ttl_secs == 60, "an absent field keeps its value"
    # The password is write-only.
    assert not hasattr(changed, "password") and "password" not in changed.to_dict()
    [listed] = mirror.proxy_caches()
    for shown in (repr(changed), str(changed.to_dict()), repr(listed), str(listed.to_dict())):
        assert TOKEN not in shown
    assert listed.has_password is True and listed.created_at == changed.created_at
    # A new remote drops the password unless one is given.
    moved = mirror.update_proxy_cache("hub", remote_host="https://mirror.gcr.io/")
    assert moved.remote_host == "https://mirror.gcr.io"
    assert moved.has_password is False and moved.username == "hub-bot"

    assert mirror.delete_proxy_cache("hub") is True
    assert mirror.delete_proxy_cache("hub") is False
    assert mirror.proxy_caches() == []
    with pytest.raises(regmirror.NotFoundError):
        mirror.proxy_cache("hub")


def test_proxy_cache_errors_name_the_field(mirror):
    with pytest.raises(regmirror.InvalidPolicyError) as bad:
        mirror.add_proxy_cache(namespace="hub", remote_host="index.docker.io")
    assert bad.value.field == "remoteHost" and "remoteHost" in str(bad.value)
    with pytest.raises(regmirror.InvalidPolicyError) as bad:
        mirror.add_proxy_cache(namespace="hub")
    assert bad.value.field == "remoteHost"
    with pytest.raises(regmirror.InvalidPolicyError) as bad:
        mirror.add_proxy_cache(namespace="a/b", remote_host=HUB)
    assert bad.value.field == "namespace"
    with pytest.raises(regmirror.InvalidPolicyError) as bad:
        mirror.add_proxy_cache(namespace="hub", remote_host=HUB, tag_ttl_secs=8 * 24 * 3600)
    assert bad.value.field == "tagTTLSecs"
    # A value of the wrong type names the field too.
    with pytest.raises(regmirror.InvalidPolicyError) as bad:
        mirror.add_proxy_cache(namespace="hub", remote_host=HUB, tag_ttl_secs="soon")
    assert bad.value.field == "tagTTLSecs" and "tagTTLSecs" in str(bad.value)
    with pytest.raises(regmirror.InvalidPolicyError) as bad:
        mirror.add_proxy_cache(namespace="hub", remote_host=HUB, password=TOKEN)
    assert bad.value.field == "username" and TOKEN not in str(bad.value)
    with pytest.raises(TypeError, match="unexpected keyword argument 'remote_repository'"):
        mirror.add_proxy_cache(namespace="hub", remote_host=HUB, remote_repository="library/alpine")
    assert mirror.proxy_caches() == []

    mirror.add_proxy_cache(namespace="hub", remote_host=HUB)
    with pytest.raises(regmirror.MirrorError) as dup:
        mirror.add_proxy_cache(namespace="hub", remote_host="https://ghcr.io")
    assert dup.value.kind == "conflict"
    with pytest.raises(regmirror.InvalidPolicyError) as bad:
        mirror.update_proxy_cache("hub", remote_host="ftp://index.docker.io")
    assert bad.value.field == "remoteHost"
    with pytest.raises(TypeError, match="unexpected keyword argument 'enabled'"):
        mirror.update_proxy_cache("hub", enabled=False)
    with pytest.raises(regmirror.NotFoundError):
        mirror.update_proxy_cache("quay", tag_ttl_secs=1)
    assert mirror.proxy_cache("hub").remote_host == HUB


def test_proxy_cache_async_twins(mirror):
    async def run() -> list[str]:
        cache = await mirror.add_proxy_cache_async(namespace="hub", remote_host=HUB)
        assert cache.tag_ttl_secs == 300
        listed = await mirror.proxy_caches_async()
        updated = await mirror.update_proxy_cache_async("hub", tag_ttl_secs=0)
        assert updated.tag_ttl_secs == 0
        assert (await mirror.proxy_cache_async("hub")).tag_ttl_secs == 0
        assert await mirror.delete_proxy_cache_async("hub") is True
        return [c.namespace for c in listed]

    assert asyncio.run(run()) == ["hub"]

"""Type stubs of regmirror (implemented in Rust, regmirror._regmirror)."""

import os
import pathlib
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Optional, Union, final

from typing_extensions import NotRequired, TypedDict

__version__: str

ProgressCallback = Callable[[dict[str, int]], object]
"""Called with ``bytes_copied``, ``blobs_copied``, ``blobs_reused``,
``tags_copied``, ``tags_planned``, ``retries`` and ``bandwidth_wait_ms``."""

class TagRule(TypedDict):
    """A tag rule (the ``rules`` item of a policy): which remote tags a policy
    mirrors. A tag is mirrored when it matches every rule that keeps and no
    rule with ``exclude``; ``newest`` (``values: ["5"]``) then keeps the
    highest versions. A policy's ``rules`` always hold every key. Only in
    the stubs (a plain dict at run time): import it under ``TYPE_CHECKING``."""

    field: NotRequired[str]
    """What the rule looks at: ``tag`` (the default, and the only one)."""
    operator: Literal["eq", "sw", "ew", "c", "oo", "noo", "matches", "semver", "newest"]
    """``eq`` (equals), ``sw`` (starts with), ``ew`` (ends with), ``c``
    (contains), ``oo`` (one of), ``noo`` (none of), ``matches`` (a regular
    expression, whole tag), ``semver`` (a range such as ``>=1.20 <2``) or
    ``newest`` (how many of the highest versions to keep)."""
    values: list[str]
    """The values compared with (at least one)."""
    exclude: NotRequired[bool]
    """Drop the tags the rule matches instead of keeping only them."""
    by: NotRequired[Literal["version", "created"]]
    """How ``newest`` orders: the highest versions (the default) or the
    images built last (their configs' ``created``)."""

class TagPreview(TypedDict):
    """Which remote tags a policy's rules would mirror, listed now (a plain
    dict at run time; import it under ``TYPE_CHECKING``)."""

    tags_listed: int
    """How many tags the remote lists."""
    matching_tags: list[str]
    """The ones the rules keep, in the remote's order."""

class PlanAction(TypedDict):
    """One change of a ``PolicyPlan`` (a plain dict at run time; import it
    under ``TYPE_CHECKING``)."""

    action: Literal["create_repository", "create_policy", "update_policy", "delete_policy"]
    repository: str
    """The local repository."""
    visibility: NotRequired[Literal["public", "private"]]
    """``create_repository``: the visibility it is created with."""
    remote: NotRequired[str]
    """The remote, ``host/repository``."""
    location: NotRequired[str]
    """The file's entry, ``repositories[i].policies[j]``."""
    evaluate_now: NotRequired[bool]
    """``create_policy``: evaluated at once (``initialEvaluation: true``)."""
    policy_id: NotRequired[str]
    """``update_policy``, ``delete_policy``: the stored policy."""
    changes: NotRequired[list[str]]
    """``update_policy``: the fields that change, as the file names them
    (``password`` and ``authToken`` without their values)."""

class PolicyPlan(TypedDict):
    """What ``Mirror.apply_policies`` does (a plain dict at run time)."""

    actions: list[PlanAction]
    """The changes, in the order they are applied."""
    unchanged: int
    """Policies of the file that already match."""
    kept: int
    """Policies of the file's repositories the file does not list, kept
    (``prune=False``)."""
    notes: list[str]
    """What is not changed but should be known (a differing visibility)."""
    prune: bool
    text: str
    """The plan as ``mirror-server apply`` prints it."""

# ---------------------------------------------------------------- errors --

class MirrorError(Exception):
    """Base class of every regmirror error."""

    kind: str
    """``not_found``, ``unauthorized``, ``denied``, ``tls``, ``unreachable``,
    ``transient``, ``digest_mismatch``, ``invalid``, ``conflict``,
    ``canceled`` or ``internal``."""
    field: Optional[str]
    """The REST API field the error is about (``remoteHost``, ...), if any."""

class AuthenticationError(MirrorError):
    """Credentials refused (``unauthorized``) or access denied (``denied``)."""

class TLSError(MirrorError):
    """TLS handshake or certificate verification failed."""

class NotFoundError(MirrorError):
    """A repository, tag, policy or job does not exist."""

class DigestMismatchError(MirrorError):
    """Content did not match its digest or size."""

class InvalidPolicyError(MirrorError, ValueError):
    """An input is invalid; ``field`` names it when known."""

class UnreachableError(MirrorError, ConnectionError):
    """The host could not be reached."""

class CanceledError(MirrorError):
    """The operation was canceled."""

# ----------------------------------------------------------------- views --

@final
class MirroringStatus:
    """The outcome of a policy's last evaluation (DTR's ``MirroringStatus``)."""

    @property
    def code(self) -> str:
        """``SUCCESS``, ``PARTIAL``, ``FAILED``, ``CANCELED`` or ``NEVER_RUN``."""
    @property
    def detail(self) -> str: ...
    @property
    def timestamp(self) -> str:
        """RFC 3339."""
    def to_dict(self) -> dict[str, str]: ...

@final
class Policy:
    """A poll mirroring policy. ``password`` and ``auth_token`` are
    write-only: not attributes, not in ``to_dict()`` or ``repr``."""

    @property
    def id(self) -> str: ...
    @property
    def local_repository(self) -> str: ...
    @property
    def remote_host(self) -> str: ...
    @property
    def remote_repository(self) -> str: ...
    @property
    def username(self) -> str: ...
    @property
    def remote_ca(self) -> str: ...
    @property
    def skip_tls_verification(self) -> bool: ...
    @property
    def enabled(self) -> bool: ...
    @property
    def initial_evaluation(self) -> bool: ...
    @property
    def last_mirrored_at(self) -> Optional[str]:
        """RFC 3339; ``None`` if no poll copied anything yet."""
    @property
    def last_status(self) -> MirroringStatus: ...
    @property
    def created_at(self) -> Optional[str]: ...
    @property
    def rules(self) -> list[TagRule]:
        """Which remote tags it mirrors (empty: every tag)."""
    @property
    def delete_removed(self) -> bool:
        """Whether polls delete local tags the remote no longer lists."""
    @property
    def delete_removed_dry_run(self) -> bool: ...
    @property
    def delete_removed_max_percent(self) -> int: ...
    @property
    def platforms(self) -> list[str]:
        """Platforms copied from an index (``os/arch[/variant]``; empty: all)."""
    @property
    def platform_mode(self) -> str:
        """``sparse`` (the upstream index as is) or ``rewrite``."""
    @property
    def mirror_referrers(self) -> bool:
        """Whether signatures, attestations and SBOMs are copied."""
    @property
    def referrer_artifact_types(self) -> list[str]: ...
    @property
    def max_bytes_per_sec(self) -> int:
        """The most its copies read from the remote, in bytes per second (0: no limit of its own)."""
    def to_dict(self) -> dict[str, Any]: ...

@final
class PushPolicy:
    """A push mirroring policy. ``password`` and ``auth_token`` are
    write-only: not attributes, not in ``to_dict()`` or ``repr``."""

    @property
    def id(self) -> str: ...
    @property
    def local_repository(self) -> str: ...
    @property
    def remote_host(self) -> str: ...
    @property
    def remote_repository(self) -> str: ...
    @property
    def username(self) -> str: ...
    @property
    def remote_ca(self) -> str: ...
    @property
    def skip_tls_verification(self) -> bool: ...
    @property
    def enabled(self) -> bool:
        """Whether tags pushed or mirrored into the repository are pushed on."""
    @property
    def rules(self) -> list[TagRule]:
        """Which local tags it pushes (empty: every tag)."""
    @property
    def tag_template(self) -> str:
        """The remote tag: ``%n`` the tag, ``%D`` the digest's first 12 hex
        characters, ``%Y %y %m %d %j %H %M %S %s %b`` the push's UTC time."""
    @property
    def last_mirrored_at(self) -> Optional[str]:
        """RFC 3339; ``None`` if no push succeeded yet."""
    @property
    def last_status(self) -> MirroringStatus: ...
    @property
    def created_at(self) -> Optional[str]: ...
    def to_dict(self) -> dict[str, Any]: ...

@final
class ProxyCache:
    """A proxy cache (pull-through): pulls of ``<namespace>/<repository>``
    are served from the local stores and fetched from ``remote_host`` on a
    miss. The password is write-only: not an attribute, not in
    ``to_dict()`` or ``repr``; ``has_password`` says whether one is stored."""

    @property
    def namespace(self) -> str: ...
    @property
    def remote_host(self) -> str: ...
    @property
    def username(self) -> str: ...
    @property
    def has_password(self) -> bool: ...
    @property
    def remote_ca(self) -> str: ...
    @property
    def skip_tls_verification(self) -> bool: ...
    @property
    def tag_ttl_secs(self) -> int:
        """Seconds a cached tag is served before one ``HEAD`` checks it upstream."""
    @property
    def max_bytes(self) -> int:
        """The namespace's size limit in bytes (0: none)."""
    @property
    def anonymous_pull(self) -> bool:
        """Whether callers who did not log in may pull through it."""
    @property
    def is_default(self) -> bool:
        """Whether names without a known namespace (Docker's
        ``registry-mirrors``) are looked up here."""
    @property
    def created_at(self) -> str:
        """RFC 3339."""
    @property
    def updated_at(self) -> str:
        """RFC 3339."""
    def to_dict(self) -> dict[str, Any]: ...

@final
class Job:
    """A job record (DTR's fields)."""

    @property
    def id(self) -> str: ...
    @property
    def retry_from_id(self) -> str: ...
    @property
    def worker_id(self) -> str: ...
    @property
    def status(self) -> str:
        """``waiting``, ``running``, ``done``, ``errored`` or ``canceled``."""
    @property
    def scheduled_at(self) -> str: ...
    @property
    def last_updated(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def retries_left(self) -> int: ...
    @property
    def retries_total(self) -> int: ...
    @property
    def parameters(self) -> dict[str, str]: ...
    @property
    def deadline(self) -> str: ...
    @property
    def stop_timeout(self) -> str: ...
    @property
    def error_kind(self) -> Optional[str]:
        """Why the job ended ``errored`` or ``canceled``: a stable code such as
        ``unreachable``, ``unauthorized``, ``digest_mismatch`` or ``canceled``."""
    @property
    def error_message(self) -> Optional[str]:
        """What failed and why, when the job ended ``errored`` or ``canceled``."""
    @property
    def finished(self) -> bool:
        """Whether the status is ``done``, ``errored`` or ``canceled``."""
    def log_lines(self) -> list[str]:
        """The job's log, oldest line first (read at each call)."""
    def log_lines_async(self) -> Awaitable[list[str]]: ...
    def to_dict(self) -> dict[str, Any]: ...

@final
class Tag:
    """A tag of a local repository."""

    @property
    def name(self) -> str: ...
    @property
    def digest(self) -> str: ...
    @property
    def media_type(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def mirrored_by(self) -> Optional[str]:
        """The ID of the policy that mirrored it."""
    @property
    def mirrored_from(self) -> Optional[str]:
        """``host/repository:tag`` it was mirrored from."""
    @property
    def updated_at(self) -> Optional[str]: ...
    def to_dict(self) -> dict[str, Any]: ...

@final
class TagHistoryEntry:
    """An earlier value of a tag: the manifest it pointed at before it moved
    or was deleted (``Mirror.tag_history``)."""

    @property
    def digest(self) -> str: ...
    @property
    def media_type(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def tagged_at(self) -> str:
        """When the tag started pointing at it (RFC 3339)."""
    @property
    def replaced_at(self) -> str:
        """When the tag moved away or was deleted (RFC 3339)."""
    @property
    def replaced_by(self) -> Optional[str]:
        """The digest the tag moved to; ``None`` when it was deleted."""
    @property
    def mirrored_by(self) -> Optional[str]:
        """The ID of the policy that had mirrored it; ``None`` when pushed."""
    @property
    def available(self) -> bool:
        """Whether the repository still holds the manifest, so that it pulls
        by digest (until garbage collection removes it)."""
    def to_dict(self) -> dict[str, Any]: ...

# --------------------------------------------------------------- engines --

class _Engine:
    """The methods ``Mirror`` and ``Client`` share. Blocking methods release
    the GIL and can be interrupted with Ctrl-C; each has an ``*_async`` twin
    that must be called inside a running asyncio event loop."""

    def add_policy(
        self,
        local_repository: str,
        *,
        remote_host: str,
        remote_repository: str,
        username: str = "",
        password: str = "",
        auth_token: str = "",
        remote_ca: Optional[str] = None,
        skip_tls_verification: bool = False,
        enabled: bool = True,
        initial_evaluation: bool = True,
        rules: Optional[list[TagRule]] = None,
        delete_removed: Optional[bool] = None,
        delete_removed_dry_run: Optional[bool] = None,
        delete_removed_max_percent: Optional[int] = None,
        platforms: Optional[list[str]] = None,
        platform_mode: Optional[Literal["sparse", "rewrite"]] = None,
        mirror_referrers: Optional[bool] = None,
        referrer_artifact_types: Optional[list[str]] = None,
        max_bytes_per_sec: Optional[int] = None,
    ) -> Policy: ...
    def add_policy_async(
        self,
        local_repository: str,
        *,
        remote_host: str,
        remote_repository: str,
        username: str = "",
        password: str = "",
        auth_token: str = "",
        remote_ca: Optional[str] = None,
        skip_tls_verification: bool = False,
        enabled: bool = True,
        initial_evaluation: bool = True,
        rules: Optional[list[TagRule]] = None,
        delete_removed: Optional[bool] = None,
        delete_removed_dry_run: Optional[bool] = None,
        delete_removed_max_percent: Optional[int] = None,
        platforms: Optional[list[str]] = None,
        platform_mode: Optional[Literal["sparse", "rewrite"]] = None,
        mirror_referrers: Optional[bool] = None,
        referrer_artifact_types: Optional[list[str]] = None,
        max_bytes_per_sec: Optional[int] = None,
    ) -> Awaitable[Policy]: ...
    def check_connection(
        self,
        *,
        remote_host: str,
        remote_repository: str,
        username: str = "",
        password: str = "",
        auth_token: str = "",
        remote_ca: Optional[str] = None,
        skip_tls_verification: bool = False,
        rules: Optional[list[TagRule]] = None,
        delete_removed: Optional[bool] = None,
        delete_removed_dry_run: Optional[bool] = None,
        delete_removed_max_percent: Optional[int] = None,
        platforms: Optional[list[str]] = None,
        platform_mode: Optional[Literal["sparse", "rewrite"]] = None,
        mirror_referrers: Optional[bool] = None,
        referrer_artifact_types: Optional[list[str]] = None,
        max_bytes_per_sec: Optional[int] = None,
    ) -> dict[str, bool]:
        """``{"read": bool, "write": bool}``; raises with the reason when
        the remote repository cannot be read."""
    def check_connection_async(
        self,
        *,
        remote_host: str,
        remote_repository: str,
        username: str = "",
        password: str = "",
        auth_token: str = "",
        remote_ca: Optional[str] = None,
        skip_tls_verification: bool = False,
        rules: Optional[list[TagRule]] = None,
        delete_removed: Optional[bool] = None,
        delete_removed_dry_run: Optional[bool] = None,
        delete_removed_max_percent: Optional[int] = None,
        platforms: Optional[list[str]] = None,
        platform_mode: Optional[Literal["sparse", "rewrite"]] = None,
        mirror_referrers: Optional[bool] = None,
        referrer_artifact_types: Optional[list[str]] = None,
        max_bytes_per_sec: Optional[int] = None,
    ) -> Awaitable[dict[str, bool]]: ...
    def preview_tags(
        self,
        *,
        remote_host: str,
        remote_repository: str,
        username: str = "",
        password: str = "",
        auth_token: str = "",
        remote_ca: Optional[str] = None,
        skip_tls_verification: bool = False,
        rules: Optional[list[TagRule]] = None,
        delete_removed: Optional[bool] = None,
        delete_removed_dry_run: Optional[bool] = None,
        delete_removed_max_percent: Optional[int] = None,
        platforms: Optional[list[str]] = None,
        platform_mode: Optional[Literal["sparse", "rewrite"]] = None,
        mirror_referrers: Optional[bool] = None,
        referrer_artifact_types: Optional[list[str]] = None,
        max_bytes_per_sec: Optional[int] = None,
    ) -> TagPreview:
        """Which of the remote repository's tags ``rules`` would mirror (every
        tag without rules), listed now; nothing is saved. A bad rule raises
        ``InvalidPolicyError`` whose ``field`` names it (``rules[0].values``)."""
    def preview_tags_async(
        self,
        *,
        remote_host: str,
        remote_repository: str,
        username: str = "",
        password: str = "",
        auth_token: str = "",
        remote_ca: Optional[str] = None,
        skip_tls_verification: bool = False,
        rules: Optional[list[TagRule]] = None,
        delete_removed: Optional[bool] = None,
        delete_removed_dry_run: Optional[bool] = None,
        delete_removed_max_percent: Optional[int] = None,
        platforms: Optional[list[str]] = None,
        platform_mode: Optional[Literal["sparse", "rewrite"]] = None,
        mirror_referrers: Optional[bool] = None,
        referrer_artifact_types: Optional[list[str]] = None,
        max_bytes_per_sec: Optional[int] = None,
    ) -> Awaitable[TagPreview]: ...
    def poll(self, policy_id: str, progress: Optional[ProgressCallback] = None) -> Job:
        """Runs one ``poll_mirror`` job for the policy and returns it finished.
        Ctrl-C cancels the job cleanly and raises ``KeyboardInterrupt``."""
    def poll_async(
        self, policy_id: str, progress: Optional[ProgressCallback] = None
    ) -> Awaitable[Job]: ...
    def policies(self, local_repository: Optional[str] = None) -> list[Policy]: ...
    def policies_async(self, local_repository: Optional[str] = None) -> Awaitable[list[Policy]]: ...
    def policy(self, id: str) -> Policy: ...
    def policy_async(self, id: str) -> Awaitable[Policy]: ...
    def update_policy(
        self,
        id: str,
        *,
        remote_host: Optional[str] = None,
        remote_repository: Optional[str] = None,
        username: Optional[str] = None,
        password: Optional[str] = None,
        auth_token: Optional[str] = None,
        remote_ca: Optional[str] = None,
        skip_tls_verification: Optional[bool] = None,
        enabled: Optional[bool] = None,
        rules: Optional[list[TagRule]] = None,
        delete_removed: Optional[bool] = None,
        delete_removed_dry_run: Optional[bool] = None,
        delete_removed_max_percent: Optional[int] = None,
        platforms: Optional[list[str]] = None,
        platform_mode: Optional[Literal["sparse", "rewrite"]] = None,
        mirror_referrers: Optional[bool] = None,
        referrer_artifact_types: Optional[list[str]] = None,
        max_bytes_per_sec: Optional[int] = None,
    ) -> Policy: ...
    def update_policy_async(
        self,
        id: str,
        *,
        remote_host: Optional[str] = None,
        remote_repository: Optional[str] = None,
        username: Optional[str] = None,
        password: Optional[str] = None,
        auth_token: Optional[str] = None,
        remote_ca: Optional[str] = None,
        skip_tls_verification: Optional[bool] = None,
        enabled: Optional[bool] = None,
        rules: Optional[list[TagRule]] = None,
        delete_removed: Optional[bool] = None,
        delete_removed_dry_run: Optional[bool] = None,
        delete_removed_max_percent: Optional[int] = None,
        platforms: Optional[list[str]] = None,
        platform_mode: Optional[Literal["sparse", "rewrite"]] = None,
        mirror_referrers: Optional[bool] = None,
        referrer_artifact_types: Optional[list[str]] = None,
        max_bytes_per_sec: Optional[int] = None,
    ) -> Awaitable[Policy]: ...
    def delete_policy(self, id: str) -> bool: ...
    def delete_policy_async(self, id: str) -> Awaitable[bool]: ...
    def add_push_policy(
        self,
        local_repository: str,
        *,
        remote_host: str,
        remote_repository: str,
        username: str = "",
        password: str = "",
        auth_token: str = "",
        remote_ca: Optional[str] = None,
        skip_tls_verification: bool = False,
        enabled: bool = True,
        rules: Optional[list[TagRule]] = None,
        tag_template: Optional[str] = None,
        initial_evaluation: Optional[bool] = None,
    ) -> PushPolicy:
        """Creates a push mirroring policy after checking that the credentials
        may push to the remote repository (which need not exist yet).
        ``initial_evaluation=True`` queues a push of every current tag the
        rules keep (a server runs them; with ``Mirror``, run one with
        ``push``)."""
    def add_push_policy_async(
        self,
        local_repository: str,
        *,
        remote_host: str,
        remote_repository: str,
        username: str = "",
        password: str = "",
        auth_token: str = "",
        remote_ca: Optional[str] = None,
        skip_tls_verification: bool = False,
        enabled: bool = True,
        rules: Optional[list[TagRule]] = None,
        tag_template: Optional[str] = None,
        initial_evaluation: Optional[bool] = None,
    ) -> Awaitable[PushPolicy]: ...
    def push_policies(self, local_repository: Optional[str] = None) -> list[PushPolicy]: ...
    def push_policies_async(
        self, local_repository: Optional[str] = None
    ) -> Awaitable[list[PushPolicy]]: ...
    def push_policy(self, id: str) -> PushPolicy: ...
    def push_policy_async(self, id: str) -> Awaitable[PushPolicy]: ...
    def update_push_policy(
        self,
        id: str,
        *,
        remote_host: Optional[str] = None,
        remote_repository: Optional[str] = None,
        username: Optional[str] = None,
        password: Optional[str] = None,
        auth_token: Optional[str] = None,
        remote_ca: Optional[str] = None,
        skip_tls_verification: Optional[bool] = None,
        enabled: Optional[bool] = None,
        rules: Optional[list[TagRule]] = None,
        tag_template: Optional[str] = None,
    ) -> PushPolicy:
        """Changes the given fields; a change of how the remote is reached is
        checked for push access first."""
    def update_push_policy_async(
        self,
        id: str,
        *,
        remote_host: Optional[str] = None,
        remote_repository: Optional[str] = None,
        username: Optional[str] = None,
        password: Optional[str] = None,
        auth_token: Optional[str] = None,
        remote_ca: Optional[str] = None,
        skip_tls_verification: Optional[bool] = None,
        enabled: Optional[bool] = None,
        rules: Optional[list[TagRule]] = None,
        tag_template: Optional[str] = None,
    ) -> Awaitable[PushPolicy]: ...
    def delete_push_policy(self, id: str) -> bool:
        """Deletes a push policy (what it pushed stays); whether it existed."""
    def delete_push_policy_async(self, id: str) -> Awaitable[bool]: ...
    def add_proxy_cache(
        self,
        *,
        namespace: str,
        remote_host: str,
        username: str = "",
        password: str = "",
        remote_ca: Optional[str] = None,
        skip_tls_verification: bool = False,
        tag_ttl_secs: Optional[int] = None,
        max_bytes: Optional[int] = None,
        anonymous_pull: bool = False,
        is_default: bool = False,
    ) -> ProxyCache:
        """Creates a proxy cache of ``namespace`` (one path component) for the
        registry at ``remote_host``. ``tag_ttl_secs``: 300 by default, at
        most a week. Refused (``kind == "conflict"``) when the namespace has
        a cache or holds repositories."""
    def add_proxy_cache_async(
        self,
        *,
        namespace: str,
        remote_host: str,
        username: str = "",
        password: str = "",
        remote_ca: Optional[str] = None,
        skip_tls_verification: bool = False,
        tag_ttl_secs: Optional[int] = None,
        max_bytes: Optional[int] = None,
        anonymous_pull: bool = False,
        is_default: bool = False,
    ) -> Awaitable[ProxyCache]: ...
    def proxy_caches(self) -> list[ProxyCache]: ...
    def proxy_caches_async(self) -> Awaitable[list[ProxyCache]]: ...
    def proxy_cache(self, namespace: str) -> ProxyCache: ...
    def proxy_cache_async(self, namespace: str) -> Awaitable[ProxyCache]: ...
    def update_proxy_cache(
        self,
        namespace: str,
        *,
        remote_host: Optional[str] = None,
        username: Optional[str] = None,
        password: Optional[str] = None,
        remote_ca: Optional[str] = None,
        skip_tls_verification: Optional[bool] = None,
        tag_ttl_secs: Optional[int] = None,
        max_bytes: Optional[int] = None,
        anonymous_pull: Optional[bool] = None,
        is_default: Optional[bool] = None,
    ) -> ProxyCache:
        """Changes the given fields (the namespace cannot change); a new
        remote host or user name drops the stored password unless one is
        given."""
    def update_proxy_cache_async(
        self,
        namespace: str,
        *,
        remote_host: Optional[str] = None,
        username: Optional[str] = None,
        password: Optional[str] = None,
        remote_ca: Optional[str] = None,
        skip_tls_verification: Optional[bool] = None,
        tag_ttl_secs: Optional[int] = None,
        max_bytes: Optional[int] = None,
        anonymous_pull: Optional[bool] = None,
        is_default: Optional[bool] = None,
    ) -> Awaitable[ProxyCache]: ...
    def delete_proxy_cache(self, namespace: str) -> bool:
        """Deletes a proxy cache (its cached repositories stay, no longer
        filled); whether it existed."""
    def delete_proxy_cache_async(self, namespace: str) -> Awaitable[bool]: ...
    def push(self, policy_id: str, tag: str) -> Job:
        """Runs one ``push_mirror_tag`` job now (the local ``tag`` through the
        push policy) and returns the finished job."""
    def push_async(self, policy_id: str, tag: str) -> Awaitable[Job]: ...
    def tags(self, repository: str) -> list[Tag]: ...
    def tags_async(self, repository: str) -> Awaitable[list[Tag]]: ...
    def tag_history(self, repository: str, tag: str) -> list[TagHistoryEntry]:
        """A tag's earlier values, newest first (at most 50). ``NotFoundError``
        for an unknown repository, or a tag with neither a current value nor
        a history."""
    def tag_history_async(
        self, repository: str, tag: str
    ) -> Awaitable[list[TagHistoryEntry]]: ...
    def jobs(
        self, action: Optional[str] = None, running: Optional[bool] = None, limit: int = 100
    ) -> list[Job]: ...
    def jobs_async(
        self, action: Optional[str] = None, running: Optional[bool] = None, limit: int = 100
    ) -> Awaitable[list[Job]]: ...
    def job(self, id: str) -> Job: ...
    def job_async(self, id: str) -> Awaitable[Job]: ...
    def cancel_job(self, id: str) -> Job: ...
    def cancel_job_async(self, id: str) -> Awaitable[Job]: ...

@final
class Mirror(_Engine):
    """The mirroring engine on a data directory, in this process."""

    def __new__(
        cls,
        data_dir: Union[str, os.PathLike[str]],
        *,
        remote_hosts_allow: list[str] = ...,
        forbid_private_remotes: bool = False,
    ) -> Mirror:
        """``remote_hosts_allow`` (host patterns such as ``registry.example.com``,
        ``*.example.com``, ``127.0.0.1:5001``; empty: any host) and
        ``forbid_private_remotes`` (refuse loopback, private and link-local
        addresses, after DNS and on redirects, unless named exactly in the
        allow-list) restrict which remote hosts are reached; a refused host
        raises ``InvalidPolicyError`` with ``field == "remoteHost"``."""
    @property
    def data_dir(self) -> pathlib.Path: ...
    def recover(self) -> list[Job]:
        """Requeues or errors jobs left running by a dead process and removes
        unfinished uploads; call when no other process uses the directory."""
    def apply_policies(
        self,
        path: Union[str, os.PathLike[str]],
        *,
        prune: bool = False,
        dry_run: bool = False,
    ) -> PolicyPlan:
        """Makes the repositories and policies match a policies file (YAML or
        TOML, as ``mirror-server apply`` reads it; secrets from the
        environment variables its ``passwordEnv``/``authTokenEnv`` name) and
        returns the plan, applied unless ``dry_run``. ``prune`` deletes the
        policies of the file's repositories that it does not list (never a
        repository or an image). An invalid file raises
        ``InvalidPolicyError`` whose ``field`` names the entry
        (``repositories[0].policies[1].remoteHost``) and changes nothing."""

@final
class Client(_Engine):
    """A client of a running ``mirror-server`` (``/api/v0``), HTTP Basic auth.
    ``poll``'s ``progress`` callback is not called (the server does not
    report byte counters)."""

    def __new__(
        cls, base_url: str, username: str = "", password: str = "", *, timeout: float = 60.0
    ) -> Client: ...
    @property
    def base_url(self) -> str: ...
    @property
    def username(self) -> str: ...

__all__ = [
    "AuthenticationError",
    "CanceledError",
    "Client",
    "DigestMismatchError",
    "InvalidPolicyError",
    "Job",
    "Mirror",
    "MirrorError",
    "MirroringStatus",
    "NotFoundError",
    "Policy",
    "ProxyCache",
    "PushPolicy",
    "Tag",
    "TagHistoryEntry",
    "TLSError",
    "UnreachableError",
    "__version__",
]

"""regmirror: mirror container images from remote registries.

``Mirror`` runs the mirroring engine in this process on a data directory;
``Client`` manages a running ``mirror-server`` with the same methods. Everything
is implemented in Rust (``regmirror._regmirror``); this package only
re-exports it. See ``__init__.pyi`` for every signature.
"""

from ._regmirror import (
    AuthenticationError,
    CanceledError,
    Client,
    DigestMismatchError,
    InvalidPolicyError,
    Job,
    Mirror,
    MirrorError,
    MirroringStatus,
    NotFoundError,
    Policy,
    ProxyCache,
    PushPolicy,
    Tag,
    TagHistoryEntry,
    TLSError,
    UnreachableError,
    __version__,
)

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

//! Splitting a `/v2/<rest>` path into an endpoint: repository names contain
//! `/`, so the endpoint is found from the end of the path. Pure: no IO.

/// A `/v2` endpoint, with the raw (unvalidated) repository name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    /// `/v2/_catalog`.
    Catalog,
    /// `/v2/<name>/manifests/<reference>`.
    Manifest {
        /// Repository.
        name: &'a str,
        /// Tag or digest.
        reference: &'a str,
    },
    /// `/v2/<name>/blobs/<digest>`.
    Blob {
        /// Repository.
        name: &'a str,
        /// Digest.
        digest: &'a str,
    },
    /// `/v2/<name>/blobs/uploads/` (start a push) and
    /// `/v2/<name>/blobs/uploads/<id>` (one upload session).
    Upload {
        /// Repository.
        name: &'a str,
        /// The session, when the path names one.
        id: Option<&'a str>,
    },
    /// `/v2/<name>/tags/list`.
    Tags {
        /// Repository.
        name: &'a str,
    },
    /// `/v2/<name>/referrers/<digest>`.
    Referrers {
        /// Repository.
        name: &'a str,
        /// Subject digest.
        digest: &'a str,
    },
    /// Anything else.
    Unknown,
}

/// Parses the part of the path after `/v2/`.
pub fn parse_route(rest: &str) -> Route<'_> {
    let rest = rest.trim_start_matches('/');
    if rest == "_catalog" {
        return Route::Catalog;
    }
    let mut parts = rest.rsplitn(3, '/');
    let (Some(last), Some(kind), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
        return Route::Unknown;
    };
    match (kind, last) {
        ("tags", "list") => Route::Tags { name },
        ("blobs", "uploads") => Route::Upload { name, id: None },
        ("uploads", id) if name.ends_with("/blobs") => Route::Upload {
            name: &name[..name.len() - "/blobs".len()],
            id: (!id.is_empty()).then_some(id),
        },
        (_, "") => Route::Unknown,
        ("manifests", reference) => Route::Manifest { name, reference },
        ("blobs", digest) => Route::Blob { name, digest },
        ("referrers", digest) => Route::Referrers { name, digest },
        _ => Route::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::Route::*;
    use super::*;

    fn check(path: &str, expected: Route) {
        assert_eq!(parse_route(path), expected, "{path}");
    }

    #[test]
    fn routes() {
        check("_catalog", Catalog);
        check(
            "a/b/manifests/v1",
            Manifest {
                name: "a/b",
                reference: "v1",
            },
        );
        check(
            "a/manifests/manifests/latest",
            Manifest {
                name: "a/manifests",
                reference: "latest",
            },
        );
        check(
            "a/b/c/blobs/sha256:ab",
            Blob {
                name: "a/b/c",
                digest: "sha256:ab",
            },
        );
        check("a/b/tags/list", Tags { name: "a/b" });
        check(
            "a/b/referrers/sha256:ab",
            Referrers {
                name: "a/b",
                digest: "sha256:ab",
            },
        );
        check(
            "a/b/blobs/uploads/",
            Upload {
                name: "a/b",
                id: None,
            },
        );
        check(
            "a/b/blobs/uploads",
            Upload {
                name: "a/b",
                id: None,
            },
        );
        check(
            "a/b/blobs/uploads/1234-abcd",
            Upload {
                name: "a/b",
                id: Some("1234-abcd"),
            },
        );
        check(
            "a/blobs/uploads/blobs/uploads/x",
            Upload {
                name: "a/blobs/uploads",
                id: Some("x"),
            },
        );
        check("a/b/manifests/", Unknown);
        check("a/b", Unknown);
        check("a/b/other/x", Unknown);
        check("", Unknown);
    }
}

//! Tag digests in bulk ([`RemoteRegistry::tag_digests`](crate::remote::RemoteRegistry::tag_digests)):
//! a remote that lists its tags *with their digests* spares a poll one
//! `HEAD` per tag.
//!
//! - DTR and regmirror: `GET /api/v0/repositories/{ns}/{repo}/tags`
//!   (DTR 2.7's `ListTag`: a JSON array of `{name, digest, …}`), paged
//!   with `pageStart`/`pageSize` and `X-Next-Page-Start`, with the
//!   endpoint's credentials sent up front (Basic, or the `authToken` as
//!   Bearer): the API sends no challenge.
//! - Docker Hub: `GET https://hub.docker.com/v2/namespaces/{ns}/repositories/{repo}/tags`
//!   (`HttpSettings::hub_api`)
//!   (`{next, results: [{name, digest, …}]}`, 100 a page), anonymously:
//!   the registry's credentials and tokens never go to that host, so only
//!   public repositories answer (a private one is `None`, and `HEAD`s).
//!
//! Every page goes through [`HttpRemote::send`] (retries, the remote
//! guard on every URL), is read within `max_tag_page_bytes`, and pages
//! are followed only forward (a `pageStart` past every name read, a Hub
//! `page` number that grows, on Hub's own host and path); the total is
//! capped at `max_tags`. `None` when the first page is not such an answer
//! (401/403/404/405 or any other status, a body that is not that JSON).

use reqwest::{Method, Url, header};

use super::{HttpRemote, header_str, url_for_message};
use crate::digest::Digest;
use crate::policy::is_docker_hub;
use crate::reference::RepositoryName;
use crate::remote::{BulkDigests, RemoteError};

/// The `scope` of DTR API requests: Basic credentials (or the token) up
/// front, no challenge answered.
pub(super) const DTR_API_SCOPE: &str = "api:dtr-tags";
/// The `scope` of Docker Hub API requests: anonymous.
pub(super) const HUB_API_SCOPE: &str = "api:hub-tags";

/// Whether `scope` is one of this module's (no 401 is answered there).
pub(super) fn is_api_scope(scope: &str) -> bool {
    scope == DTR_API_SCOPE || scope == HUB_API_SCOPE
}

/// Tags asked for per DTR page (regmirror's and DTR's maximum).
const DTR_PAGE_SIZE: usize = 1000;
/// Tags asked for per Docker Hub page (Hub's maximum).
const HUB_PAGE_SIZE: usize = 100;

/// One listed tag (DTR's `ListTag`, a Hub tag): only what is used.
#[derive(serde::Deserialize)]
struct Listed {
    name: String,
    #[serde(default)]
    digest: Option<String>,
}

/// A Docker Hub page.
#[derive(serde::Deserialize)]
struct HubPage {
    #[serde(default)]
    next: Option<String>,
    results: Vec<Listed>,
}

/// What went wrong on a page: on the first, the API is taken as absent.
enum PageError {
    /// Not this API's answer.
    NotApi,
    /// A failure (limits, transport, guard).
    Remote(RemoteError),
}

impl From<RemoteError> for PageError {
    fn from(e: RemoteError) -> Self {
        PageError::Remote(e)
    }
}

impl HttpRemote {
    /// See [`crate::remote::RemoteRegistry::tag_digests`].
    pub(super) async fn bulk_tag_digests(
        &self,
        repo: &RepositoryName,
    ) -> Result<Option<BulkDigests>, RemoteError> {
        if is_docker_hub(&self.host) {
            self.hub_tag_digests(repo).await
        } else {
            self.dtr_tag_digests(repo).await
        }
    }

    async fn dtr_tag_digests(
        &self,
        repo: &RepositoryName,
    ) -> Result<Option<BulkDigests>, RemoteError> {
        // DTR repositories are `namespace/name`, nothing else.
        let Some((ns, name)) = repo.as_str().split_once('/') else {
            return Ok(None);
        };
        if name.contains('/') {
            return Ok(None);
        }
        let base = self.url(&format!("/api/v0/repositories/{ns}/{name}/tags"));
        let mut bulk = BulkDigests {
            api: "DTR",
            ..BulkDigests::default()
        };
        let mut start: Option<String> = None;
        loop {
            let mut url = base.clone();
            url.query_pairs_mut()
                .append_pair("pageSize", &DTR_PAGE_SIZE.to_string());
            if let Some(s) = &start {
                url.query_pairs_mut().append_pair("pageStart", s);
            }
            let page = self.page(repo, &url, DTR_API_SCOPE).await;
            let (headers, body) = match page {
                Ok(p) => p,
                Err(PageError::NotApi) if bulk.requests == 0 => return Ok(None),
                Err(PageError::NotApi) => return Err(not_api(&url)),
                Err(PageError::Remote(e)) => return Err(e),
            };
            bulk.requests += 1;
            if bulk.requests > super::MAX_TAG_PAGES {
                return Err(too_many_pages(&url));
            }
            let Ok(listed) = serde_json::from_slice::<Vec<Listed>>(&body) else {
                if bulk.requests == 1 {
                    return Ok(None);
                }
                return Err(not_api(&url));
            };
            let last = listed.iter().map(|t| t.name.clone()).max();
            self.add(&mut bulk, listed, repo, &url)?;
            let next =
                header_str(&headers, crate::headers::NEXT_PAGE_HEADER).filter(|n| !n.is_empty());
            match (next, last) {
                (None, _) => break,
                // Only forward: past every name of this page.
                (Some(n), Some(last)) if n > last => start = Some(n),
                (Some(_), _) => {
                    return Err(RemoteError::Protocol {
                        url: url_for_message(&url),
                        reason: format!(
                            "{} does not lead past the page's tags",
                            crate::headers::NEXT_PAGE_HEADER
                        ),
                    });
                }
            }
        }
        Ok(Some(bulk))
    }

    async fn hub_tag_digests(
        &self,
        repo: &RepositoryName,
    ) -> Result<Option<BulkDigests>, RemoteError> {
        let (ns, name) = match repo.as_str().split_once('/') {
            Some((ns, name)) if !name.contains('/') => (ns, name),
            Some(_) => return Ok(None),
            None => ("library", repo.as_str()),
        };
        let Ok(hub) = Url::parse(&self.hub_api) else {
            return Ok(None);
        };
        let mut url = hub.clone();
        url.set_path(&format!("/v2/namespaces/{ns}/repositories/{name}/tags"));
        url.query_pairs_mut()
            .append_pair("page_size", &HUB_PAGE_SIZE.to_string());
        let path = url.path().to_string();
        let mut bulk = BulkDigests {
            api: "Docker Hub",
            ..BulkDigests::default()
        };
        let mut page_number = 1u64;
        loop {
            let (_, body) = match self.page(repo, &url, HUB_API_SCOPE).await {
                Ok(p) => p,
                Err(PageError::NotApi) if bulk.requests == 0 => return Ok(None),
                Err(PageError::NotApi) => return Err(not_api(&url)),
                Err(PageError::Remote(e)) => return Err(e),
            };
            bulk.requests += 1;
            if bulk.requests > super::MAX_TAG_PAGES {
                return Err(too_many_pages(&url));
            }
            let Ok(page) = serde_json::from_slice::<HubPage>(&body) else {
                if bulk.requests == 1 {
                    return Ok(None);
                }
                return Err(not_api(&url));
            };
            self.add(&mut bulk, page.results, repo, &url)?;
            let Some(next) = page.next.filter(|n| !n.is_empty()) else {
                break;
            };
            // Only forward, and only on Hub's own host and path.
            let next = url
                .join(&next)
                .ok()
                .filter(|n| n.origin() == hub.origin() && n.path() == path);
            let number = next.as_ref().and_then(|n| {
                n.query_pairs()
                    .find(|(k, _)| k == "page")
                    .and_then(|(_, v)| v.parse::<u64>().ok())
            });
            match (next, number) {
                (Some(n), Some(p)) if p > page_number => {
                    page_number = p;
                    url = n;
                }
                _ => {
                    return Err(RemoteError::Protocol {
                        url: url_for_message(&url),
                        reason: "the next page is not a later page of the same list".into(),
                    });
                }
            }
        }
        Ok(Some(bulk))
    }

    /// One page: its headers and capped body, or [`PageError::NotApi`]
    /// when the answer is not a success.
    async fn page(
        &self,
        repo: &RepositoryName,
        url: &Url,
        scope: &str,
    ) -> Result<(header::HeaderMap, Vec<u8>), PageError> {
        let accept = [(header::ACCEPT, "application/json".to_string())];
        let resp = self
            .send(Method::GET, url.clone(), scope, repo.as_str(), &accept)
            .await?;
        if !resp.status().is_success() {
            return Err(PageError::NotApi);
        }
        let headers = resp.headers().clone();
        let body = self
            .read_capped(
                resp,
                url,
                &format!("the tag API page of {repo}"),
                self.limits.max_tag_page_bytes,
                "remote_limits.max_tag_page_bytes",
            )
            .await?;
        Ok((headers, body))
    }

    /// Adds a page's tags (those with a valid digest) to `bulk`, within
    /// `max_tags`.
    fn add(
        &self,
        bulk: &mut BulkDigests,
        listed: Vec<Listed>,
        repo: &RepositoryName,
        url: &Url,
    ) -> Result<(), RemoteError> {
        bulk.listed += listed.len();
        if bulk.listed > self.limits.max_tags {
            return Err(RemoteError::LimitExceeded {
                what: format!("the tag API of {repo} at {}", url_for_message(url)),
                limit: format!("more than {} tags", self.limits.max_tags),
                setting: "remote_limits.max_tags",
            });
        }
        for tag in listed {
            if let Some(d) = tag.digest.as_deref().and_then(|d| Digest::parse(d).ok()) {
                bulk.digests.insert(tag.name, d);
            }
        }
        Ok(())
    }
}

fn not_api(url: &Url) -> RemoteError {
    RemoteError::Protocol {
        url: url_for_message(url),
        reason: "a later page of the tag API is not a tag list".into(),
    }
}

fn too_many_pages(url: &Url) -> RemoteError {
    RemoteError::Protocol {
        url: url_for_message(url),
        reason: format!("the tag API goes on past {} pages", super::MAX_TAG_PAGES),
    }
}

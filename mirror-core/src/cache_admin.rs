//! [`Mirror`]'s proxy cache calls: list, create, change and delete the
//! caches ([`crate::proxy_cache`]) that [`crate::pull_through`] serves.

use crate::mirror::{Mirror, MirrorError};
use crate::proxy_cache::{ProxyCache, ProxyCacheForm};
use crate::reference::RepositoryName;
use crate::store::StoreError;

impl Mirror {
    /// Every proxy cache, by namespace (passwords included: for the engine
    /// only; show [`ProxyCache::view`]).
    pub async fn proxy_caches(&self) -> Result<Vec<ProxyCache>, MirrorError> {
        Ok(self.inner.stores.proxy_caches.proxy_caches().await?)
    }

    /// The proxy cache of `namespace`.
    pub async fn proxy_cache(&self, namespace: &str) -> Result<ProxyCache, MirrorError> {
        self.inner
            .stores
            .proxy_caches
            .proxy_cache(namespace)
            .await?
            .ok_or_else(|| MirrorError::NotFound {
                what: format!("proxy cache {namespace}"),
            })
    }

    /// Creates a proxy cache from `form` (`namespace` and `remoteHost`
    /// required). Refused when the namespace already has a cache, or holds
    /// repositories (they would start being served from the remote), or
    /// when this server's remote-host guard refuses the remote.
    pub async fn add_proxy_cache(&self, form: &ProxyCacheForm) -> Result<ProxyCache, MirrorError> {
        let cache = form.create(crate::job::now())?;
        self.check_remote(&cache)?;
        let held = self.inner.stores.repos.repositories().await?;
        if let Some(r) = held
            .iter()
            .find(|r| r.name.owner_namespace() == cache.namespace)
        {
            return Err(MirrorError::Conflict {
                reason: format!(
                    "namespace {} holds repositories ({}); a proxy cache needs a namespace of its own",
                    cache.namespace, r.name
                ),
            });
        }
        match self
            .inner
            .stores
            .proxy_caches
            .insert_proxy_cache(&cache)
            .await
        {
            Err(StoreError::Conflict { .. }) => {
                return Err(MirrorError::Conflict {
                    reason: format!("namespace {} already has a proxy cache", cache.namespace),
                });
            }
            other => other?,
        }
        self.inner.pull_through.invalidate();
        tracing::info!(namespace = %cache.namespace, remote = %cache.host, "proxy cache created");
        Ok(cache)
    }

    /// Changes the proxy cache of `namespace` by `form`.
    pub async fn update_proxy_cache(
        &self,
        namespace: &str,
        form: &ProxyCacheForm,
    ) -> Result<ProxyCache, MirrorError> {
        let current = self.proxy_cache(namespace).await?;
        let next = form.apply(&current, crate::job::now())?;
        self.check_remote(&next)?;
        if !self
            .inner
            .stores
            .proxy_caches
            .update_proxy_cache(&next)
            .await?
        {
            return Err(MirrorError::NotFound {
                what: format!("proxy cache {namespace}"),
            });
        }
        self.inner.pull_through.invalidate();
        Ok(next)
    }

    /// Deletes the proxy cache of `namespace`; its repositories stay (as
    /// ordinary repositories, no longer filled). Whether it existed.
    pub async fn delete_proxy_cache(&self, namespace: &str) -> Result<bool, MirrorError> {
        let gone = self
            .inner
            .stores
            .proxy_caches
            .delete_proxy_cache(namespace)
            .await?;
        self.inner.pull_through.invalidate();
        Ok(gone)
    }

    /// Makes the caches of a configuration file (`[[proxy_cache]]`) exist
    /// as written: each form creates its namespace's cache or changes it.
    /// Caches the file does not name are left alone.
    pub async fn apply_proxy_caches(
        &self,
        forms: &[ProxyCacheForm],
    ) -> Result<Vec<ProxyCache>, MirrorError> {
        let mut out = Vec::with_capacity(forms.len());
        for (i, form) in forms.iter().enumerate() {
            let at = |e: MirrorError| match e {
                MirrorError::InvalidPolicy(mut p) => {
                    p.field = format!("proxy_cache[{i}].{}", p.field);
                    MirrorError::InvalidPolicy(p)
                }
                e => e,
            };
            let ns = form.namespace.as_deref().unwrap_or_default();
            let existing = self.inner.stores.proxy_caches.proxy_cache(ns).await?;
            let cache = match existing {
                Some(_) => self.update_proxy_cache(ns, form).await.map_err(at)?,
                None => self.add_proxy_cache(form).await.map_err(at)?,
            };
            out.push(cache);
        }
        Ok(out)
    }

    /// Whether `name` is under a proxy cache's namespace.
    pub async fn is_cached_repository(&self, name: &RepositoryName) -> Result<bool, MirrorError> {
        Ok(self.inner.pull_through.cache_of(name).await?.is_some())
    }

    /// Refuses a remote this server's guard refuses (a client for it is
    /// built, which checks the URL; nothing is sent).
    fn check_remote(&self, cache: &ProxyCache) -> Result<(), MirrorError> {
        let probe = RepositoryName::parse("library/probe").expect("a valid name");
        self.inner
            .connector
            .connect_interactive(&cache.endpoint(probe))?;
        Ok(())
    }
}

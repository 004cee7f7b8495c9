//! [`Organizations`]: DTR's organizations and teams (as UCP's eNZi kept
//! them): who may see and change an organization, its members and teams,
//! and what teams are granted on repositories and whole namespaces.
//!
//! Rules, written once here (the HTTP handlers only translate):
//!
//! - An organization's name is a namespace: unique among accounts and
//!   organizations, with the user-name grammar. Server administrators
//!   create and delete organizations.
//! - An organization is managed (members, teams, team members, namespace
//!   grants) by server administrators and its own administrators
//!   (members with `isAdmin`); its members and teams are visible to its
//!   members and to server administrators, and hidden (404) from others.
//! - A team's member is an active account; joining a team joins the
//!   organization; leaving the organization leaves its teams.
//! - A team may be granted access only inside its organization's
//!   namespace: a repository there (by the repository's administrators)
//!   or the whole namespace (by the organization's administrators).

use std::sync::Arc;

use chrono::Utc;
use mirror_core::RepositoryName;

use crate::accounts::{Account, AccountError, Accounts, validate_username};
use crate::store::records::{AccessLevel, GrantTarget, OrgMember, Organization, Team};
use crate::store::{DbError, ServerStores};

/// Why an organization operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OrgError {
    /// A field of the request is invalid.
    #[error("{field}: {reason}")]
    Invalid {
        /// The API field name.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The name is taken by an account or an organization.
    #[error("account {0:?} already exists")]
    Exists(String),
    /// No such organization (or not visible to the caller).
    #[error("no organization named {0:?}")]
    NoSuchOrg(String),
    /// No such account.
    #[error("no account named {0:?}")]
    NoSuchAccount(String),
    /// No such team in the organization (or not visible to the caller).
    #[error("no team named {team:?} in organization {org:?}")]
    NoSuchTeam {
        /// The organization.
        org: String,
        /// The team.
        team: String,
    },
    /// The caller may see but not change it.
    #[error("{0}")]
    NotAuthorized(String),
    /// An account operation failed.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What a caller may do with one organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OrgRole {
    /// A member: sees members and teams.
    Member,
    /// Manages members, teams and namespace grants.
    Admin,
}

/// Organizations, teams and team grants, on the server's stores.
pub struct Organizations {
    stores: ServerStores,
    accounts: Arc<Accounts>,
}

/// The longest display name or team description kept.
const MAX_TEXT: usize = 255;

fn check_text(field: &'static str, value: &str) -> Result<(), OrgError> {
    if value.chars().count() > MAX_TEXT {
        return Err(OrgError::Invalid {
            field,
            reason: format!("longer than {MAX_TEXT} characters"),
        });
    }
    Ok(())
}

/// Team names follow the user-name grammar (they appear in URLs).
fn check_team_name(name: &str) -> Result<(), OrgError> {
    validate_username(name).map_err(|_| OrgError::Invalid {
        field: "name",
        reason: format!(
            "{:?} is not a valid team name: use lower-case letters and digits, separated by '.', '_', '__' or '-'",
            name.chars().take(100).collect::<String>()
        ),
    })
}

impl Organizations {
    /// Organizations on `stores`; accounts from `accounts`.
    pub fn new(stores: ServerStores, accounts: Arc<Accounts>) -> Self {
        Organizations { stores, accounts }
    }

    /// Creates an organization (server administrators).
    pub async fn create(&self, name: &str, full_name: &str) -> Result<Organization, OrgError> {
        validate_username(name)?;
        check_text("fullName", full_name)?;
        if self.accounts.get(name).await?.is_some() {
            return Err(OrgError::Exists(name.into()));
        }
        let org = Organization {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.into(),
            full_name: full_name.into(),
            created_at: Utc::now(),
        };
        if !self.changes(self.stores.orgs.insert_org(&org)).await? {
            return Err(OrgError::Exists(name.into()));
        }
        Ok(org)
    }

    /// The organization `name`, if any.
    pub async fn get(&self, name: &str) -> Result<Option<Organization>, OrgError> {
        Ok(self.stores.orgs.org(name).await?)
    }

    /// Every organization.
    pub async fn list(&self) -> Result<Vec<Organization>, OrgError> {
        Ok(self.stores.orgs.orgs().await?)
    }

    /// Changes an organization's display name (its administrators;
    /// `None` keeps it).
    pub async fn update(
        &self,
        caller: &Account,
        name: &str,
        full_name: Option<&str>,
    ) -> Result<Organization, OrgError> {
        self.require(caller, name, OrgRole::Admin).await?;
        if let Some(full_name) = full_name {
            check_text("fullName", full_name)?;
            self.changes(self.stores.orgs.update_org(name, full_name))
                .await?;
        }
        self.get(name)
            .await?
            .ok_or_else(|| OrgError::NoSuchOrg(name.into()))
    }

    /// Deletes an organization with its teams and their grants (server
    /// administrators). Its repositories stay (an administrator's to
    /// delete).
    pub async fn delete(&self, name: &str) -> Result<(), OrgError> {
        if !self.changes(self.stores.orgs.delete_org(name)).await? {
            return Err(OrgError::NoSuchOrg(name.into()));
        }
        Ok(())
    }

    /// The caller's role in `org`: `None` when not a member (server
    /// administrators are `Admin` everywhere). Fails when there is no
    /// such organization.
    pub async fn role(&self, caller: &Account, org: &str) -> Result<Option<OrgRole>, OrgError> {
        if self.get(org).await?.is_none() {
            return Err(OrgError::NoSuchOrg(org.into()));
        }
        if caller.is_admin {
            return Ok(Some(OrgRole::Admin));
        }
        let mine = self.stores.orgs.orgs_of(&caller.name).await?;
        Ok(mine.iter().find(|m| m.name == org).map(|m| {
            if m.is_admin {
                OrgRole::Admin
            } else {
                OrgRole::Member
            }
        }))
    }

    /// Checks the caller holds `need` in `org`: a non-member is told the
    /// organization's members and teams do not exist; a member who may
    /// not change them is told so.
    pub async fn require(
        &self,
        caller: &Account,
        org: &str,
        need: OrgRole,
    ) -> Result<(), OrgError> {
        match self.role(caller, org).await? {
            None => Err(OrgError::NoSuchOrg(org.into())),
            Some(role) if role < need => Err(OrgError::NotAuthorized(format!(
                "only administrators of organization {org:?} may change it"
            ))),
            Some(_) => Ok(()),
        }
    }

    /// The organizations `user` belongs to (`OrgMember::name` is the
    /// organization's).
    pub async fn memberships(&self, user: &str) -> Result<Vec<OrgMember>, OrgError> {
        Ok(self.stores.orgs.orgs_of(user).await?)
    }

    /// The members of `org` (members and server administrators see them).
    pub async fn members(&self, caller: &Account, org: &str) -> Result<Vec<OrgMember>, OrgError> {
        self.require(caller, org, OrgRole::Member).await?;
        Ok(self.stores.orgs.org_members(org).await?)
    }

    /// Adds `user` to `org` or changes their admin flag (`None` keeps
    /// a member's flag; a new member is not an administrator).
    pub async fn set_member(
        &self,
        caller: &Account,
        org: &str,
        user: &str,
        is_admin: Option<bool>,
    ) -> Result<OrgMember, OrgError> {
        self.require(caller, org, OrgRole::Admin).await?;
        self.user(user).await?;
        let is_admin = match is_admin {
            Some(flag) => flag,
            None => self
                .stores
                .orgs
                .org_members(org)
                .await?
                .into_iter()
                .any(|m| m.name == user && m.is_admin),
        };
        self.changes(self.stores.orgs.set_org_member(org, user, is_admin))
            .await?;
        Ok(OrgMember {
            name: user.into(),
            is_admin,
        })
    }

    /// Removes `user` from `org` and its teams.
    pub async fn remove_member(
        &self,
        caller: &Account,
        org: &str,
        user: &str,
    ) -> Result<(), OrgError> {
        self.require(caller, org, OrgRole::Admin).await?;
        if !self
            .changes(self.stores.orgs.remove_org_member(org, user))
            .await?
        {
            return Err(OrgError::NoSuchAccount(user.into()));
        }
        Ok(())
    }

    /// The teams of `org`.
    pub async fn teams(&self, caller: &Account, org: &str) -> Result<Vec<Team>, OrgError> {
        self.require(caller, org, OrgRole::Member).await?;
        Ok(self.stores.orgs.teams(org).await?)
    }

    /// The team `team` of `org`, for a caller holding `need` in `org`.
    pub async fn team(
        &self,
        caller: &Account,
        org: &str,
        team: &str,
        need: OrgRole,
    ) -> Result<Team, OrgError> {
        self.require(caller, org, need).await?;
        self.find_team(org, team).await
    }

    async fn find_team(&self, org: &str, team: &str) -> Result<Team, OrgError> {
        self.stores
            .orgs
            .team(org, team)
            .await?
            .ok_or_else(|| OrgError::NoSuchTeam {
                org: org.into(),
                team: team.into(),
            })
    }

    /// Creates a team in `org`.
    pub async fn create_team(
        &self,
        caller: &Account,
        org: &str,
        name: &str,
        description: &str,
    ) -> Result<Team, OrgError> {
        self.require(caller, org, OrgRole::Admin).await?;
        check_team_name(name)?;
        check_text("description", description)?;
        let team = Team {
            id: uuid::Uuid::new_v4().to_string(),
            org: org.into(),
            name: name.into(),
            description: description.into(),
            members: 0,
        };
        if !self.changes(self.stores.orgs.insert_team(&team)).await? {
            return Err(OrgError::Invalid {
                field: "name",
                reason: format!("organization {org:?} already has a team named {name:?}"),
            });
        }
        Ok(team)
    }

    /// Renames a team or changes its description (`None` keeps each).
    pub async fn update_team(
        &self,
        caller: &Account,
        org: &str,
        team: &str,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<Team, OrgError> {
        let mut t = self.team(caller, org, team, OrgRole::Admin).await?;
        if let Some(name) = name.filter(|n| *n != t.name) {
            check_team_name(name)?;
            if self.stores.orgs.team(org, name).await?.is_some() {
                return Err(OrgError::Invalid {
                    field: "name",
                    reason: format!("organization {org:?} already has a team named {name:?}"),
                });
            }
            t.name = name.into();
        }
        if let Some(description) = description {
            check_text("description", description)?;
            t.description = description.into();
        }
        self.changes(self.stores.orgs.update_team(&t)).await?;
        Ok(t)
    }

    /// Deletes a team with its memberships and grants.
    pub async fn delete_team(
        &self,
        caller: &Account,
        org: &str,
        team: &str,
    ) -> Result<(), OrgError> {
        let t = self.team(caller, org, team, OrgRole::Admin).await?;
        self.changes(self.stores.orgs.delete_team(&t.id)).await?;
        Ok(())
    }

    /// The members of a team.
    pub async fn team_members(
        &self,
        caller: &Account,
        org: &str,
        team: &str,
    ) -> Result<Vec<String>, OrgError> {
        let t = self.team(caller, org, team, OrgRole::Member).await?;
        Ok(self.stores.orgs.team_members(&t.id).await?)
    }

    /// Adds `user` to a team (and to the organization).
    pub async fn add_team_member(
        &self,
        caller: &Account,
        org: &str,
        team: &str,
        user: &str,
    ) -> Result<(), OrgError> {
        let t = self.team(caller, org, team, OrgRole::Admin).await?;
        self.user(user).await?;
        Ok(self
            .changes(self.stores.orgs.add_team_member(&t, user))
            .await?)
    }

    /// Removes `user` from a team.
    pub async fn remove_team_member(
        &self,
        caller: &Account,
        org: &str,
        team: &str,
        user: &str,
    ) -> Result<(), OrgError> {
        let t = self.team(caller, org, team, OrgRole::Admin).await?;
        if !self
            .changes(self.stores.orgs.remove_team_member(&t.id, user))
            .await?
        {
            return Err(OrgError::NoSuchAccount(user.into()));
        }
        Ok(())
    }

    /// What a team is granted (members of its organization see it).
    pub async fn team_access(
        &self,
        caller: &Account,
        org: &str,
        team: &str,
    ) -> Result<(Team, Vec<(GrantTarget, AccessLevel)>), OrgError> {
        let t = self.team(caller, org, team, OrgRole::Member).await?;
        let access = self.stores.orgs.team_access_of(&t.id).await?;
        Ok((t, access))
    }

    /// The team `team` of the organization owning `repo`, for a grant on
    /// `repo` (the caller's `admin` on the repository is the handler's to
    /// check, as for user grants).
    pub async fn repository_team(
        &self,
        repo: &RepositoryName,
        team: &str,
    ) -> Result<Team, OrgError> {
        let org = repo.owner_namespace();
        if self.get(org).await?.is_none() {
            return Err(OrgError::Invalid {
                field: "team",
                reason: format!(
                    "repository {repo} is not in an organization's namespace; only organizations have teams"
                ),
            });
        }
        self.find_team(org, team).await
    }

    /// Grants `level` on `target` to a team.
    pub async fn set_access(
        &self,
        team: &Team,
        target: &GrantTarget,
        level: AccessLevel,
    ) -> Result<(), OrgError> {
        Ok(self
            .changes(self.stores.orgs.set_team_access(&team.id, target, level))
            .await?)
    }

    /// Removes a team's level on `target`; whether it had one.
    pub async fn remove_access(&self, team: &Team, target: &GrantTarget) -> Result<bool, OrgError> {
        Ok(self
            .changes(self.stores.orgs.remove_team_access(&team.id, target))
            .await?)
    }

    /// Every team's level on `target`.
    pub async fn access_on(
        &self,
        target: &GrantTarget,
    ) -> Result<Vec<(Team, AccessLevel)>, OrgError> {
        Ok(self.stores.orgs.team_access_on(target).await?)
    }

    /// Forgets every team's level on a deleted repository.
    pub async fn forget_repository(&self, repo: &RepositoryName) -> Result<(), OrgError> {
        let target = GrantTarget::Repository(repo.as_str().into());
        Ok(self
            .changes(self.stores.orgs.remove_team_access_on(&target))
            .await?)
    }

    /// Awaits `write`, a change to organizations, teams or their grants,
    /// then has every recent access answer forgotten (even if the write
    /// failed: it may have happened).
    async fn changes<T>(&self, write: impl std::future::Future<Output = T>) -> T {
        let done = write.await;
        self.accounts.access_changed();
        done
    }

    /// The active account `name`.
    async fn user(&self, name: &str) -> Result<Account, OrgError> {
        match self.accounts.get(name).await? {
            Some(a) if a.is_active => Ok(a),
            _ => Err(OrgError::NoSuchAccount(name.into())),
        }
    }
}

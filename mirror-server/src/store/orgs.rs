//! [`OrgStore`] on any backend that runs the shared statements
//! ([`Exec`]): organizations, their members and teams, teams' access
//! levels, and the levels an account holds through all of them.

use async_trait::async_trait;

use super::exec::{Exec, params};
use super::records::{AccessLevel, AccessMap, GrantTarget, OrgMember, Organization, Team};
use super::{DbError, OrgStore, rows, sql};

fn text(r: &dyn rows::Row) -> rows::Field<String> {
    r.text(0)
}

#[async_trait]
impl<T: Exec> OrgStore for T {
    async fn insert_org(&self, org: &Organization) -> Result<bool, DbError> {
        let p = params![
            org.name.as_str(),
            org.id.as_str(),
            org.full_name.as_str(),
            org.created_at
        ];
        Ok(self
            .exec("creating an organization", sql::INSERT_ORG, p)
            .await?
            > 0)
    }

    async fn org(&self, name: &str) -> Result<Option<Organization>, DbError> {
        self.query_one(
            "reading an organization",
            sql::ORG,
            params![name],
            rows::organization,
        )
        .await
    }

    async fn orgs(&self) -> Result<Vec<Organization>, DbError> {
        self.query(
            "listing organizations",
            sql::ORGS,
            params![],
            rows::organization,
        )
        .await
    }

    async fn update_org(&self, name: &str, full_name: &str) -> Result<bool, DbError> {
        let p = params![full_name, name];
        Ok(self
            .exec("changing an organization", sql::UPDATE_ORG, p)
            .await?
            > 0)
    }

    async fn delete_org(&self, name: &str) -> Result<bool, DbError> {
        let n = self
            .exec("deleting an organization", sql::DELETE_ORG, params![name])
            .await?;
        Ok(n > 0)
    }

    async fn org_members(&self, org: &str) -> Result<Vec<OrgMember>, DbError> {
        self.query(
            "listing members",
            sql::ORG_MEMBERS,
            params![org],
            rows::org_member,
        )
        .await
    }

    async fn orgs_of(&self, user: &str) -> Result<Vec<OrgMember>, DbError> {
        self.query(
            "listing memberships",
            sql::ORGS_OF,
            params![user],
            rows::org_member,
        )
        .await
    }

    async fn set_org_member(&self, org: &str, user: &str, is_admin: bool) -> Result<(), DbError> {
        let p = params![org, user, is_admin];
        self.exec("saving a member", sql::SET_ORG_MEMBER, p)
            .await
            .map(drop)
    }

    async fn remove_org_member(&self, org: &str, user: &str) -> Result<bool, DbError> {
        const CTX: &str = "removing a member";
        self.exec(CTX, sql::REMOVE_FROM_ORG_TEAMS, params![org, user])
            .await?;
        Ok(self
            .exec(CTX, sql::REMOVE_ORG_MEMBER, params![org, user])
            .await?
            > 0)
    }

    async fn teams(&self, org: &str) -> Result<Vec<Team>, DbError> {
        self.query("listing teams", sql::TEAMS, params![org], rows::team)
            .await
    }

    async fn team(&self, org: &str, name: &str) -> Result<Option<Team>, DbError> {
        self.query_one("reading a team", sql::TEAM, params![org, name], rows::team)
            .await
    }

    async fn insert_team(&self, team: &Team) -> Result<bool, DbError> {
        let p = params![
            team.id.as_str(),
            team.org.as_str(),
            team.name.as_str(),
            team.description.as_str(),
            chrono::Utc::now()
        ];
        Ok(self.exec("creating a team", sql::INSERT_TEAM, p).await? > 0)
    }

    async fn update_team(&self, team: &Team) -> Result<bool, DbError> {
        let p = params![
            team.name.as_str(),
            team.description.as_str(),
            team.id.as_str()
        ];
        Ok(self.exec("changing a team", sql::UPDATE_TEAM, p).await? > 0)
    }

    async fn delete_team(&self, team_id: &str) -> Result<bool, DbError> {
        let n = self
            .exec("deleting a team", sql::DELETE_TEAM, params![team_id])
            .await?;
        Ok(n > 0)
    }

    async fn team_members(&self, team_id: &str) -> Result<Vec<String>, DbError> {
        self.query(
            "listing a team's members",
            sql::TEAM_MEMBERS,
            params![team_id],
            text,
        )
        .await
    }

    async fn add_team_member(&self, team: &Team, user: &str) -> Result<(), DbError> {
        const CTX: &str = "adding a team member";
        let p = params![team.org.as_str(), user, false];
        self.exec(CTX, sql::ENSURE_ORG_MEMBER, p).await?;
        self.exec(CTX, sql::ADD_TEAM_MEMBER, params![team.id.as_str(), user])
            .await
            .map(drop)
    }

    async fn remove_team_member(&self, team_id: &str, user: &str) -> Result<bool, DbError> {
        let p = params![team_id, user];
        Ok(self
            .exec("removing a team member", sql::REMOVE_TEAM_MEMBER, p)
            .await?
            > 0)
    }

    async fn set_team_access(
        &self,
        team_id: &str,
        target: &GrantTarget,
        level: AccessLevel,
    ) -> Result<(), DbError> {
        let p = params![team_id, target.kind(), target.name(), level.as_str()];
        self.exec("saving a team's access", sql::SET_TEAM_ACCESS, p)
            .await
            .map(drop)
    }

    async fn remove_team_access(
        &self,
        team_id: &str,
        target: &GrantTarget,
    ) -> Result<bool, DbError> {
        let p = params![team_id, target.kind(), target.name()];
        Ok(self
            .exec("removing a team's access", sql::REMOVE_TEAM_ACCESS, p)
            .await?
            > 0)
    }

    async fn team_access_on(
        &self,
        target: &GrantTarget,
    ) -> Result<Vec<(Team, AccessLevel)>, DbError> {
        let p = params![target.kind(), target.name()];
        let rows = self
            .query(
                "listing teams' access",
                sql::TEAM_ACCESS_ON,
                p,
                rows::team_level,
            )
            .await?;
        Ok(rows.into_iter().flatten().collect())
    }

    async fn team_access_of(
        &self,
        team_id: &str,
    ) -> Result<Vec<(GrantTarget, AccessLevel)>, DbError> {
        let p = params![team_id];
        let rows = self
            .query(
                "listing a team's access",
                sql::TEAM_ACCESS_OF,
                p,
                rows::target_level,
            )
            .await?;
        Ok(rows.into_iter().flatten().collect())
    }

    async fn remove_team_access_on(&self, target: &GrantTarget) -> Result<(), DbError> {
        let p = params![target.kind(), target.name()];
        self.exec("removing teams' access", sql::REMOVE_TEAM_ACCESS_ON, p)
            .await
            .map(drop)
    }

    async fn levels(
        &self,
        user: &str,
        repo: &str,
        namespace: &str,
    ) -> Result<Option<AccessLevel>, DbError> {
        let p = params![user, repo, namespace];
        let levels = self
            .query("reading access levels", sql::LEVELS, p, rows::level)
            .await?;
        Ok(levels.into_iter().flatten().max())
    }

    async fn access_map(&self, user: &str) -> Result<AccessMap, DbError> {
        let rows = self
            .query(
                "reading access levels",
                sql::ACCESS_MAP,
                params![user],
                rows::target_level,
            )
            .await?;
        let mut map = AccessMap::default();
        for (target, level) in rows.into_iter().flatten() {
            map.add(target, level);
        }
        Ok(map)
    }
}

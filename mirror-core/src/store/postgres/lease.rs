//! [`LeaseStore`] on PostgreSQL: one row per leased policy in
//! `policy_leases`, taken by a single upsert (so two replicas asking at
//! once cannot both win: the second waits for the first's row and then
//! sees it held).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{PgStore, get};
use crate::store::{LeaseStore, StoreError};

#[async_trait]
impl LeaseStore for PgStore {
    async fn lease_policy(
        &self,
        policy_id: &str,
        job_id: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        // Taken when free, expired, or already this job's (renewed).
        let n = self
            .execute(
                "leasing a policy",
                "INSERT INTO policy_leases (policy_id, job_id, until) VALUES ($1, $2, $3)
                 ON CONFLICT (policy_id) DO UPDATE SET job_id=EXCLUDED.job_id, until=EXCLUDED.until
                 WHERE policy_leases.job_id=EXCLUDED.job_id OR policy_leases.until < $4",
                &[&policy_id, &job_id, &until, &Utc::now()],
            )
            .await?;
        Ok(n > 0)
    }

    async fn policy_lease_holder(&self, policy_id: &str) -> Result<Option<String>, StoreError> {
        self.row(
            "reading a policy lease",
            "SELECT job_id FROM policy_leases WHERE policy_id=$1 AND until >= $2",
            &[&policy_id, &Utc::now()],
            |r| get(r, "job_id"),
        )
        .await
    }

    async fn release_policy(&self, policy_id: &str, job_id: &str) -> Result<(), StoreError> {
        self.execute(
            "releasing a policy lease",
            "DELETE FROM policy_leases WHERE policy_id=$1 AND job_id=$2",
            &[&policy_id, &job_id],
        )
        .await?;
        Ok(())
    }

    async fn release_job_leases(&self, job_id: &str) -> Result<(), StoreError> {
        self.execute(
            "releasing policy leases",
            "DELETE FROM policy_leases WHERE job_id=$1",
            &[&job_id],
        )
        .await?;
        Ok(())
    }

    async fn renew_leases(&self, job_id: &str, until: DateTime<Utc>) -> Result<(), StoreError> {
        self.execute(
            "renewing policy leases",
            "UPDATE policy_leases SET until=$2 WHERE job_id=$1",
            &[&job_id, &until],
        )
        .await?;
        Ok(())
    }
}

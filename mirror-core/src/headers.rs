//! The HTTP headers of DTR's `/api/v0` that regmirror both serves and
//! reads (as a remote's tag API): named once, re-exported by
//! [`crate::api`].

/// The response header naming the job a "Save & Apply" started.
pub const JOB_ID_HEADER: &str = "x-job-id";
/// The response header naming where the next page of a list starts.
pub const NEXT_PAGE_HEADER: &str = "x-next-page-start";
/// The response header with a list's total count (`count=true`).
pub const RESOURCE_COUNT_HEADER: &str = "x-resource-count";

//! Running Rust futures for Python: one shared tokio runtime (the one
//! pyo3-async-runtimes drives the `*_async` methods on), and [`block`], which
//! runs a future for a blocking call with the GIL released while watching
//! for Ctrl-C.

use std::future::Future;
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use tokio::runtime::Runtime;
use tokio::task::{JoinError, JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::errors::Failure;

/// How often a blocking call wakes up to let Python handle signals.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);
/// How long a call interrupted by Ctrl-C may take to stop cleanly.
const STOP_WAIT: Duration = Duration::from_secs(30);

/// The process-wide runtime.
pub fn runtime() -> &'static Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}

/// Waits up to `timeout` for `task` with the GIL released. `None` if it is
/// still running.
fn wait_for<T: Send + 'static>(
    py: Python<'_>,
    task: &mut JoinHandle<T>,
    timeout: Duration,
) -> Option<PyResult<T>> {
    py.detach(|| runtime().block_on(async { tokio::time::timeout(timeout, &mut *task).await.ok() }))
        .map(joined)
}

/// The result of a spawned task, a panic in it as `RuntimeError`.
pub fn joined<T>(result: Result<T, JoinError>) -> PyResult<T> {
    result.map_err(|e| {
        pyo3::exceptions::PyRuntimeError::new_err(format!("regmirror task failed: {e}"))
    })
}

/// Runs `fut` on the shared runtime until it ends, with the GIL released.
/// A Ctrl-C (or any signal handler raising) aborts it and raises
/// `KeyboardInterrupt`.
pub fn block<T, F>(py: Python<'_>, fut: F) -> PyResult<T>
where
    T: Send + 'static,
    F: Future<Output = Result<T, Failure>> + Send + 'static,
{
    block_with(py, fut, None, |_| Ok(()))
}

/// [`block`], calling `tick` about every [`SIGNAL_CHECK`]. A signal
/// handler raising, or `tick` failing, stops `fut` and raises that error:
/// through `cancel` when given (then `fut` has [`STOP_WAIT`] to end
/// cleanly, e.g. a poll ending `canceled`), else by aborting it.
pub fn block_with<T, F>(
    py: Python<'_>,
    fut: F,
    cancel: Option<&CancellationToken>,
    mut tick: impl FnMut(Python<'_>) -> PyResult<()>,
) -> PyResult<T>
where
    T: Send + 'static,
    F: Future<Output = Result<T, Failure>> + Send + 'static,
{
    let mut task = runtime().spawn(fut);
    loop {
        if let Some(result) = wait_for(py, &mut task, SIGNAL_CHECK) {
            return Ok(result??);
        }
        let Err(stop) = py.check_signals().and_then(|()| tick(py)) else {
            continue;
        };
        if let Some(cancel) = cancel {
            cancel.cancel();
            let deadline = Instant::now() + STOP_WAIT;
            while Instant::now() < deadline && wait_for(py, &mut task, SIGNAL_CHECK).is_none() {
                if py.check_signals().is_err() {
                    break;
                }
            }
        }
        task.abort();
        return Err(stop);
    }
}

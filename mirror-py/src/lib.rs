//! # mirror-py
//!
//! The `regmirror` Python module: mirror-core's engine for automation
//! scripts (`regmirror.Mirror`), and a client with the same methods for a
//! running `mirror-server` (`regmirror.Client`).
//!
//! This crate converts types and errors and holds no mirroring logic:
//! mirror-core validates, decides and copies; the server answers for the
//! client. The native module is `regmirror._regmirror`; the Python package
//! (`python/regmirror`) re-exports it and ships the type stubs.
//!
//! - `engine.rs`: the Python classes and their methods (blocking + `*_async`).
//! - `backend.rs`: each operation once, on the engine or on mirror-core's
//!   client of a server (`mirror_core::client::ApiClient`).
//! - `model.rs`: `Policy`, `PushPolicy`, `ProxyCache`, `Job`, `Tag` made
//!   from mirror-core's types.
//! - `errors.rs`: the exception classes and the one mapping from
//!   `ErrorKind`.
//! - `runtime.rs`: the shared tokio runtime and blocking with Ctrl-C checks.

mod backend;
mod engine;
mod errors;
mod form;
mod model;
mod runtime;

use pyo3::prelude::*;

/// The native part of the `regmirror` package.
#[pymodule]
#[pyo3(name = "_regmirror")]
fn regmirror(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<engine::Engine>()?;
    m.add_class::<engine::Mirror>()?;
    m.add_class::<engine::Client>()?;
    m.add_class::<model::Policy>()?;
    m.add_class::<model::PushPolicy>()?;
    m.add_class::<model::ProxyCache>()?;
    m.add_class::<model::MirroringStatus>()?;
    m.add_class::<model::Job>()?;
    m.add_class::<model::Tag>()?;
    m.add_class::<model::TagHistoryEntry>()?;
    errors::register(m)?;
    Ok(())
}

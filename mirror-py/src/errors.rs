//! The exception classes and the one place that picks a class for a failure.
//!
//! Every failure, whether it comes from the embedded engine ([`MirrorError`])
//! or from a `mirror-server` answer (see `client.rs`), becomes a [`Failure`]:
//! an [`ErrorKind`], the message, and the API field it is about. [`raise`]
//! maps the kind to a class, once, for both. The message is the Rust error's
//! `Display` (or the server's `message`), which names the repository or
//! field; it never holds a password, because no error type carries one.

use mirror_core::{ErrorKind, MirrorError, RemoteError};
use pyo3::exceptions::{PyConnectionError, PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

/// A failure on its way to Python.
#[derive(Debug, Clone)]
pub struct Failure {
    /// What sort of failure: picks the exception class.
    pub kind: ErrorKind,
    /// The exception's message.
    pub message: String,
    /// The API field (camelCase, as in the REST API) the failure is about.
    pub field: Option<String>,
}

impl Failure {
    /// A failure without a field.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
            field: None,
        }
    }

    /// Names the field the failure is about.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl From<MirrorError> for Failure {
    /// A field error reads `field: reason`, as `mirror-server` words it, so a
    /// script sees the same text from the engine and from the server.
    fn from(err: MirrorError) -> Self {
        let kind = err.kind();
        let (message, field) = match &err {
            MirrorError::InvalidPolicy(e) => (e.to_string(), Some(e.field.to_string())),
            MirrorError::Remote(RemoteError::HostRefused { reason, .. }) => (
                format!("remoteHost: {reason}"),
                Some("remoteHost".to_string()),
            ),
            MirrorError::InvalidJob { field, reason } => {
                (format!("{field}: {reason}"), Some(field.to_string()))
            }
            _ => (err.to_string(), None),
        };
        Failure {
            kind,
            message,
            field,
        }
    }
}

impl From<Failure> for PyErr {
    fn from(f: Failure) -> Self {
        Python::attach(|py| raise(py, f))
    }
}

/// The exception classes, made once per process.
struct Classes {
    base: Py<PyType>,
    authentication: Py<PyType>,
    tls: Py<PyType>,
    not_found: Py<PyType>,
    digest_mismatch: Py<PyType>,
    invalid_policy: Py<PyType>,
    unreachable: Py<PyType>,
    canceled: Py<PyType>,
}

static CLASSES: PyOnceLock<Classes> = PyOnceLock::new();

/// The classes, made on first use: `MirrorError(Exception)` and its
/// subclasses, two of which also derive from the builtin a Python caller
/// would expect (`ValueError`, `ConnectionError`).
fn classes(py: Python<'_>) -> PyResult<&Classes> {
    CLASSES.get_or_try_init(py, || {
        let base = new_class(
            py,
            "MirrorError",
            PyTuple::new(py, [py.get_type::<PyException>()])?,
            "Base class of every regmirror error. `kind` names the failure \
             (`not_found`, `unauthorized`, `denied`, `tls`, `unreachable`, \
             `transient`, `digest_mismatch`, `invalid`, `conflict`, `canceled`, \
             `internal`).",
        )?;
        base.setattr("kind", "internal")?;
        base.setattr("field", py.None())?;
        let sub = |name: &str, extra: Option<Bound<'_, PyType>>, doc: &str| {
            let bases = match extra {
                Some(e) => PyTuple::new(py, [base.clone(), e])?,
                None => PyTuple::new(py, [base.clone()])?,
            };
            new_class(py, name, bases, doc).map(Bound::unbind)
        };
        Ok::<_, PyErr>(Classes {
            authentication: sub(
                "AuthenticationError",
                None,
                "The remote registry (or the server) refused the credentials, or \
                 they may not access the repository.",
            )?,
            tls: sub(
                "TLSError",
                None,
                "The TLS handshake or certificate verification failed; pass \
                 `remote_ca` or `skip_tls_verification`.",
            )?,
            not_found: sub(
                "NotFoundError",
                None,
                "A repository, tag, policy or job does not exist.",
            )?,
            digest_mismatch: sub(
                "DigestMismatchError",
                None,
                "Content did not match its digest or size.",
            )?,
            invalid_policy: sub(
                "InvalidPolicyError",
                Some(py.get_type::<PyValueError>()),
                "An input is invalid; `field` names it as the REST API does \
                 (`remoteHost`, `remoteCA`, ...) when known.",
            )?,
            unreachable: sub(
                "UnreachableError",
                Some(py.get_type::<PyConnectionError>()),
                "The host could not be reached.",
            )?,
            canceled: sub("CanceledError", None, "The operation was canceled.")?,
            base: base.unbind(),
        })
    })
}

fn new_class<'py>(
    py: Python<'py>,
    name: &str,
    bases: Bound<'py, PyTuple>,
    doc: &str,
) -> PyResult<Bound<'py, PyType>> {
    let ns = PyDict::new(py);
    ns.set_item("__module__", "regmirror")?;
    ns.set_item("__doc__", doc)?;
    Ok(py
        .get_type::<PyType>()
        .call1((name, bases, ns))?
        .cast_into::<PyType>()?)
}

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let c = classes(py)?;
    for class in [
        &c.base,
        &c.authentication,
        &c.tls,
        &c.not_found,
        &c.digest_mismatch,
        &c.invalid_policy,
        &c.unreachable,
        &c.canceled,
    ] {
        let class = class.bind(py);
        m.add(class.name()?, class)?;
    }
    Ok(())
}

/// The exception for `failure`: the class from its kind, with `kind` and
/// `field` attributes.
pub fn raise(py: Python<'_>, failure: Failure) -> PyErr {
    match build(py, &failure) {
        Ok(err) => err,
        Err(e) => e,
    }
}

fn build(py: Python<'_>, f: &Failure) -> PyResult<PyErr> {
    let c = classes(py)?;
    let (class, kind) = match f.kind {
        ErrorKind::NotFound => (&c.not_found, "not_found"),
        ErrorKind::Unauthorized => (&c.authentication, "unauthorized"),
        ErrorKind::Denied => (&c.authentication, "denied"),
        ErrorKind::Tls => (&c.tls, "tls"),
        ErrorKind::Unreachable => (&c.unreachable, "unreachable"),
        ErrorKind::DigestMismatch => (&c.digest_mismatch, "digest_mismatch"),
        ErrorKind::Invalid => (&c.invalid_policy, "invalid"),
        ErrorKind::Canceled => (&c.canceled, "canceled"),
        ErrorKind::Transient => (&c.base, "transient"),
        ErrorKind::Conflict => (&c.base, "conflict"),
        ErrorKind::Internal => (&c.base, "internal"),
    };
    let exc = class.bind(py).call1((f.message.as_str(),))?;
    exc.setattr("kind", kind)?;
    exc.setattr("field", f.field.as_deref())?;
    Ok(PyErr::from_value(exc))
}

//! The exception classes and the one place that picks a class for a failure.
//!
//! Every failure, whether it comes from the embedded engine or from a
//! `mirror-server` answer (both a [`MirrorError`]), becomes a [`Failure`]
//! on its way to Python; `PyErr::from` maps its [`ErrorKind`] to a class, once,
//! for both, and names the API field it is about. The message is the Rust error's
//! `Display` (or the server's `message`), which names the repository or
//! field; it never holds a password, because no error type carries one.

use mirror_core::{ErrorKind, MirrorError, RemoteError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

/// A failure on its way to Python: an error of the engine or of the
/// client of a server.
#[derive(Debug)]
pub struct Failure(MirrorError);

impl From<MirrorError> for Failure {
    fn from(err: MirrorError) -> Self {
        Failure(err)
    }
}

/// A policies file refused, or a change of its plan failed: its kind,
/// its whole text (file, entry, reason) and the entry as the field
/// (`repositories[0].policies[1].remoteHost`).
impl From<mirror_core::policy_file::PolicyFileError> for Failure {
    fn from(err: mirror_core::policy_file::PolicyFileError) -> Self {
        Failure(MirrorError::Api {
            kind: err.kind,
            message: err.to_string(),
            field: err.location.clone(),
        })
    }
}

/// A failure of `kind` with `message`, about the API field `field`.
pub fn failure(kind: ErrorKind, message: String, field: &str) -> Failure {
    Failure(MirrorError::Api {
        kind,
        message,
        field: Some(field.into()),
    })
}

/// The message and field of `err`. A field error reads `field: reason`,
/// as `mirror-server` words it, so a script sees the same text from the
/// engine and from the server.
fn message_and_field(err: &MirrorError) -> (String, Option<String>) {
    match err {
        MirrorError::InvalidPolicy(e) => (e.to_string(), Some(e.field.to_string())),
        MirrorError::Remote(RemoteError::HostRefused { reason, .. }) => (
            format!("remoteHost: {reason}"),
            Some("remoteHost".to_string()),
        ),
        MirrorError::InvalidJob { field, reason } => {
            (format!("{field}: {reason}"), Some(field.to_string()))
        }
        MirrorError::Api { message, field, .. } => (message.clone(), field.clone()),
        _ => (err.to_string(), None),
    }
}

/// `MirrorError`'s doc.
const BASE_DOC: &str = "Base class of every regmirror error. `kind` names the failure \
    (`not_found`, `unauthorized`, `denied`, `tls`, `unreachable`, `transient`, \
    `digest_mismatch`, `invalid`, `conflict`, `canceled`, `internal`).";

/// `(name, builtin base or "", kinds, doc)` rows from `Name(builtin;
/// kinds): doc` lines.
macro_rules! subclasses {
    ($($name:ident($builtin:literal; $($kind:ident),+): $doc:literal;)*) => {
        [$((stringify!($name), $builtin, &[$(ErrorKind::$kind),+] as &[ErrorKind], $doc)),*]
    };
}

/// `MirrorError`'s subclasses: name, the builtin a Python caller would
/// also expect (or none), the kinds it is raised for, doc. Other kinds
/// (`transient`, `conflict`, `internal`) raise `MirrorError` itself.
#[rustfmt::skip]
const SUBCLASSES: [(&str, &str, &[ErrorKind], &str); 7] = subclasses! {
    AuthenticationError(""; Unauthorized, Denied): "The remote registry (or the server) \
        refused the credentials, or they may not access the repository.";
    TLSError(""; Tls): "The TLS handshake or certificate verification failed; pass \
        `remote_ca` or `skip_tls_verification`.";
    NotFoundError(""; NotFound): "A repository, tag, policy or job does not exist.";
    DigestMismatchError(""; DigestMismatch): "Content did not match its digest or size.";
    InvalidPolicyError("ValueError"; Invalid): "An input is invalid; `field` names it as \
        the REST API does (`remoteHost`, `remoteCA`, ...) when known.";
    UnreachableError("ConnectionError"; Unreachable): "The host could not be reached.";
    CanceledError(""; Canceled): "The operation was canceled.";
};

/// The class of each kind: 0 is `MirrorError`, then [`SUBCLASSES`] in order.
fn class_index(kind: ErrorKind) -> usize {
    let found = SUBCLASSES
        .iter()
        .position(|(_, _, kinds, _)| kinds.contains(&kind));
    found.map_or(0, |i| i + 1)
}

static CLASSES: PyOnceLock<Vec<Py<PyType>>> = PyOnceLock::new();

/// The classes, made once per process: `MirrorError(Exception)`, then
/// its [`SUBCLASSES`].
fn classes(py: Python<'_>) -> PyResult<&[Py<PyType>]> {
    let all = CLASSES.get_or_try_init(py, || {
        let builtins = py.import("builtins")?;
        let base = new_class(
            py,
            "MirrorError",
            vec![builtins.getattr("Exception")?],
            BASE_DOC,
        )?;
        base.setattr("kind", "internal")?;
        base.setattr("field", py.None())?;
        let mut all = vec![base.clone().unbind()];
        for (name, builtin, _, doc) in SUBCLASSES {
            let mut bases = vec![base.clone().into_any()];
            if !builtin.is_empty() {
                bases.push(builtins.getattr(builtin)?);
            }
            all.push(new_class(py, name, bases, doc)?.unbind());
        }
        Ok::<_, PyErr>(all)
    })?;
    Ok(all)
}

fn new_class<'py>(
    py: Python<'py>,
    name: &str,
    bases: Vec<Bound<'py, PyAny>>,
    doc: &str,
) -> PyResult<Bound<'py, PyType>> {
    let ns = PyDict::new(py);
    ns.set_item("__module__", "regmirror")?;
    ns.set_item("__doc__", doc)?;
    let bases = PyTuple::new(py, bases)?;
    Ok(py
        .get_type::<PyType>()
        .call1((name, bases, ns))?
        .cast_into::<PyType>()?)
}

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    for class in classes(m.py())? {
        let class = class.bind(m.py());
        m.add(class.name()?, class)?;
    }
    Ok(())
}

/// The exception for a failure: the class from its kind, with `kind` and
/// `field` attributes.
impl From<Failure> for PyErr {
    fn from(Failure(err): Failure) -> Self {
        Python::attach(|py| {
            let (message, field) = message_and_field(&err);
            let class = classes(py)?[class_index(err.kind())].bind(py);
            let exc = class.call1((message,))?;
            exc.setattr("kind", err.kind().code())?;
            exc.setattr("field", field)?;
            Ok(PyErr::from_value(exc))
        })
        .unwrap_or_else(|e: PyErr| e)
    }
}

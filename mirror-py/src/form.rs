//! A policy form from Python keyword arguments: each is a field of
//! mirror-core's [`PolicyForm`] in snake_case (`remote_host`, `remote_ca`,
//! `skip_tls_verification`, ...), matched against the form's own wire
//! names, so no field is named here. `None` leaves a field out.

use mirror_core::{ErrorKind, PolicyForm};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyString};
use serde_json::{Map, Value};

use crate::errors::failure;

/// The `**form` keyword arguments of a policy call, read as a [`PolicyForm`].
#[derive(Default)]
pub struct FormArgs(pub PolicyForm);

/// The wire name of the snake_case argument `arg`: the form field that
/// reads the same without underscores and case (`remote_ca` → `remoteCA`).
fn wire_name(arg: &str) -> Option<&'static str> {
    let loose = |s: &str| s.replace('_', "").to_ascii_lowercase();
    let is_snake = arg.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    PolicyForm::field_names()
        .iter()
        .copied()
        .find(|wire| is_snake && loose(wire) == loose(arg))
}

impl<'a, 'py> FromPyObject<'a, 'py> for FormArgs {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let kwargs = obj.cast::<PyDict>()?;
        let mut fields = Map::new();
        for (key, value) in kwargs.iter() {
            let arg: String = key.extract()?;
            let wire = wire_name(&arg).ok_or_else(|| {
                PyTypeError::new_err(format!("unexpected keyword argument '{arg}'"))
            })?;
            let json = if value.is_none() {
                continue;
            } else if let Ok(b) = value.cast::<PyBool>() {
                Value::Bool(b.is_true())
            } else if let Ok(s) = value.cast::<PyString>() {
                Value::String(s.to_cow()?.into_owned())
            } else {
                return Err(PyTypeError::new_err(format!(
                    "{arg} must be a str or a bool, not {}",
                    value.get_type().name()?
                )));
            };
            fields.insert(wire.to_string(), json);
        }
        // A value of the wrong type names its field, as the server's 400 does.
        serde_path_to_error::deserialize(Value::Object(fields))
            .map(FormArgs)
            .map_err(|e| {
                let field = e.path().to_string();
                let message = format!("{field}: {}", e.inner());
                failure(ErrorKind::Invalid, message, &field).into()
            })
    }
}

//! A policy form from Python keyword arguments: each is a field of
//! mirror-core's [`PolicyForm`] in snake_case (`remote_host`, `remote_ca`,
//! `skip_tls_verification`, ...), matched against the form's own wire
//! names, so no field is named here. `None` leaves a field out. A value
//! is read as JSON (str, bool, int, float, list, tuple, dict, `None`), so
//! a field of any shape (`rules=[{"operator": "sw", "values": ["1."]}]`)
//! is the form's to check, as the server checks its JSON body. Push
//! policies' keyword arguments are read the same way, as a
//! [`PushPolicyForm`] ([`PushFormArgs`]), and proxy caches' as a
//! [`ProxyCacheForm`] ([`CacheFormArgs`]).

use mirror_core::proxy_cache::ProxyCacheForm;
use mirror_core::push_policy::PushPolicyForm;
use mirror_core::{ErrorKind, PolicyForm};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::errors::failure;

/// A form read from keyword arguments: its wire field names come from serde.
pub trait Form: DeserializeOwned + Default {
    /// The form's wire field names.
    fn field_names() -> &'static [&'static str];
}

impl Form for PolicyForm {
    fn field_names() -> &'static [&'static str] {
        PolicyForm::field_names()
    }
}

impl Form for PushPolicyForm {
    fn field_names() -> &'static [&'static str] {
        PushPolicyForm::field_names()
    }
}

impl Form for ProxyCacheForm {
    fn field_names() -> &'static [&'static str] {
        ProxyCacheForm::field_names()
    }
}

/// The `**form` keyword arguments of a policy call, read as a [`PolicyForm`]
/// (or another [`Form`]).
#[derive(Default)]
pub struct FormArgs<F = PolicyForm>(pub F);

/// The `**form` keyword arguments of a push policy call.
pub type PushFormArgs = FormArgs<PushPolicyForm>;

/// The `**form` keyword arguments of a proxy cache call.
pub type CacheFormArgs = FormArgs<ProxyCacheForm>;

/// The wire name of the snake_case argument `arg`: the field of `names`
/// that reads the same without underscores and case (`remote_ca` →
/// `remoteCA`).
fn wire_name(names: &'static [&'static str], arg: &str) -> Option<&'static str> {
    let loose = |s: &str| s.replace('_', "").to_ascii_lowercase();
    let is_snake = arg.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    names
        .iter()
        .copied()
        .find(|wire| is_snake && loose(wire) == loose(arg))
}

/// `value` (given for the argument `arg`) as JSON. A type JSON has no
/// form of is a `TypeError`; whether the shape fits is the form's question.
fn json(arg: &str, value: &Bound<'_, PyAny>) -> PyResult<Value> {
    if value.is_none() {
        Ok(Value::Null)
    } else if let Ok(b) = value.cast::<PyBool>() {
        Ok(Value::Bool(b.is_true()))
    } else if let Ok(s) = value.cast::<PyString>() {
        Ok(Value::String(s.to_cow()?.into_owned()))
    } else if let Ok(i) = value.cast::<PyInt>() {
        if let Ok(n) = i.extract::<i64>() {
            Ok(n.into())
        } else if let Ok(n) = i.extract::<u64>() {
            Ok(n.into())
        } else {
            Err(PyTypeError::new_err(format!("{arg}: {i} is too large")))
        }
    } else if let Ok(f) = value.cast::<PyFloat>() {
        let f = f.value();
        serde_json::Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| PyTypeError::new_err(format!("{arg}: {f} is not a JSON number")))
    } else if let Ok(list) = value.cast::<PyList>() {
        list.iter().map(|v| json(arg, &v)).collect()
    } else if let Ok(tuple) = value.cast::<PyTuple>() {
        tuple.iter().map(|v| json(arg, &v)).collect()
    } else if let Ok(dict) = value.cast::<PyDict>() {
        let mut map = Map::new();
        for (k, v) in dict.iter() {
            let key = k.cast::<PyString>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "{arg}: a dict key must be a str, not {}",
                    type_name(&k)
                ))
            })?;
            map.insert(key.to_cow()?.into_owned(), json(arg, &v)?);
        }
        Ok(Value::Object(map))
    } else {
        Err(PyTypeError::new_err(format!(
            "{arg} must be a str, bool, int, float, list or dict, not {}",
            type_name(value)
        )))
    }
}

/// The name of `value`'s type, for a message.
fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map_or_else(|_| "?".into(), |n| n.to_string())
}

impl<'a, 'py, F: Form> FromPyObject<'a, 'py> for FormArgs<F> {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let kwargs = obj.cast::<PyDict>()?;
        let mut fields = Map::new();
        for (key, value) in kwargs.iter() {
            let arg: String = key.extract()?;
            let wire = wire_name(F::field_names(), &arg).ok_or_else(|| {
                PyTypeError::new_err(format!("unexpected keyword argument '{arg}'"))
            })?;
            if value.is_none() {
                continue;
            }
            fields.insert(wire.to_string(), json(&arg, &value)?);
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

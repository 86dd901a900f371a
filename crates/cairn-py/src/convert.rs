//! Python objects to and from the library's typed values, durations, ids and SQL values. The
//! one place that knows both sides: the rest of the extension passes `cairn::Value`.
//!
//! | Python | stored as (`cairn::ValueKind`) | read back as |
//! |---|---|---|
//! | `str` | Text | `str` |
//! | `int` (64-bit) | Int | `int` |
//! | `float` | Float | `float` |
//! | `bytes`, `bytearray` | Bytes | `bytes` |
//! | `None`, `bool`, `dict`, `list`, `tuple`, larger `int` | Json | `json.loads` of it |
//!
//! JSON is written by `cairn._codec.dumps` (compact, no NaN, dict keys must be `str`) and
//! read by `cairn._codec.loads`. Nothing is ever pickled.

use std::borrow::Cow;
use std::ops::Deref;
use std::time::Duration;

use cairn::{QueueItem, SqlValue, Value};
use pyo3::exceptions::{PyTypeError, PyUnicodeEncodeError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::errors::{invalid, py_err};

/// A `str` argument (a key, a namespace, an id...), borrowed from the Python string. Text
/// Python can hold but UTF-8 cannot (a lone surrogate) is refused with [`not_unicode`]'s
/// message rather than a bare `UnicodeEncodeError`.
pub(crate) struct Text(PyBackedStr);

impl Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromPyObject<'_, '_> for Text {
    type Error = PyErr;

    fn extract(obj: Borrowed<'_, '_, PyAny>) -> PyResult<Self> {
        let s = obj.cast::<PyString>()?;
        PyBackedStr::try_from(s.to_owned()).map(Text).map_err(|e| not_unicode(obj.py(), e))
    }
}

/// The text of `s`, for values and ids given inside other objects; see [`Text`].
pub(crate) fn text<'a>(s: &'a Bound<'_, PyString>) -> PyResult<Cow<'a, str>> {
    s.to_cow().map_err(|e| not_unicode(s.py(), e))
}

/// `InvalidInputError` for a `UnicodeEncodeError` (the original as its cause); other errors
/// unchanged.
fn not_unicode(py: Python<'_>, e: PyErr) -> PyErr {
    if !e.is_instance_of::<PyUnicodeEncodeError>(py) {
        return e;
    }
    let err = invalid(format!(
        "the text holds a lone surrogate, which is not valid Unicode and cannot be stored ({}); such \
         text usually comes from bytes decoded with errors=\"surrogateescape\" (file names, environment \
         variables): store those bytes instead (os.fsencode), or decode them with errors=\"replace\"",
        e.value(py)
    ));
    err.set_cause(py, Some(e));
    err
}

static DUMPS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The value to store for `obj`.
pub(crate) fn to_value(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    let py = obj.py();
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::Text(text(s)?.into_owned()));
    }
    if obj.is_instance_of::<PyBool>() {
        return Ok(Value::Json(if obj.is_truthy()? { "true" } else { "false" }.into()));
    }
    if obj.is_instance_of::<PyInt>() {
        return Ok(match obj.extract::<i64>() {
            Ok(n) => Value::Int(n),
            // Beyond 64 bits: exact as a JSON number, which Python reads back as the same int.
            Err(_) => Value::Json(obj.str()?.to_cow()?.into_owned()),
        });
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Value::Float(f.value()));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Value::Bytes(b.as_bytes().to_vec()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Value::Bytes(b.to_vec()));
    }
    if obj.is_none()
        || obj.is_instance_of::<PyDict>()
        || obj.is_instance_of::<PyList>()
        || obj.is_instance_of::<PyTuple>()
    {
        let dumps = DUMPS.import(py, "cairn._codec", "dumps")?;
        let text = dumps.call1((obj,))?;
        return Ok(Value::Json(self::text(text.cast::<PyString>()?)?.into_owned()));
    }
    Err(PyTypeError::new_err(format!(
        "cairn cannot store a value of type {}: values are str, int, float, bool, None, bytes, or dicts and \
         lists of JSON values (never pickled); convert it first, e.g. to a dict or to bytes",
        obj.get_type().name()?
    )))
}

/// The Python object for a stored value, of the type it was stored as.
pub(crate) fn to_py(py: Python<'_>, v: Value) -> PyResult<Py<PyAny>> {
    Ok(match v {
        Value::Text(s) => PyString::new(py, &s).into_any().unbind(),
        Value::Int(n) => n.into_pyobject(py)?.into_any().unbind(),
        Value::Float(x) => PyFloat::new(py, x).into_any().unbind(),
        Value::Bytes(b) => PyBytes::new(py, &b).into_any().unbind(),
        Value::Json(j) => LOADS.import(py, "cairn._codec", "loads")?.call1((j,))?.unbind(),
    })
}

/// An optional duration: `None`, seconds (int or float), a `timedelta` (anything with
/// `total_seconds()`), or a string such as `"5m"` or `"1h30m"`. NaN, negative and infinite
/// values raise `InvalidInputError`; what the library refuses (a zero TTL) it refuses itself.
pub(crate) fn duration(obj: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Option<Duration>> {
    match obj {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o) => seconds(o, what).map(Some),
    }
}

/// The error for a negative duration of `secs` seconds: in the duration grammar (`-2d`, as a
/// `timedelta(days=-2)` was meant) where it is one a duration can hold, else in seconds.
fn negative(what: &str, secs: f64) -> PyErr {
    match Duration::try_from_secs_f64(-secs) {
        Ok(d) if secs.fract() == 0.0 && d.as_secs() >= 60 => {
            invalid(format!("{what} of -{} ({secs} seconds) is negative", cairn::format_duration(d)))
        }
        _ => invalid(format!("{what} of {secs} seconds is negative")),
    }
}

/// A duration that must be given; see [`duration`].
pub(crate) fn seconds(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Duration> {
    if obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be seconds (int or float), a timedelta or a string like '5m', not a bool"
        )));
    }
    if obj.is_instance_of::<PyInt>() {
        return match obj.extract::<u64>() {
            Ok(s) => Ok(Duration::from_secs(s)),
            Err(_) if obj.lt(0)? => Err(negative(what, obj.extract::<f64>().unwrap_or(f64::MIN))),
            Err(_) => Err(invalid(format!("{what} of {obj} seconds is too long; use None for no limit"))),
        };
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return cairn::parse_duration(&text(s)?).map_err(py_err);
    }
    let secs = if let Ok(f) = obj.cast::<PyFloat>() {
        f.value()
    } else if obj.hasattr("total_seconds")? {
        obj.call_method0("total_seconds")?.extract::<f64>()?
    } else {
        return Err(PyTypeError::new_err(format!(
            "{what} must be seconds (int or float), a timedelta or a string like '5m', not {}",
            obj.get_type().name()?
        )));
    };
    if secs.is_nan() {
        return Err(invalid(format!("{what} is NaN; give a number of seconds")));
    }
    if secs < 0.0 {
        return Err(negative(what, secs));
    }
    Duration::try_from_secs_f64(secs)
        .map_err(|_| invalid(format!("{what} of {secs} seconds is too long; use None for no limit")))
}

/// A queue item from `cairn.QueueItem`'s fields as a tuple `(id, data, delay, not_before,
/// priority, group)`: `data` None for none, `delay` a duration or None, `not_before` Unix
/// milliseconds, an RFC 3339 string or None (at most one of the two), `priority` an int,
/// `group` a str (or an int, as its decimal text) or None.
pub(crate) fn queue_item(obj: &Bound<'_, PyAny>) -> PyResult<QueueItem> {
    type Field<'py> = Bound<'py, PyAny>;
    #[allow(clippy::type_complexity)]
    let (item_id, data, delay, not_before, priority, group): (
        Field<'_>,
        Field<'_>,
        Field<'_>,
        Field<'_>,
        Field<'_>,
        Field<'_>,
    ) = obj.extract()?;
    let mut item = QueueItem::new(id(&item_id)?);
    if !priority.is_instance_of::<PyInt>() || priority.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "a priority must be an int, not {}",
            priority.get_type().name()?
        )));
    }
    // An int too large for i64 is out of range as surely as 1001 is: the library says so.
    item = item.priority(priority.extract::<i64>().unwrap_or(i64::MAX));
    if !group.is_none() {
        let key = id(&group).map_err(|_| {
            PyTypeError::new_err(format!(
                "a group must be a str, not {}",
                group.get_type().name().map_or_else(|_| "?".into(), |n| n.to_string())
            ))
        })?;
        item = item.group(key);
    }
    if !data.is_none() {
        item = item.data(to_value(&data)?).map_err(py_err)?;
    }
    match (delay.is_none(), not_before.is_none()) {
        (true, true) => Ok(item),
        (false, true) => Ok(item.delay(seconds(&delay, "a delay")?)),
        (true, false) => {
            let at = if let Ok(text) = not_before.cast::<PyString>() {
                cairn::parse_time(&self::text(text)?).map_err(py_err)?
            } else {
                not_before.extract::<i64>()?
            };
            Ok(item.not_before_millis(at))
        }
        (false, false) => Err(invalid(format!(
            "the queue item {} has both a delay and a not_before time: give one",
            item_id.repr()?
        ))),
    }
}

/// An item id: a `str`, or an `int` taken as its decimal text.
pub(crate) fn id(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(text(s)?.into_owned());
    }
    if obj.is_instance_of::<PyInt>() && !obj.is_instance_of::<PyBool>() {
        return Ok(obj.str()?.to_cow()?.into_owned());
    }
    Err(PyTypeError::new_err(format!("an id must be a str or an int, not {}", obj.get_type().name()?)))
}

/// An id that remembers where it came from: `filter_new` hands back the caller's own objects.
/// The text is borrowed from the Python string (no copy into a Rust `String`).
pub(crate) struct Indexed {
    pub index: usize,
    pub id: PyBackedStr,
}

impl AsRef<str> for Indexed {
    fn as_ref(&self) -> &str {
        &self.id
    }
}

/// The ids of an iterable, with their original objects. One `str` is refused: iterating it
/// would give its characters.
pub(crate) fn ids(obj: &Bound<'_, PyAny>) -> PyResult<(Vec<Py<PyAny>>, Vec<Indexed>)> {
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() {
        return Err(PyTypeError::new_err("ids must be an iterable of ids (a list, say), not one str"));
    }
    let (lower, _) = obj.len().map_or((0, None), |n| (n, Some(n)));
    let mut originals = Vec::with_capacity(lower);
    let mut out = Vec::with_capacity(lower);
    for (index, item) in obj.try_iter()?.enumerate() {
        let item = item?;
        let id = if let Ok(s) = item.cast::<PyString>() {
            PyBackedStr::try_from(s.clone()).map_err(|e| not_unicode(obj.py(), e))?
        } else if item.is_instance_of::<PyInt>() && !item.is_instance_of::<PyBool>() {
            PyBackedStr::try_from(item.str()?)?
        } else {
            return Err(PyTypeError::new_err(format!(
                "an id must be a str or an int, not {}",
                item.get_type().name()?
            )));
        };
        out.push(Indexed { index, id });
        originals.push(item.unbind());
    }
    Ok((originals, out))
}

/// Parameters of users' own SQL: None, int (and bool), float, str, bytes.
pub(crate) fn sql_params(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<SqlValue>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else { return Ok(Vec::new()) };
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyDict>() {
        return Err(PyTypeError::new_err(
            "SQL parameters are a sequence (a tuple or list) bound to ?1, ?2...; named parameters are not supported",
        ));
    }
    let mut out = Vec::new();
    for item in obj.try_iter()? {
        let item = item?;
        out.push(if item.is_none() {
            SqlValue::Null
        } else if item.is_instance_of::<PyInt>() {
            SqlValue::Integer(item.extract::<i64>().map_err(|_| {
                invalid(format!("the SQL parameter {item} does not fit SQLite's 64-bit integers"))
            })?)
        } else if let Ok(f) = item.cast::<PyFloat>() {
            SqlValue::Real(f.value())
        } else if let Ok(s) = item.cast::<PyString>() {
            SqlValue::Text(text(s)?.into_owned())
        } else if let Ok(b) = item.cast::<PyBytes>() {
            SqlValue::Blob(b.as_bytes().to_vec())
        } else if let Ok(b) = item.cast::<PyByteArray>() {
            SqlValue::Blob(b.to_vec())
        } else {
            return Err(PyTypeError::new_err(format!(
                "an SQL parameter is None, int, float, str or bytes, not {}",
                item.get_type().name()?
            )));
        });
    }
    Ok(out)
}

/// Rows of users' own SQL, as a list of tuples.
pub(crate) fn rows(py: Python<'_>, rows: cairn::Rows) -> PyResult<Py<PyList>> {
    let list = PyList::empty(py);
    for row in rows {
        let mut cells = Vec::with_capacity(row.len());
        for v in row {
            cells.push(match v {
                SqlValue::Null => py.None(),
                SqlValue::Integer(n) => n.into_pyobject(py)?.into_any().unbind(),
                SqlValue::Real(x) => PyFloat::new(py, x).into_any().unbind(),
                SqlValue::Text(s) => PyString::new(py, &s).into_any().unbind(),
                SqlValue::Blob(b) => PyBytes::new(py, &b).into_any().unbind(),
            });
        }
        list.append(PyTuple::new(py, cells)?)?;
    }
    Ok(list.unbind())
}

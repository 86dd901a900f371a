//! The TTL cache: `cache_*` methods, the store-wide sweep of expired entries and the cache's
//! statistics.

use cairn::{CacheLimits, Eviction, FillTry, Value};
use pyo3::prelude::*;

use super::Connection;
use crate::convert::{self, Text};
use crate::errors::{to_py, Failure};
use crate::handles::FillClaim;

/// A namespace's size bounds (`cairn::CacheLimits`). Private: `cairn.CacheLimits` is made
/// from it.
#[pyclass(frozen, get_all, module = "cairn._cairn")]
pub(crate) struct RawCacheLimits {
    /// At most this many entries; None: unbounded.
    max_entries: Option<u64>,
    /// At most this many bytes of keys and values; None: unbounded.
    max_bytes: Option<u64>,
    /// What goes first: `lrs` or `lru`.
    eviction: &'static str,
}

impl From<CacheLimits> for RawCacheLimits {
    fn from(l: CacheLimits) -> Self {
        RawCacheLimits { max_entries: l.max_entries, max_bytes: l.max_bytes, eviction: l.eviction.as_str() }
    }
}

/// A namespace's size and counters (`cairn::CacheStats`). Private: `cairn.CacheStats` is
/// made from it.
#[pyclass(frozen, get_all, module = "cairn._cairn")]
pub(crate) struct RawCacheStats {
    /// Entries stored, including expired ones not yet swept.
    entries: u64,
    /// Bytes of keys and values stored.
    bytes: u64,
    /// Reads that found a fresh entry, in every process.
    hits: u64,
    /// Reads that found nothing fresh.
    misses: u64,
    /// Entries removed to respect a size bound.
    evictions: u64,
    /// The namespace's bounds.
    limits: Py<RawCacheLimits>,
}

#[pymethods]
impl Connection {
    /// The value of `key`, or `default` when it is absent or expired.
    fn cache_get(
        &self,
        py: Python<'_>,
        ns: Text,
        key: Text,
        tx: u64,
        default: Py<PyAny>,
    ) -> PyResult<Py<PyAny>> {
        match self.run(py, tx, |s| Ok(s.cache(&ns).get::<Value>(&key)?))? {
            Some(v) => convert::to_py(py, v),
            None => Ok(default),
        }
    }

    fn cache_contains(&self, py: Python<'_>, ns: Text, key: Text, tx: u64) -> PyResult<bool> {
        self.run(py, tx, |s| Ok(s.cache(&ns).contains(&key)?))
    }

    #[pyo3(signature = (ns, key, value, ttl, tx))]
    fn cache_set(
        &self,
        py: Python<'_>,
        ns: Text,
        key: Text,
        value: &Bound<'_, PyAny>,
        ttl: Option<&Bound<'_, PyAny>>,
        tx: u64,
    ) -> PyResult<()> {
        let value = convert::to_value(value)?;
        let ttl = convert::duration(ttl, "a TTL")?;
        self.run(py, tx, |s| Ok(s.cache(&ns).set(&key, &value, ttl)?))
    }

    #[pyo3(signature = (ns, key, value, ttl, tx))]
    fn cache_add(
        &self,
        py: Python<'_>,
        ns: Text,
        key: Text,
        value: &Bound<'_, PyAny>,
        ttl: Option<&Bound<'_, PyAny>>,
        tx: u64,
    ) -> PyResult<bool> {
        let value = convert::to_value(value)?;
        let ttl = convert::duration(ttl, "a TTL")?;
        self.run(py, tx, |s| Ok(s.cache(&ns).add(&key, &value, ttl)?))
    }

    fn cache_delete(&self, py: Python<'_>, ns: Text, key: Text, tx: u64) -> PyResult<bool> {
        self.run(py, tx, |s| Ok(s.cache(&ns).delete(&key)?))
    }

    #[pyo3(signature = (ns, key, ttl, tx))]
    fn cache_touch(
        &self,
        py: Python<'_>,
        ns: Text,
        key: Text,
        ttl: Option<&Bound<'_, PyAny>>,
        tx: u64,
    ) -> PyResult<bool> {
        let ttl = convert::duration(ttl, "a TTL")?;
        self.run(py, tx, |s| Ok(s.cache(&ns).touch(&key, ttl)?))
    }

    #[pyo3(signature = (ns, key, by, ttl, tx))]
    fn cache_incr(
        &self,
        py: Python<'_>,
        ns: Text,
        key: Text,
        by: i64,
        ttl: Option<&Bound<'_, PyAny>>,
        tx: u64,
    ) -> PyResult<i64> {
        let ttl = convert::duration(ttl, "a TTL")?;
        self.run(py, tx, |s| Ok(s.cache(&ns).incr(&key, by, ttl)?))
    }

    fn cache_keys(&self, py: Python<'_>, ns: Text, prefix: Text, tx: u64) -> PyResult<Vec<String>> {
        self.run(py, tx, |s| Ok(s.cache(&ns).keys(&prefix)?))
    }

    /// Every entry of the namespace, or those whose key starts with `prefix`.
    #[pyo3(signature = (ns, prefix, tx))]
    fn cache_clear(&self, py: Python<'_>, ns: Text, prefix: Option<Text>, tx: u64) -> PyResult<u64> {
        self.run(py, tx, |s| {
            let cache = s.cache(&ns);
            Ok(match &prefix {
                Some(p) => cache.clear_prefix(p)?,
                None => cache.clear()?,
            })
        })
    }

    /// How many fresh entries the namespace holds.
    fn cache_len(&self, py: Python<'_>, ns: Text, tx: u64) -> PyResult<u64> {
        self.run(py, tx, |s| Ok(s.cache(&ns).len()?))
    }

    /// The values of `keys` in order, `default` for a miss, read in one transaction.
    fn cache_get_many(
        &self,
        py: Python<'_>,
        ns: Text,
        keys: Vec<Text>,
        tx: u64,
        default: Py<PyAny>,
    ) -> PyResult<Vec<Py<PyAny>>> {
        let found =
            self.run(py, tx, |s| Ok(s.cache(&ns).get_many::<Value, _>(keys.iter().map(|k| &**k))?))?;
        found
            .into_iter()
            .map(|v| match v {
                Some(v) => convert::to_py(py, v),
                None => Ok(default.clone_ref(py)),
            })
            .collect()
    }

    /// Store `(key, value)` pairs with one `ttl`, in one transaction.
    #[pyo3(signature = (ns, items, ttl, tx))]
    fn cache_set_many(
        &self,
        py: Python<'_>,
        ns: Text,
        items: Vec<(Text, Bound<'_, PyAny>)>,
        ttl: Option<&Bound<'_, PyAny>>,
        tx: u64,
    ) -> PyResult<()> {
        let ttl = convert::duration(ttl, "a TTL")?;
        let items = items
            .into_iter()
            .map(|(k, v)| Ok((k, convert::to_value(&v)?)))
            .collect::<PyResult<Vec<(Text, Value)>>>()?;
        self.run(py, tx, |s| Ok(s.cache(&ns).set_many(items.iter().map(|(k, v)| (&**k, v)), ttl)?))
    }

    fn cache_sweep(&self, py: Python<'_>, ns: Text, tx: u64) -> PyResult<u64> {
        self.run(py, tx, |s| Ok(s.cache(&ns).sweep()?))
    }

    fn cache_stats(&self, py: Python<'_>, ns: Text, tx: u64) -> PyResult<RawCacheStats> {
        let st = self.run(py, tx, |s| Ok(s.cache(&ns).stats()?))?;
        Ok(RawCacheStats {
            entries: st.entries,
            bytes: st.bytes,
            hits: st.hits,
            misses: st.misses,
            evictions: st.evictions,
            limits: Py::new(py, RawCacheLimits::from(st.limits))?,
        })
    }

    fn cache_limits(&self, py: Python<'_>, ns: Text, tx: u64) -> PyResult<RawCacheLimits> {
        let l = self.run(py, tx, |s| Ok(s.cache(&ns).limits()?))?;
        Ok(RawCacheLimits::from(l))
    }

    #[pyo3(signature = (ns, max_entries, max_bytes, eviction, tx))]
    fn cache_set_limits(
        &self,
        py: Python<'_>,
        ns: Text,
        max_entries: Option<u64>,
        max_bytes: Option<u64>,
        eviction: Text,
        tx: u64,
    ) -> PyResult<()> {
        let limits = CacheLimits {
            max_entries,
            max_bytes,
            eviction: eviction.parse::<Eviction>().map_err(|e| to_py(py, e))?,
        };
        self.run(py, tx, |s| Ok(s.cache(&ns).set_limits(limits)?))
    }

    /// The value of `key`; on a miss, `compute()` it (once across processes), store it with
    /// `ttl` and return it as stored.
    #[pyo3(signature = (ns, key, compute, ttl, tx))]
    fn cache_get_or_set(
        &self,
        py: Python<'_>,
        ns: Text,
        key: Text,
        compute: Py<PyAny>,
        ttl: Option<&Bound<'_, PyAny>>,
        tx: u64,
    ) -> PyResult<Py<PyAny>> {
        let ttl = convert::duration(ttl, "a TTL")?;
        let v = self.run(py, tx, |s| {
            s.cache(&ns).get_or_set_with(&key, ttl, || {
                Python::attach(|py| -> Result<Value, Failure> {
                    let out = compute.call0(py)?;
                    Ok(convert::to_value(out.bind(py))?)
                })
            })
        })?;
        convert::to_py(py, v)
    }

    /// The fill in steps (`cairn::Cache::try_fill`, `retry_fill` when `again`): `(0, value)` for
    /// a fresh value, `(1, FillClaim)` when this process now computes it, `(2, None)` while
    /// another process or task does.
    fn cache_fill_try(&self, py: Python<'_>, ns: Text, key: Text, again: bool) -> PyResult<(u8, Py<PyAny>)> {
        let found = self.run(py, 0, |s| {
            let cache = s.cache(&ns);
            Ok(if again { cache.retry_fill::<Value>(&key)? } else { cache.try_fill::<Value>(&key)? })
        })?;
        Ok(match found {
            FillTry::Hit(v) => (0, convert::to_py(py, v)?),
            FillTry::Claimed(c) => (1, Py::new(py, FillClaim::new(c))?.into_any()),
            FillTry::Busy => (2, py.None()),
        })
    }

    /// Store `value` computed under `claim` with `ttl`, releasing the marker; the value as
    /// stored (what every other process reads).
    #[pyo3(signature = (ns, claim, value, ttl))]
    fn cache_fill_complete(
        &self,
        py: Python<'_>,
        ns: Text,
        claim: PyRef<'_, FillClaim>,
        value: &Bound<'_, PyAny>,
        ttl: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let claim = claim.take(py)?;
        let stored = convert::to_value(value);
        let ttl = convert::duration(ttl, "a TTL");
        let (v, ttl) = match (stored, ttl) {
            (Ok(v), Ok(ttl)) => (v, ttl),
            (Err(e), _) | (_, Err(e)) => {
                // Refused before the library saw it: the marker is released all the same.
                let _ = self.run(py, 0, |s| Ok(s.cache(&ns).abandon_fill(claim)?));
                return Err(e);
            }
        };
        self.run(py, 0, |s| Ok(s.cache(&ns).complete_fill(claim, &v, ttl)?))?;
        convert::to_py(py, v)
    }

    /// Release `claim`'s marker without storing anything.
    fn cache_fill_abandon(&self, py: Python<'_>, ns: Text, claim: PyRef<'_, FillClaim>) -> PyResult<()> {
        let claim = claim.take(py)?;
        self.run(py, 0, |s| Ok(s.cache(&ns).abandon_fill(claim)?))
    }

    fn sweep(&self, py: Python<'_>) -> PyResult<u64> {
        self.run_store(py, |s| Ok(s.sweep()?))
    }

    fn flush_stats(&self, py: Python<'_>) -> PyResult<()> {
        self.run_store(py, |s| Ok(s.flush_stats()?))
    }

    fn cache_namespaces(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.run_store(py, |s| Ok(s.cache_namespaces()?))
    }
}

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

/// One `(key, value, ttl)` of `cache_set_each`, as Python gave it (converted one by one, so
/// that one that does not convert fails alone).
type SetItem<'py> = (Bound<'py, PyAny>, Bound<'py, PyAny>, Option<Bound<'py, PyAny>>);

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

    /// `cache_get` of each key outside any transaction (`Cache::get_each`: the same hit and
    /// miss counts, one snapshot), in one call: for `cairn.AsyncStore`, whose worker runs a
    /// burst of concurrent gets here at the price of one release of the interpreter lock
    /// rather than one each (each release lets the event loop's thread take the lock, and the
    /// worker then waits for it). Each element is the value, `missing` for a miss, or the
    /// exception that key's `cache_get` would have raised (no cached value is an exception).
    fn cache_get_each(
        &self,
        py: Python<'_>,
        ns: Text,
        keys: Vec<Text>,
        missing: Py<PyAny>,
    ) -> PyResult<Vec<Py<PyAny>>> {
        let found =
            self.run(py, 0, |s| Ok(s.cache(&ns).get_each::<Value, _>(keys.iter().map(|k| &**k))?))?;
        found
            .into_iter()
            .map(|v| match v {
                Ok(Some(v)) => convert::to_py(py, v),
                Ok(None) => Ok(missing.clone_ref(py)),
                Err(e) => Ok(to_py(py, e).into_value(py).into_any()),
            })
            .collect()
    }

    /// `cache_set` of each `(key, value, ttl)` outside any transaction, in one call, committed
    /// together (group commit: one transaction for the lot, for `cairn.AsyncStore`'s bursts of
    /// sets). Each set is still all or nothing: when the group fails, nothing of it was
    /// committed and each set runs again in a transaction of its own, so that one bad value
    /// fails alone. Each element is None (stored) or the exception that set raised.
    fn cache_set_each(
        &self,
        py: Python<'_>,
        ns: Text,
        items: Vec<SetItem<'_>>,
    ) -> PyResult<Vec<Option<Py<PyAny>>>> {
        let mut out: Vec<Option<Py<PyAny>>> = Vec::with_capacity(items.len());
        // (position in `out`, key, value, ttl) of the items that convert; the others fail now.
        let mut ready = Vec::with_capacity(items.len());
        for (i, (k, v, ttl)) in items.iter().enumerate() {
            let item = (|| -> PyResult<_> {
                let key = k.extract::<Text>()?;
                Ok((i, key, convert::to_value(v)?, convert::duration(ttl.as_ref(), "a TTL")?))
            })();
            match item {
                Ok(item) => ready.push(item),
                Err(e) => {
                    // `cache_set` raises TypeError naming the key for a key that is no str.
                    let e = if k.is_instance_of::<pyo3::types::PyString>() {
                        e
                    } else {
                        pyo3::exceptions::PyTypeError::new_err(format!(
                            "key must be a str, not {}",
                            k.get_type().name()?
                        ))
                    };
                    out.push(Some(e.into_value(py).into_any()));
                    continue;
                }
            }
            out.push(None);
        }
        let results = self.run(py, 0, |s| {
            let grouped = s.store.transaction(|tx| {
                let cache = tx.cache(&ns);
                ready.iter().try_for_each(|(_, k, v, ttl)| cache.set(k, v, *ttl))
            });
            Ok(match grouped {
                Ok(()) => ready.iter().map(|_| Ok(())).collect::<Vec<_>>(),
                Err(_) => {
                    let cache = s.store.cache(&ns);
                    ready.iter().map(|(_, k, v, ttl)| cache.set(k, v, *ttl)).collect()
                }
            })
        })?;
        for ((i, ..), r) in ready.iter().zip(results) {
            if let Err(e) = r {
                out[*i] = Some(to_py(py, e).into_value(py).into_any());
            }
        }
        Ok(out)
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

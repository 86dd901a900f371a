//! The storage engines. Only this module (and the error conversion) names a database crate;
//! features decide policy and call the engine's operations. PostgreSQL will be a sibling of
//! `sqlite/` with the same file names.

pub(crate) mod sqlite;

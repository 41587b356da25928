//! A Databricks-compatible emulator: an HTTP server on loopback serving the REST APIs dbxport
//! uses, with real shapes, status codes and error bodies (seed format: `spec/emulator-seed.md`).
//! It stores [`crate::model`] types and must not import `client`, `bundle`, `export` or `import`.

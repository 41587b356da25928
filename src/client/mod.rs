//! The Databricks REST client: configuration and authentication, transport (retries, throttling,
//! concurrency) and one module per API family. It speaks in [`crate::model`] types.
//! It must not import `bundle`, `emulator`, `export` or `import`.

//! Helpers shared by the integration tests, one module per area.

pub mod auth;
pub mod client_server;
pub mod ctx;
pub mod emulator;
pub mod export;
pub mod fresh;
pub mod golden;
pub mod import;
pub mod pty;
pub mod scenario;
pub mod schema;

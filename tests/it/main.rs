//! The integration tests, as one test binary: every module below was a binary of its own, and
//! each linked the whole crate and emulator again (37 of them made a 2.8 GB `target/`). Tests
//! that need the process to themselves stay separate (`tests/client_logging.rs` installs a
//! global tracing subscriber).
//!
//! Shared helpers: `common` (tool discovery, the binary's path) and `support::*` (one module per
//! area); `mlflow_support` drives the MLflow servers.

#[path = "../common/mod.rs"]
mod common;
#[path = "../mlflow_support/mod.rs"]
mod mlflow_support;
#[path = "../support/mod.rs"]
mod support;

mod auth_azure;
mod auth_databricks_cli;
mod auth_external_browser;
mod bundle_builder;
mod bundle_cli;
mod bundle_codes;
mod bundle_golden;
mod bundle_hostile;
mod bundle_interop;
mod bundle_mutations;
mod bundle_scale;
mod bundle_schema;
mod cli_docs;
mod cli_kinds;
mod cli_printable;
mod cli_transcripts;
mod client_api;
mod client_auth;
mod client_config;
mod client_hostile;
mod client_transport;
mod demo;
mod emulator_api;
mod emulator_faults;
mod emulator_legacy_cli;
mod emulator_oauth;
mod emulator_sdk_conformance;
mod emulator_seed;
mod export_auth;
mod export_faults;
mod export_folders;
mod export_options;
mod export_poc;
mod export_resume;
mod import_faults;
mod import_folders;
mod import_jobs;
mod import_permissions;
mod import_poc;
mod import_resume;
mod import_scale;
mod import_verify;
mod layering;
mod models_emulator;
mod models_mlflow;
mod models_mlflow_client;
mod models_uc;
mod seal_limits;

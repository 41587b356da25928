//! `diff`: after a migration, compare the target with the bundle.

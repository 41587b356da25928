//! Object permissions (`permissions`): the access control lists of notebooks, folders, repos, jobs and other objects.

pub mod export;
pub mod format;
pub mod import;

//! `inspect`: what a bundle holds, from its checked inventory (spec §10.1 steps 1–5 run first;
//! payload digests are not re-read, `verify` does that).

use super::error::Result;
use super::inventory::{kind_rank, Sealing, Source, Tool};
use super::reader::Bundle;
use super::seal::Opener;
use crate::model::Kind;
use serde::Serialize;
use serde_json::Value;
use std::path::Path;

/// Counts and sizes for one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KindSummary {
    /// The kind.
    pub kind: String,
    /// Records of this kind.
    pub records: u64,
    /// Stored files (folders not counted).
    pub files: u64,
    /// Bytes of those files.
    pub bytes: u64,
}

/// Totals over all kinds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Records.
    pub records: u64,
    /// Payload files.
    pub payload_files: u64,
    /// Payload bytes.
    pub payload_bytes: u64,
}

/// What is sealed and to whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SealedSummary {
    /// Secret values sealed.
    pub values: u64,
    /// All sealed files (values and digest indexes).
    pub files: u64,
    /// Recipients each file is sealed to.
    pub recipients: u32,
    /// Recipient types.
    pub recipient_types: Vec<String>,
    /// True for passphrase sealing.
    pub passphrase: bool,
}

/// One note attached to a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoteLine {
    /// The record's kind.
    pub kind: String,
    /// The record's original name.
    pub name: String,
    /// The note.
    pub note: String,
}

/// The result of `inspect`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InspectReport {
    /// Format name.
    pub format: String,
    /// Format version.
    pub format_version: String,
    /// Bundle id.
    pub bundle_id: String,
    /// Bag folder name.
    pub bag: String,
    /// Creation time.
    pub created: String,
    /// Writing tool.
    pub tool: Tool,
    /// Source workspace.
    pub source: Source,
    /// True when wrapped in an age envelope.
    pub envelope: bool,
    /// Per kind, in import order.
    pub kinds: Vec<KindSummary>,
    /// Totals.
    pub totals: Totals,
    /// Sealing, when anything is sealed.
    pub sealed: Option<SealedSummary>,
    /// Records of kinds this dbxport does not know.
    pub unknown_records: u64,
    /// Every note of every record.
    pub notes: Vec<NoteLine>,
    /// The export options.
    pub options: Value,
}

/// Opens and checks `path` (cheap checks only) and summarizes it.
pub fn inspect(path: &Path, opener: Option<&Opener>) -> Result<InspectReport> {
    let b = Bundle::open_lean(path, opener)?;
    Ok(summarize(&b))
}

/// Summarizes an opened bundle.
pub fn summarize(b: &Bundle) -> InspectReport {
    let inv = b.inventory();
    // One pass over the records (whole or summarised), counting per kind.
    let mut per_kind: Vec<(u64, u64, u64)> = vec![(0, 0, 0); Kind::ALL.len()];
    let (mut sealed_files, mut sealed_values) = (0u64, 0u64);
    let mut notes = Vec::new();
    for r in inv.views() {
        let k = &mut per_kind[kind_rank(r.kind).min(Kind::ALL.len() - 1)];
        k.0 += 1;
        for p in r.stored.iter().filter(|p| !p.ends_with('/')) {
            k.1 += 1;
            k.2 += b.entry_size(p).unwrap_or(0);
        }
        sealed_files += r.stored.iter().filter(|p| p.ends_with(".age")).count() as u64;
        if r.kind == Kind::Secret && r.sealed {
            sealed_values += 1;
        }
        for n in &r.notes {
            notes.push(NoteLine {
                kind: r.kind.as_str().to_string(),
                name: r.name.to_string(),
                note: n.to_string(),
            });
        }
    }
    let kinds = Kind::ALL
        .iter()
        .zip(per_kind)
        .filter(|(_, (records, _, _))| *records > 0)
        .map(|(kind, (records, files, bytes))| KindSummary {
            kind: kind.as_str().to_string(),
            records,
            files,
            bytes,
        })
        .collect();
    let sealed = inv.sealing.as_ref().map(|s: &Sealing| SealedSummary {
        values: sealed_values,
        files: sealed_files,
        recipients: s.recipients,
        recipient_types: s.recipient_types.clone(),
        passphrase: s.passphrase,
    });
    InspectReport {
        format: inv.format.clone(),
        format_version: inv.format_version.clone(),
        bundle_id: inv.bundle_id.clone(),
        bag: b.bag_name().to_string(),
        created: inv.created.clone(),
        tool: inv.tool.clone(),
        source: inv.source.clone(),
        envelope: b.is_envelope(),
        totals: Totals {
            records: (inv.records.len() + inv.summaries.len() + inv.opaque.len()) as u64,
            payload_files: b.payload_files(),
            payload_bytes: b.payload_bytes(),
        },
        kinds,
        sealed,
        unknown_records: inv.opaque.len() as u64,
        notes,
        options: inv.options.clone(),
    }
}

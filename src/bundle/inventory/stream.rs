//! Streaming the inventory into typed records (spec §10.3): a byte guard under the JSON
//! parser, and serde seeds that keep only what the checks need, charging it to a budget.
//!
//! `serde_json::Value` for a whole document costs up to ~40 times its text (a `0,` becomes a
//! 32-byte-plus node), so a 100 MB inventory of tiny values needed gigabytes. Here each record
//! is parsed on its own (as a budgeted `Value`, so the schema checks stay word for word those
//! of [`super::record_problems`]), checked, and converted; unknown top-level fields are skipped.

use super::{
    record_problems, InventoryLimits, OpaqueRecord, Record, RecordSummary, SharedNames, StoredPaths,
};
use crate::model::Kind;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::{self, Read};

/// Top-level fields kept (and checked); any other is skipped unread. Each is required, with
/// `records` (which is streamed, not kept).
pub(super) const KEPT: [&str; 8] = [
    "format",
    "format_version",
    "bundle_id",
    "created",
    "tool",
    "source",
    "options",
    "sealing",
];

/// What is held so far against [`InventoryLimits`].
pub(super) struct Budget {
    limits: InventoryLimits,
    values: Cell<u64>,
    bytes: Cell<u64>,
    records: Cell<u64>,
    exceeded: RefCell<Option<String>>,
}

impl Budget {
    pub(super) fn new(limits: InventoryLimits) -> Self {
        Budget {
            limits,
            values: Cell::new(0),
            bytes: Cell::new(0),
            records: Cell::new(0),
            exceeded: RefCell::new(None),
        }
    }

    /// Why the budget was exceeded, if it was.
    pub(super) fn exceeded(&self) -> Option<String> {
        self.exceeded.borrow().clone()
    }

    fn charge<E: de::Error>(&self, values: u64, bytes: u64) -> Result<(), E> {
        let l = &self.limits;
        let n = self.records.get();
        self.values.set(self.values.get() + values);
        self.bytes.set(self.bytes.get() + bytes);
        let max_values = l.values + l.values_per_record * n;
        let max_bytes = l.string_bytes + l.string_bytes_per_record * n;
        let why = if self.values.get() > max_values {
            format!(
                "holds more than {max_values} JSON values for its {n} records (limit: {} plus {} per record, spec §10.3)",
                l.values, l.values_per_record
            )
        } else if self.bytes.get() > max_bytes {
            format!(
                "holds more than {max_bytes} bytes of strings for its {n} records (limit: {} plus {} per record, spec §10.3)",
                l.string_bytes, l.string_bytes_per_record
            )
        } else {
            return Ok(());
        };
        *self.exceeded.borrow_mut() = Some(why.clone());
        Err(E::custom(why))
    }
}

/// The parsed top level.
pub(super) enum Top {
    /// Not a JSON object.
    NotObject,
    /// An object: its kept fields, and `records` when present.
    Object {
        fields: Map<String, Value>,
        records: Option<Records>,
    },
}

/// The parsed `records` field.
pub(super) enum Records {
    /// Not an array.
    NotArray,
    /// An array: records converted while they passed the checks, and the first problem.
    Array {
        records: Vec<Record>,
        opaque: Vec<OpaqueRecord>,
        /// Records checked as they streamed, kept lean.
        summaries: Vec<RecordSummary>,
        /// Their stored paths (boxed: the enum is moved as the parse returns).
        stored_paths: Box<StoredPaths>,
        /// What the model rules need of the model records among them (boxed, as above).
        model_facts: Box<crate::kinds::model::format::ModelFacts>,
        first_problem: Option<String>,
    },
}

/// How records are kept once parsed: whole, or — for commands that only verify or summarise —
/// with the `meta` of every kind that no later check needs dropped after the record's own
/// rules ran on it as it streamed (issue #15: meta was most of what a record cost).
#[derive(Clone, Copy)]
pub(super) enum Keep<'p> {
    /// Every record whole.
    Full,
    /// Records of the kinds [`super::super::records::checked_alone`] accepts are checked as
    /// they stream, their problems added here, and their `meta` replaced by `null`; their
    /// stored paths share the zip's entry names when given.
    Lean(
        &'p RefCell<crate::bundle::ProblemList>,
        Option<SharedNames<'p>>,
    ),
    /// Every record of a known kind handed whole to the visitor as it streams, and none kept
    /// (for an inventory already checked: `import` reads its records this way, issue #15).
    Visit(&'p dyn Fn(Record)),
}

pub(super) struct TopSeed<'b>(pub(super) &'b Budget, pub(super) Keep<'b>);

impl<'de> DeserializeSeed<'de> for TopSeed<'_> {
    type Value = Top;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Top, D::Error> {
        d.deserialize_any(self)
    }
}

macro_rules! scalars_are {
    ($out:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
            while a.next_element::<IgnoredAny>()?.is_some() {}
            Ok($out)
        }
    };
}

impl<'de> Visitor<'de> for TopSeed<'_> {
    type Value = Top;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    scalars_are!(Top::NotObject);
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Top, A::Error> {
        let mut fields = Map::new();
        let mut records = None;
        while let Some(key) = a.next_key::<String>()? {
            if key == "records" {
                // Records are checked alone only when the version that decides their meta
                // rules came first (as a writer puts it); else they are kept whole and checked
                // after the whole inventory was read.
                let minor = fields
                    .get("format_version")
                    .and_then(Value::as_str)
                    .map(super::minor_of);
                let keep = match (self.1, minor) {
                    (Keep::Lean(p, shared), Some(m)) => Some((p, m, shared)),
                    _ => None,
                };
                let visit = match self.1 {
                    Keep::Visit(v) => Some(v),
                    _ => None,
                };
                records = Some(a.next_value_seed(RecordsSeed(self.0, keep, visit))?);
            } else if KEPT.contains(&key.as_str()) {
                self.0.charge(1, key.len() as u64)?;
                let v = a.next_value_seed(Budgeted(self.0))?;
                fields.insert(key, v);
            } else {
                a.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Top::Object { fields, records })
    }
}

/// The records' seed: the budget, when records are kept lean, where their problems go, the
/// format's minor version and the entry names their stored paths may share, and when they are
/// visited, the visitor.
struct RecordsSeed<'b>(
    &'b Budget,
    Option<(
        &'b RefCell<crate::bundle::ProblemList>,
        u64,
        Option<SharedNames<'b>>,
    )>,
    Option<&'b dyn Fn(Record)>,
);

impl<'de> DeserializeSeed<'de> for RecordsSeed<'_> {
    type Value = Records;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Records, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RecordsSeed<'_> {
    type Value = Records;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of records")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Records, E> {
        Ok(Records::NotArray)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Records, E> {
        Ok(Records::NotArray)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Records, E> {
        Ok(Records::NotArray)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Records, E> {
        Ok(Records::NotArray)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Records, E> {
        Ok(Records::NotArray)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Records, E> {
        Ok(Records::NotArray)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Records, A::Error> {
        while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Records::NotArray)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Records, A::Error> {
        let mut records = Vec::new();
        let mut opaque = Vec::new();
        let mut summaries = Vec::new();
        let shared = self.1.and_then(|(_, _, s)| s);
        let mut stored_paths = StoredPaths::sharing(shared.map(|s| s.names.clone()));
        let find = shared.map(|s| s.find);
        let mut first_problem: Option<String> = None;
        let mut model_facts = crate::kinds::model::format::ModelFacts::default();
        let mut i = 0usize;
        loop {
            if first_problem.is_some() {
                // Only the first problem is reported; the rest is checked for syntax only.
                if a.next_element::<IgnoredAny>()?.is_none() {
                    break;
                }
                continue;
            }
            self.0.records.set(self.0.records.get() + 1);
            let Some(v) = a.next_element_seed(Budgeted(self.0))? else {
                self.0.records.set(self.0.records.get() - 1);
                break;
            };
            if let Some(m) = record_problems(&v).into_iter().next() {
                first_problem = Some(format!("records[{i}]: {m}"));
            } else {
                let known = v["kind"].as_str().and_then(Kind::parse).is_some();
                let converted = if known {
                    serde_json::from_value::<Record>(v).map(|r| {
                        if let Some(visit) = self.2 {
                            visit(r);
                            return;
                        }
                        if let Some((problems, minor, _)) = self.1 {
                            let meta = r.meta.as_object();
                            let versioned = meta.and_then(|m| {
                                super::versioned_meta_problems(minor, r.kind.as_str(), m)
                                    .into_iter()
                                    .next()
                            });
                            if let Some(m) = versioned {
                                first_problem = Some(format!("record {} {}: {m}", r.kind, r.name));
                            } else if crate::bundle::records::check_alone(
                                &r,
                                &mut problems.borrow_mut(),
                                &mut model_facts,
                            ) {
                                summaries.push(RecordSummary::of(r, &mut |p| {
                                    stored_paths.add_with(p, find)
                                }));
                                return;
                            }
                        }
                        records.push(r)
                    })
                } else {
                    serde_json::from_value(v).map(|r| opaque.push(r))
                };
                if let Err(e) = converted {
                    first_problem = Some(format!("records[{i}]: {e}"));
                }
            }
            i += 1;
        }
        // The vectors grew by doubling: up to half of each is spare, and they are kept for
        // the command's life (issue #15).
        records.shrink_to_fit();
        opaque.shrink_to_fit();
        summaries.shrink_to_fit();
        stored_paths.own.shrink_to_fit();
        model_facts.shrink();
        Ok(Records::Array {
            records,
            opaque,
            summaries,
            stored_paths: Box::new(stored_paths),
            model_facts: Box::new(model_facts),
            first_problem,
        })
    }
}

/// Deserializes any JSON value, charging every node and string byte to the budget before
/// keeping it.
struct Budgeted<'b>(&'b Budget);

impl<'de> DeserializeSeed<'de> for Budgeted<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Budgeted<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.0.charge(1, 0)?;
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.0.charge(1, 0)?;
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.0.charge(1, 0)?;
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.0.charge(1, 0)?;
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.0.charge(1, v.len() as u64)?;
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.0.charge(1, v.len() as u64)?;
        Ok(Value::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.0.charge(1, 0)?;
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
        self.0.charge(1, 0)?;
        let mut v = Vec::new();
        while let Some(x) = a.next_element_seed(Budgeted(self.0))? {
            v.push(x);
        }
        Ok(Value::Array(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
        self.0.charge(1, 0)?;
        let mut m = Map::new();
        while let Some(k) = a.next_key::<String>()? {
            self.0.charge(1, k.len() as u64)?;
            let v = a.next_value_seed(Budgeted(self.0))?;
            m.insert(k, v);
        }
        Ok(Value::Object(m))
    }
}

/// Sits under the JSON parser and refuses, before the parser buffers anything, what would make
/// it hold unbounded memory even for skipped values: a string or number token longer than
/// [`InventoryLimits::token_bytes`], nesting deeper than [`InventoryLimits::depth`]. It also
/// refuses a byte-order mark and bytes that are not UTF-8 (skipped strings are not checked by
/// the parser).
pub(super) struct Guard<R> {
    inner: R,
    limits: InventoryLimits,
    at_start: bool,
    in_string: bool,
    escape: bool,
    token: u64,
    depth: u32,
    /// Bytes of an incomplete UTF-8 sequence carried to the next read.
    carry: Vec<u8>,
    failure: Option<String>,
}

impl<R: Read> Guard<R> {
    pub(super) fn new(inner: R) -> Self {
        Guard {
            inner,
            limits: InventoryLimits::SPEC,
            at_start: true,
            in_string: false,
            escape: false,
            token: 0,
            depth: 0,
            carry: Vec::new(),
            failure: None,
        }
    }

    /// Why the guard stopped the stream, if it did.
    pub(super) fn failure(&self) -> Option<String> {
        self.failure.clone()
    }

    fn fail(&mut self, why: String) -> io::Error {
        self.failure = Some(why.clone());
        io::Error::new(io::ErrorKind::InvalidData, why)
    }

    fn scan(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.at_start && !buf.is_empty() {
            // A BOM is split across reads only by a pathological reader; check what is here.
            if buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
                return Err(self.fail("starts with a byte-order mark".into()));
            }
            self.at_start = false;
        }
        // UTF-8, carrying an incomplete sequence at the end to the next read.
        let mut joined;
        let text: &[u8] = if self.carry.is_empty() {
            buf
        } else {
            joined = std::mem::take(&mut self.carry);
            joined.extend_from_slice(buf);
            &joined
        };
        if let Err(e) = std::str::from_utf8(text) {
            if e.error_len().is_some() {
                return Err(self.fail("not UTF-8".into()));
            }
            self.carry = text[e.valid_up_to()..].to_vec();
        }
        for &b in buf {
            if self.in_string {
                self.token += 1;
                if self.escape {
                    self.escape = false;
                } else if b == b'\\' {
                    self.escape = true;
                } else if b == b'"' {
                    self.in_string = false;
                    self.token = 0;
                }
            } else {
                match b {
                    b'"' => {
                        self.in_string = true;
                        self.token = 0;
                    }
                    b'[' | b'{' => {
                        self.depth += 1;
                        self.token = 0;
                        if self.depth > self.limits.depth {
                            return Err(self.fail(format!(
                                "nests arrays and objects more than {} deep",
                                self.limits.depth
                            )));
                        }
                    }
                    b']' | b'}' => {
                        self.depth = self.depth.saturating_sub(1);
                        self.token = 0;
                    }
                    b',' | b':' | b' ' | b'\n' | b'\r' | b'\t' => self.token = 0,
                    _ => self.token += 1,
                }
            }
            if self.token > self.limits.token_bytes {
                return Err(self.fail(format!(
                    "holds a string or number longer than {} bytes",
                    self.limits.token_bytes
                )));
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(why) = &self.failure {
            return Err(io::Error::new(io::ErrorKind::InvalidData, why.clone()));
        }
        let n = self.inner.read(buf)?;
        if n == 0 && !self.carry.is_empty() {
            return Err(self.fail("not UTF-8 (ends inside a character)".into()));
        }
        self.scan(&buf[..n])?;
        Ok(n)
    }
}

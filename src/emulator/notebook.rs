//! Notebook formats: the SOURCE text a notebook is stored as, and the conversions to and from
//! Jupyter, HTML, DBC archives and R Markdown that export and import speak.
//!
//! A notebook is held as its SOURCE export (header line, cells separated by `COMMAND` lines) plus
//! the size of its cell outputs. Rich exports carry those outputs as deterministic filler text, so
//! that a notebook can exceed the 10 MB export limit in `JUPYTER`/`HTML`/`DBC` while its `SOURCE`
//! does not, as real notebooks with large outputs do.

use std::io::{Cursor, Read, Write};

use serde_json::{json, Value};

use crate::model::workspace::Language;

use super::extract::b64;

/// The line between two cells of a SOURCE export.
pub(crate) fn separator(lang: Language) -> &'static str {
    match lang {
        Language::Scala => "// COMMAND ----------",
        Language::Sql => "-- COMMAND ----------",
        Language::Python | Language::R => "# COMMAND ----------",
    }
}

/// The comment prefix of `MAGIC` lines.
fn magic_prefix(lang: Language) -> &'static str {
    match lang {
        Language::Scala => "// MAGIC ",
        Language::Sql => "-- MAGIC ",
        Language::Python | Language::R => "# MAGIC ",
    }
}

/// The lowercase language name Jupyter and DBC use.
pub(crate) fn lang_name(lang: Language) -> &'static str {
    match lang {
        Language::Python => "python",
        Language::Scala => "scala",
        Language::Sql => "sql",
        Language::R => "r",
    }
}

fn lang_from_name(s: &str) -> Option<Language> {
    match s.to_ascii_lowercase().as_str() {
        "python" | "python3" => Some(Language::Python),
        "scala" => Some(Language::Scala),
        "sql" => Some(Language::Sql),
        "r" => Some(Language::R),
        _ => None,
    }
}

/// True when `content` begins with the SOURCE header of `lang`.
pub(crate) fn has_header(lang: Language, content: &[u8]) -> bool {
    let header = lang.source_header().as_bytes();
    content.starts_with(header)
        && matches!(content.get(header.len()), None | Some(b'\n') | Some(b'\r'))
}

/// The stored form of imported SOURCE text: as given when it carries the header, else with the
/// header line put in front (real exports always begin with it).
pub(crate) fn normalize_source(lang: Language, content: &[u8]) -> Vec<u8> {
    if has_header(lang, content) {
        return content.to_vec();
    }
    let mut out = Vec::with_capacity(content.len() + 40);
    out.extend_from_slice(lang.source_header().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(content);
    out
}

/// The cells of a SOURCE text.
pub(crate) fn cells(lang: Language, source: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(source);
    let mut lines = text.lines().peekable();
    if lines
        .peek()
        .is_some_and(|l| l.trim_end() == lang.source_header())
    {
        lines.next();
    }
    let sep = separator(lang);
    let mut cells = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in lines {
        if line.trim_end() == sep {
            cells.push(trim_blank(&current));
            current.clear();
        } else {
            current.push(line);
        }
    }
    cells.push(trim_blank(&current));
    cells
}

fn trim_blank(lines: &[&str]) -> String {
    let start = lines
        .iter()
        .position(|l| !l.trim().is_empty())
        .unwrap_or(lines.len());
    let end = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map(|i| i + 1)
        .unwrap_or(start);
    lines[start..end.max(start)].join("\n")
}

/// SOURCE text from cells.
pub(crate) fn source_from_cells(lang: Language, cells: &[String]) -> Vec<u8> {
    let mut out = String::new();
    out.push_str(lang.source_header());
    out.push('\n');
    let joiner = format!("\n\n{}\n\n", separator(lang));
    out.push_str(&cells.join(&joiner));
    out.push('\n');
    out.into_bytes()
}

/// `n` bytes of deterministic cell output.
pub(crate) fn filler(n: u64) -> String {
    const LINE: &str = "emulated cell output line of a dbxport emulator notebook\n";
    let mut s = String::with_capacity(n as usize);
    while (s.len() as u64) < n {
        let left = (n as usize) - s.len();
        s.push_str(&LINE[..left.min(LINE.len())]);
    }
    s
}

/// A parsed notebook from any rich format.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Parsed {
    pub language: Language,
    pub source: Vec<u8>,
    pub outputs_bytes: u64,
}

/// Jupyter (`.ipynb`) export.
pub(crate) fn to_jupyter(
    name: &str,
    lang: Language,
    source: &[u8],
    outputs_bytes: u64,
    with_outputs: bool,
) -> Vec<u8> {
    let cells: Vec<Value> = cells(lang, source)
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let outputs = if i == 0 && with_outputs && outputs_bytes > 0 {
                json!([{"name": "stdout", "output_type": "stream", "text": filler(outputs_bytes)}])
            } else {
                json!([])
            };
            json!({
                "cell_type": "code",
                "execution_count": null,
                "metadata": {},
                "outputs": outputs,
                "source": split_keep_newlines(&c),
            })
        })
        .collect();
    let nb = json!({
        "cells": cells,
        "metadata": {
            "application/vnd.databricks.v1+notebook": {
                "language": lang_name(lang),
                "notebookName": name,
            },
            "language_info": {"name": lang_name(lang)},
        },
        "nbformat": 4,
        "nbformat_minor": 0,
    });
    serde_json::to_vec_pretty(&nb).unwrap_or_default()
}

fn split_keep_newlines(s: &str) -> Vec<String> {
    s.split_inclusive('\n').map(str::to_string).collect()
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => String::new(),
    }
}

/// Parses a Jupyter notebook. `fallback` is used when it names no language.
pub(crate) fn from_jupyter(bytes: &[u8], fallback: Option<Language>) -> Result<Parsed, String> {
    let nb: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not a Jupyter notebook: {e}"))?;
    let cells = nb
        .get("cells")
        .and_then(Value::as_array)
        .ok_or("not a Jupyter notebook: no cells")?;
    let meta = nb.get("metadata");
    let named = meta
        .and_then(|m| m.get("application/vnd.databricks.v1+notebook"))
        .and_then(|m| m.get("language"))
        .or_else(|| {
            meta.and_then(|m| m.get("language_info"))
                .and_then(|l| l.get("name"))
        })
        .or_else(|| {
            meta.and_then(|m| m.get("kernelspec"))
                .and_then(|k| k.get("language"))
        })
        .and_then(Value::as_str)
        .and_then(lang_from_name);
    let lang = named.or(fallback).unwrap_or(Language::Python);
    let mut out_cells = Vec::new();
    let mut outputs_bytes = 0u64;
    for c in cells {
        let text = text_of(c.get("source").unwrap_or(&Value::Null));
        let kind = c.get("cell_type").and_then(Value::as_str).unwrap_or("code");
        if kind == "markdown" {
            let prefix = magic_prefix(lang);
            let mut lines = vec![format!("{prefix}%md")];
            lines.extend(text.lines().map(|l| format!("{prefix}{l}")));
            out_cells.push(lines.join("\n"));
        } else {
            out_cells.push(text.trim_end_matches('\n').to_string());
        }
        for o in c
            .get("outputs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(t) = o.get("text") {
                outputs_bytes += text_of(t).len() as u64;
            }
        }
    }
    Ok(Parsed {
        language: lang,
        source: source_from_cells(lang, &out_cells),
        outputs_bytes,
    })
}

/// The notebook model DBC archives and HTML exports embed.
pub(crate) fn notebook_json(
    name: &str,
    lang: Language,
    source: &[u8],
    outputs_bytes: u64,
    with_outputs: bool,
    orig_id: i64,
) -> Value {
    let commands: Vec<Value> = cells(lang, source)
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let results = if i == 0 && with_outputs && outputs_bytes > 0 {
                json!({"type": "raw", "data": filler(outputs_bytes)})
            } else {
                Value::Null
            };
            json!({
                "version": "CommandV1",
                "origId": orig_id * 1000 + i as i64 + 1,
                "guid": format!("{:08x}-0000-4000-8000-{:012x}", orig_id, i),
                "subtype": "command",
                "commandType": "auto",
                "position": (i + 1) as f64,
                "command": c,
                "results": results,
            })
        })
        .collect();
    json!({
        "version": "NotebookV1",
        "origId": orig_id,
        "name": name,
        "language": lang_name(lang),
        "commands": commands,
        "dashboards": [],
        "guid": format!("{:08x}-0000-4000-8000-000000000000", orig_id),
        "globalVars": {},
        "iPythonMetadata": null,
        "inputWidgets": {},
    })
}

/// Parses the notebook model of a DBC entry or HTML export.
pub(crate) fn from_notebook_json(v: &Value) -> Result<Parsed, String> {
    let lang = v
        .get("language")
        .and_then(Value::as_str)
        .and_then(lang_from_name)
        .ok_or("notebook model names no language")?;
    let mut commands: Vec<&Value> = v
        .get("commands")
        .and_then(Value::as_array)
        .ok_or("notebook model has no commands")?
        .iter()
        .collect();
    commands.sort_by(|a, b| {
        let pa = a.get("position").and_then(Value::as_f64).unwrap_or(0.0);
        let pb = b.get("position").and_then(Value::as_f64).unwrap_or(0.0);
        pa.total_cmp(&pb)
    });
    let mut cells = Vec::new();
    let mut outputs_bytes = 0u64;
    for c in commands {
        cells.push(
            c.get("command")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        );
        if let Some(d) = c
            .get("results")
            .and_then(|r| r.get("data"))
            .and_then(Value::as_str)
        {
            outputs_bytes += d.len() as u64;
        }
    }
    Ok(Parsed {
        language: lang,
        source: source_from_cells(lang, &cells),
        outputs_bytes,
    })
}

const HTML_MARK: &str = "__DATABRICKS_NOTEBOOK_MODEL = '";

/// HTML export: a page embedding the notebook model as base64.
pub(crate) fn to_html(
    name: &str,
    lang: Language,
    source: &[u8],
    outputs_bytes: u64,
    orig_id: i64,
) -> Vec<u8> {
    let model = notebook_json(name, lang, source, outputs_bytes, true, orig_id);
    let encoded = b64(&serde_json::to_vec(&model).unwrap_or_default());
    let title = name
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>{title} - Databricks</title>\n\
         <script>\nwindow.{HTML_MARK}{encoded}';\n</script>\n</head>\n<body>\n</body>\n</html>\n"
    )
    .into_bytes()
}

/// Parses an HTML export.
pub(crate) fn from_html(bytes: &[u8]) -> Result<Parsed, String> {
    use base64::Engine as _;
    let text = String::from_utf8_lossy(bytes);
    let start = text
        .find(HTML_MARK)
        .ok_or("HTML holds no Databricks notebook model")?
        + HTML_MARK.len();
    let end = text[start..]
        .find('\'')
        .ok_or("HTML notebook model is not terminated")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(text[start..start + end].trim())
        .map_err(|_| "HTML notebook model is not base64")?;
    let v: Value = serde_json::from_slice(&raw).map_err(|e| format!("HTML notebook model: {e}"))?;
    from_notebook_json(&v)
}

/// R Markdown export of an R notebook.
pub(crate) fn to_rmd(name: &str, source: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "---\ntitle: \"{}\"\noutput: html_document\n---\n",
        name.replace('"', "'")
    );
    for c in cells(Language::R, source) {
        out.push_str("\n```{r}\n");
        out.push_str(&c);
        out.push_str("\n```\n");
    }
    out.into_bytes()
}

/// Parses R Markdown into an R notebook: chunks become cells, prose becomes `%md` cells.
pub(crate) fn from_rmd(bytes: &[u8]) -> Parsed {
    let text = String::from_utf8_lossy(bytes);
    let mut body = text.as_ref();
    if let Some(rest) = body.strip_prefix("---\n") {
        if let Some(i) = rest.find("\n---\n") {
            body = &rest[i + 5..];
        }
    }
    let mut cells = Vec::new();
    let mut prose: Vec<&str> = Vec::new();
    let mut chunk: Option<Vec<&str>> = None;
    let flush_prose = |prose: &mut Vec<&str>, cells: &mut Vec<String>| {
        let t = trim_blank(prose);
        if !t.is_empty() {
            let mut lines = vec!["# MAGIC %md".to_string()];
            lines.extend(t.lines().map(|l| format!("# MAGIC {l}")));
            cells.push(lines.join("\n"));
        }
        prose.clear();
    };
    for line in body.lines() {
        match &mut chunk {
            Some(c) if line.trim_start().starts_with("```") => {
                cells.push(trim_blank(c));
                chunk = None;
            }
            Some(c) => c.push(line),
            None if line.trim_start().starts_with("```{") => {
                flush_prose(&mut prose, &mut cells);
                chunk = Some(Vec::new());
            }
            None => prose.push(line),
        }
    }
    if let Some(c) = chunk {
        cells.push(trim_blank(&c));
    }
    flush_prose(&mut prose, &mut cells);
    Parsed {
        language: Language::R,
        source: source_from_cells(Language::R, &cells),
        outputs_bytes: 0,
    }
}

/// The DBC entry suffix of a language.
pub(crate) fn dbc_suffix(lang: Language) -> &'static str {
    lang_name(lang)
}

/// A zip archive of `(name, bytes)` entries with fixed timestamps.
pub(crate) fn zip(entries: &[(String, Vec<u8>)]) -> Result<Vec<u8>, String> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default());
    for (name, data) in entries {
        if let Some(dir) = name.strip_suffix('/') {
            w.add_directory(dir, opts).map_err(|e| e.to_string())?;
        } else {
            w.start_file(name.as_str(), opts)
                .map_err(|e| e.to_string())?;
            w.write_all(data).map_err(|e| e.to_string())?;
        }
    }
    Ok(w.finish().map_err(|e| e.to_string())?.into_inner())
}

/// True when `bytes` starts like a zip archive.
pub(crate) fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06")
}

/// The file entries of a zip archive (directories skipped), with safe relative names.
pub(crate) fn unzip(bytes: &[u8], limit: u64) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut a =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| format!("not a zip archive: {e}"))?;
    let mut out = Vec::new();
    let mut total = 0u64;
    for i in 0..a.len() {
        let mut f = a.by_index(i).map_err(|e| e.to_string())?;
        if f.is_dir() {
            continue;
        }
        let name = f
            .enclosed_name()
            .ok_or("archive entry with an unsafe name")?
            .to_string_lossy()
            .replace('\\', "/");
        let mut data = Vec::new();
        (&mut f)
            .take(limit.saturating_sub(total) + 1)
            .read_to_end(&mut data)
            .map_err(|e| e.to_string())?;
        total += data.len() as u64;
        if total > limit {
            return Err("archive expands beyond the size limit".to_string());
        }
        out.push((name, data));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "# Databricks notebook source\nprint(1)\n\n# COMMAND ----------\n\n# MAGIC %md\n# MAGIC hello\n";

    #[test]
    fn cells_round_trip() {
        let c = cells(Language::Python, SRC.as_bytes());
        assert_eq!(c, vec!["print(1)", "# MAGIC %md\n# MAGIC hello"]);
        assert_eq!(source_from_cells(Language::Python, &c), SRC.as_bytes());
    }

    #[test]
    fn rich_formats_round_trip() {
        let j = to_jupyter("n", Language::Python, SRC.as_bytes(), 1234, true);
        let p = from_jupyter(&j, None).unwrap();
        assert_eq!(p.source, SRC.as_bytes());
        assert_eq!(p.outputs_bytes, 1234);
        let h = to_html(
            "n<x>",
            Language::Sql,
            b"-- Databricks notebook source\nselect 1\n",
            10,
            7,
        );
        let p = from_html(&h).unwrap();
        assert_eq!(p.language, Language::Sql);
        assert_eq!(p.source, b"-- Databricks notebook source\nselect 1\n");
        assert_eq!(p.outputs_bytes, 10);
        let r = to_rmd(
            "r",
            b"# Databricks notebook source\nx <- 1\n\n# COMMAND ----------\n\ny\n",
        );
        assert_eq!(
            from_rmd(&r).source,
            b"# Databricks notebook source\nx <- 1\n\n# COMMAND ----------\n\ny\n"
        );
    }

    #[test]
    fn zip_round_trip() {
        let z = zip(&[("a/b.python".into(), b"x".to_vec()), ("c/".into(), vec![])]).unwrap();
        assert!(is_zip(&z));
        assert_eq!(
            unzip(&z, 100).unwrap(),
            vec![("a/b.python".to_string(), b"x".to_vec())]
        );
        assert!(unzip(&z, 0).is_err());
    }

    #[test]
    fn filler_is_exact() {
        assert_eq!(filler(0).len(), 0);
        assert_eq!(filler(1000).len(), 1000);
    }
}

//! One printer for any nested reply (`show wan`, `pd`, `tunnel`, `lan`):
//! aligned `key  value` lines, nested objects as indented blocks, lists of
//! flat objects (addresses, routers, prefixes) as tables. Commands only
//! say in which order their keys read best and what a `null` means;
//! fields this ipoectl does not know still print, after the known ones.

use std::cmp::Ordering;
use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::table::{Align, Table};
use crate::val::{ago, bytes, duration, items, label, left, text, NONE};

/// How one command's reply reads best.
#[derive(Default)]
pub struct Style<'a> {
    /// Key order of the object under each key (`""` for the top level);
    /// keys not listed follow in alphabetical order.
    pub order: &'a [(&'a str, &'a [&'a str])],
    /// What `null` means for a key where `-` would hide it (`mss_clamp`
    /// null is `off`).
    pub nulls: &'a [(&'a str, &'a str)],
    /// A `null` time left (`*left_s`) means "does not expire" rather than
    /// "unknown".
    pub infinite: bool,
}

pub fn render(v: &Value, style: &Style) -> String {
    let mut out = String::new();
    match v {
        Value::Object(map) => object(map, "", 0, style, &mut out),
        other => {
            let _ = writeln!(out, "{}", text(other));
        }
    }
    out
}

fn object(map: &Map<String, Value>, parent: &str, indent: usize, style: &Style, out: &mut String) {
    let keys = ordered(map.keys(), parent, style);
    let width = keys
        .iter()
        .filter(|k| is_flat(&map[k.as_str()]))
        .map(|k| label(k).chars().count())
        .max()
        .unwrap_or(0);
    let pad = " ".repeat(indent);
    for key in keys {
        let v = &map[key.as_str()];
        let name = label(key);
        if is_flat(v) {
            let _ = writeln!(out, "{pad}{name:width$}  {}", field(key, v, style));
        } else if let Value::Object(inner) = v {
            let _ = writeln!(out, "{pad}{name}:");
            object(inner, key, indent + 2, style, out);
        } else if items(v).all(is_flat_object) {
            let _ = writeln!(out, "{pad}{name}:");
            out.push_str(&table(v, key, indent + 2, style));
        } else {
            let _ = writeln!(out, "{pad}{name}:");
            list(v, key, indent + 2, style, out);
        }
    }
}

/// A list whose elements are nested: one `-` block per element.
fn list(v: &Value, key: &str, indent: usize, style: &Style, out: &mut String) {
    let pad = " ".repeat(indent);
    for item in items(v) {
        match item {
            Value::Object(inner) => {
                let _ = writeln!(out, "{pad}-");
                object(inner, key, indent + 2, style, out);
            }
            other => {
                let _ = writeln!(out, "{pad}- {}", field(key, other, style));
            }
        }
    }
}

/// A list of flat objects as a table; its columns are the union of their
/// keys, numbers right-aligned.
fn table(v: &Value, key: &str, indent: usize, style: &Style) -> String {
    let rows: Vec<&Map<String, Value>> = items(v).filter_map(Value::as_object).collect();
    let mut cols: Vec<&String> = Vec::new();
    for k in rows.iter().flat_map(|r| r.keys()) {
        if !cols.contains(&k) {
            cols.push(k);
        }
    }
    let cols = ordered(cols.into_iter(), key, style);
    let head = cols
        .iter()
        .map(|c| {
            let numeric = rows
                .iter()
                .flat_map(|r| r.get(*c))
                .all(|x| x.is_number() || x.is_null());
            (label(c), if numeric { Align::Right } else { Align::Left })
        })
        .collect();
    let mut t = Table::with_columns(head).indent(indent);
    for r in &rows {
        t.row(
            cols.iter()
                .map(|c| field(c, r.get(*c).unwrap_or(&Value::Null), style))
                .collect(),
        );
    }
    if t.is_empty() {
        format!("{}{NONE}\n", " ".repeat(indent))
    } else {
        t.render()
    }
}

/// Keys in the command's preferred order, unknown ones after, sorted.
fn ordered<'k>(
    keys: impl Iterator<Item = &'k String>,
    parent: &str,
    style: &Style,
) -> Vec<&'k String> {
    let order: &[&str] = style
        .order
        .iter()
        .find(|(p, _)| *p == parent)
        .map_or(&[], |(_, o)| o);
    let rank = |k: &str| order.iter().position(|o| *o == k).unwrap_or(usize::MAX);
    let mut keys: Vec<&String> = keys.collect();
    keys.sort_by(|a, b| match rank(a).cmp(&rank(b)) {
        Ordering::Equal => a.cmp(b),
        o => o,
    });
    keys
}

/// A scalar, or a list of scalars: fits on one line.
fn is_flat(v: &Value) -> bool {
    match v {
        Value::Object(_) => false,
        Value::Array(a) => a.iter().all(|x| !x.is_object() && !x.is_array()),
        _ => true,
    }
}

fn is_flat_object(v: &Value) -> bool {
    v.as_object().is_some_and(|m| m.values().all(is_flat))
}

/// A value as its key says to read it: `_s` durations humanised, `_s_ago`
/// as "… ago", time left with its `null` meaning, byte counts with units.
pub fn field(key: &str, v: &Value, style: &Style) -> String {
    if v.is_null() {
        if let Some((_, word)) = style.nulls.iter().find(|(k, _)| *k == key) {
            return (*word).to_string();
        }
    }
    if key.ends_with("_s_ago") {
        ago(v)
    } else if key.ends_with("left_s") {
        left(v, if style.infinite { "infinite" } else { NONE })
    } else if key.ends_with("_s") {
        match v {
            Value::Array(a) if !a.is_empty() => {
                let sep = if key == "interval_s" { " to " } else { ", " };
                a.iter().map(duration).collect::<Vec<_>>().join(sep)
            }
            other => duration(other),
        }
    } else if key.ends_with("bytes") {
        bytes(v)
    } else {
        text(v)
    }
}

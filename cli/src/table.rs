//! Aligned text: tables whose column widths come from their content, and
//! `key  value` blocks. Fixed widths break as soon as an IPv6 address or a
//! large counter shows up, so everything here measures first.

use std::fmt::Write as _;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    /// Numbers, so their digits line up.
    Right,
}

pub struct Table {
    head: Vec<(String, Align)>,
    rows: Vec<Vec<String>>,
    indent: usize,
}

impl Table {
    pub fn new(head: &[(&str, Align)]) -> Self {
        Table {
            head: head.iter().map(|(h, a)| (h.to_string(), *a)).collect(),
            rows: Vec::new(),
            indent: 0,
        }
    }

    /// Columns given at run time (the generic printer's tables).
    pub fn with_columns(head: Vec<(String, Align)>) -> Self {
        Table {
            head,
            rows: Vec::new(),
            indent: 0,
        }
    }

    /// Spaces before every line, for a table nested under a heading.
    pub fn indent(mut self, n: usize) -> Self {
        self.indent = n;
        self
    }

    /// A row; missing cells print empty, extra cells are dropped.
    pub fn row(&mut self, mut cells: Vec<String>) {
        cells.resize(self.head.len(), String::new());
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// The header line and every row, each ending in a newline.
    pub fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.head.len())
            .map(|c| {
                self.rows
                    .iter()
                    .map(|r| width(&r[c]))
                    .chain([width(&self.head[c].0)])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        let head: Vec<String> = self.head.iter().map(|(h, _)| h.clone()).collect();
        for cells in std::iter::once(&head).chain(&self.rows) {
            self.line(cells, &widths, &mut out);
        }
        out
    }

    fn line(&self, cells: &[String], widths: &[usize], out: &mut String) {
        let mut line = " ".repeat(self.indent);
        for (c, cell) in cells.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            let pad = " ".repeat(widths[c].saturating_sub(width(cell)));
            match self.head[c].1 {
                Align::Right => {
                    line.push_str(&pad);
                    line.push_str(cell);
                }
                Align::Left => {
                    line.push_str(cell);
                    line.push_str(&pad);
                }
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// Characters, not bytes: MACs and addresses are ASCII, but a hostname
/// from a DHCP client need not be.
fn width(s: &str) -> usize {
    s.chars().count()
}

/// `key  value` lines with the values in one column.
pub fn kv(pairs: &[(String, String)], indent: usize) -> String {
    let w = pairs.iter().map(|(k, _)| width(k)).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in pairs {
        let pad = " ".repeat(w - width(k));
        let _ = writeln!(out, "{}{k}{pad}  {v}", " ".repeat(indent));
    }
    out
}

/// Builds a `kv` block field by field.
#[derive(Default)]
pub struct Kv(pub Vec<(String, String)>);

impl Kv {
    pub fn add(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.0.push((key.to_string(), value.into()));
        self
    }

    pub fn render(&self, indent: usize) -> String {
        kv(&self.0, indent)
    }
}

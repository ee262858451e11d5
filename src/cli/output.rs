//! Output formats shared by every subcommand: a readable table by default, or JSON/YAML for
//! scripts.

use std::io::Write;

use anyhow::Context;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Human-readable tables.
    #[default]
    Table,
    /// JSON, a stable contract for scripts.
    Json,
    /// YAML, same content as JSON.
    Yaml,
}

/// Write `value` as JSON or YAML; `None` for `Format::Table` (the caller renders its own).
pub fn write_structured<T: Serialize>(
    out: &mut impl Write,
    format: Format,
    value: &T,
) -> anyhow::Result<bool> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, value)
                .map_err(std::io::Error::from)
                .context("writing JSON")?;
            writeln!(out)?;
        }
        Format::Yaml => {
            serde_yaml::to_writer(&mut *out, value).context("writing YAML")?;
        }
        Format::Table => return Ok(false),
    }
    Ok(true)
}

/// A table with a header row, sized to the terminal when there is one.
pub fn table(header: &[&str]) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    t
}

/// `-` for unknown facts in tables (JSON says null).
pub fn or_dash<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "-".to_string(), ToString::to_string)
}

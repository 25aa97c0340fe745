//! `veil catalogue`: the built-in detectors a bundle can name in
//! `{"detector": {"builtin": ID}}`, straight from the engine so the list
//! can never drift from what the proxy runs.

use anyhow::Result;
use serde_json::json;
use std::io::Write;
use std::process::ExitCode;
use veil_engine::detectors::{full_catalogue_bundle, ALL_BUILTINS};

pub fn run(as_json: bool, as_bundle: bool, out: &mut impl Write) -> Result<ExitCode> {
    if as_bundle {
        writeln!(out, "{}", full_catalogue_bundle())?;
        return Ok(ExitCode::SUCCESS);
    }
    let infos: Vec<_> = ALL_BUILTINS.iter().map(|b| b.info()).collect();
    if as_json {
        for i in &infos {
            let line = json!({"id": i.id, "category": i.category, "summary": i.summary, "example": i.example});
            writeln!(out, "{line}")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let id_w = infos.iter().map(|i| i.id.len()).max().unwrap_or(0).max(2);
    let cat_w = infos
        .iter()
        .map(|i| i.category.len())
        .max()
        .unwrap_or(0)
        .max(8);
    writeln!(out, "{:id_w$}  {:cat_w$}  SUMMARY", "ID", "CATEGORY")?;
    for i in &infos {
        writeln!(out, "{:id_w$}  {:cat_w$}  {}", i.id, i.category, i.summary)?;
    }
    Ok(ExitCode::SUCCESS)
}

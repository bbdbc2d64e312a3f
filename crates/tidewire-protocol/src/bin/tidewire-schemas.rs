//! Regenerates the checked-in JSON Schemas and the requirement list:
//! `cargo run -p tidewire-protocol --bin tidewire-schemas [DIR]`.
//!
//! The schemas are written to DIR (default `spec/schema/`). The requirements
//! are extracted from `PROTOCOL.md` in DIR's parent directory (`spec/`) and
//! written next to it as `requirements.json`; with an explicit DIR whose parent
//! holds no `PROTOCOL.md`, that step is skipped.
//! The AsyncAPI document is written to DIR's parent as `asyncapi.json`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tidewire_protocol::requirements;

fn main() -> ExitCode {
    let explicit = std::env::args_os().nth(1).map(PathBuf::from);
    let dir = explicit
        .clone()
        .unwrap_or_else(tidewire_protocol::schema::default_schema_dir);
    match tidewire_protocol::schema::write_all(&dir) {
        Ok(files) => println!("wrote {} schema files to {}", files.len(), dir.display()),
        Err(err) => {
            eprintln!("error: cannot write schemas to {}: {err}", dir.display());
            return ExitCode::FAILURE;
        }
    }
    let spec_dir = match &explicit {
        Some(dir) => dir.parent().unwrap_or(Path::new(".")).to_path_buf(),
        None => requirements::default_spec_dir(),
    };
    let asyncapi = spec_dir.join("asyncapi.json");
    match tidewire_protocol::asyncapi::write(&asyncapi) {
        Ok(()) => println!("wrote {}", asyncapi.display()),
        Err(err) => {
            eprintln!("error: cannot write {}: {err}", asyncapi.display());
            return ExitCode::FAILURE;
        }
    }
    let spec = spec_dir.join("PROTOCOL.md");
    if explicit.is_some() && !spec.exists() {
        println!("no {}; requirements.json not written", spec.display());
        return ExitCode::SUCCESS;
    }
    let target = spec_dir.join("requirements.json");
    let written = requirements::extract_file(&spec).and_then(|found| {
        std::fs::write(&target, requirements::to_json(&found))
            .map(|()| found.len())
            .map_err(|err| format!("cannot write {}: {err}", target.display()))
    });
    match written {
        Ok(count) => {
            println!("wrote {count} requirements to {}", target.display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

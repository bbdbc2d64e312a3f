//! Regenerates the checked-in JSON Schemas: `cargo run -p tidewire-protocol --bin tidewire-schemas [DIR]`.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(tidewire_protocol::schema::default_schema_dir);
    match tidewire_protocol::schema::write_all(&dir) {
        Ok(files) => {
            println!("wrote {} schema files to {}", files.len(), dir.display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: cannot write schemas to {}: {err}", dir.display());
            ExitCode::FAILURE
        }
    }
}

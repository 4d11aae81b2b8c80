//! The program's IDL, generated from source the way `anchor idl build` does.
use std::path::{Path, PathBuf};

/// Where the IDL is committed for auditors and clients.
pub fn committed_path() -> PathBuf {
    workspace_root().join("idl/escrow.json")
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Builds the IDL (a host `cargo test` of the program with `idl-build`) and returns it as
/// pretty JSON with a trailing newline.
pub fn generate() -> anyhow::Result<String> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
        .join("idl-build");
    // anchor-lang-idl turns RUSTUP_TOOLCHAIN into a `+toolchain` argument it mis-formats; the
    // toolchain cargo itself resolves is the right one anyway.
    std::env::remove_var("RUSTUP_TOOLCHAIN");
    let idl = anchor_lang_idl::build::IdlBuilder::new()
        .program_path(workspace_root().join("programs/escrow"))
        .cargo_args(vec![
            "--locked".into(),
            "--target-dir".into(),
            target.display().to_string(),
        ])
        .build()?;
    Ok(serde_json::to_string_pretty(&idl)? + "\n")
}

//! Generates the program's IDL on the host with anchor-lang's `idl-build` feature, as
//! `anchor idl build` does, and writes it to the path given (default: stdout).
//!
//! The build uses its own target dir so it can run while another cargo holds the main one.

fn main() {
    let out = std::env::args().nth(1);
    match escrow_tests::idl::generate() {
        Ok(json) => match out {
            Some(path) => {
                std::fs::write(&path, json).unwrap_or_else(|e| panic!("write {path}: {e}"))
            }
            None => print!("{json}"),
        },
        Err(e) => {
            eprintln!("idl: {e:#}");
            std::process::exit(1);
        }
    }
}

//! Prints the compute units of each escrow instruction (LiteSVM, real `.so`) and its size.
fn main() {
    let so_bytes = std::fs::metadata(escrow_tests::program_path())
        .map(|m| m.len())
        .unwrap_or(0);
    print!(
        "{}",
        escrow_tests::cu::markdown(&escrow_tests::cu::measure(), so_bytes)
    );
}

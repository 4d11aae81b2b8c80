//! Prints each escrow instruction's compute units and transaction size (LiteSVM, the real
//! `.so`), the rent an open escrow holds, and the program's size.
fn main() {
    let so_bytes = std::fs::metadata(escrow_tests::program_path())
        .map(|m| m.len())
        .unwrap_or(0);
    print!(
        "{}",
        escrow_tests::cu::markdown(
            &escrow_tests::cu::measure(),
            so_bytes,
            &escrow_tests::cu::rent()
        )
    );
}

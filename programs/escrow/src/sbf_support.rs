//! Only for the registry-built sBPF route (scripts/build-program.sh).
//!
//! LLVM 23's BPF backend passes i128 libcall arguments in register pairs while rustc 1.96's
//! compiler-builtins take them in memory, so `scripts/sbf/i128_builtins.ll` defines the i128
//! libcalls itself and calls these two helpers, which use only u64 arithmetic. Results are
//! written to `out` as [quotient lo, quotient hi, remainder lo, remainder hi].
use solana_compiler_builtins as _;

/// Shift-subtract long division of 128-bit values given as (lo, hi) halves.
#[inline(always)]
fn udivmod(a: (u64, u64), b: (u64, u64)) -> [u64; 4] {
    if a.1 == 0 && b.1 == 0 {
        return [a.0 / b.0, 0, a.0 % b.0, 0];
    }
    let (mut q, mut r) = ((0u64, 0u64), (0u64, 0u64));
    for i in (0..128u32).rev() {
        r = (r.0 << 1, (r.1 << 1) | (r.0 >> 63));
        let bit = if i >= 64 {
            (a.1 >> (i - 64)) & 1
        } else {
            (a.0 >> i) & 1
        };
        r = (r.0 | bit, r.1);
        if r.1 > b.1 || (r.1 == b.1 && r.0 >= b.0) {
            let (lo, borrow) = r.0.overflowing_sub(b.0);
            r = (lo, r.1.wrapping_sub(b.1).wrapping_sub(u64::from(borrow)));
            if i >= 64 {
                q.1 |= 1 << (i - 64);
            } else {
                q.0 |= 1 << i;
            }
        }
    }
    [q.0, q.1, r.0, r.1]
}

#[inline(always)]
fn negate(v: (u64, u64)) -> (u64, u64) {
    let (lo, carry) = (!v.0).overflowing_add(1);
    (lo, (!v.1).wrapping_add(u64::from(carry)))
}

/// # Safety
/// `out` must point to four writable u64s.
#[no_mangle]
#[inline(never)]
pub unsafe extern "C" fn escrow_udivmod128(
    out: *mut u64,
    a_lo: u64,
    a_hi: u64,
    b_lo: u64,
    b_hi: u64,
) {
    let r = udivmod((a_lo, a_hi), (b_lo, b_hi));
    core::ptr::copy_nonoverlapping(r.as_ptr(), out, 4);
}

/// # Safety
/// `out` must point to four writable u64s.
#[no_mangle]
#[inline(never)]
pub unsafe extern "C" fn escrow_sdivmod128(
    out: *mut u64,
    a_lo: u64,
    a_hi: u64,
    b_lo: u64,
    b_hi: u64,
) {
    let a_neg = (a_hi as i64) < 0;
    let b_neg = (b_hi as i64) < 0;
    let a = if a_neg {
        negate((a_lo, a_hi))
    } else {
        (a_lo, a_hi)
    };
    let b = if b_neg {
        negate((b_lo, b_hi))
    } else {
        (b_lo, b_hi)
    };
    let [q_lo, q_hi, r_lo, r_hi] = udivmod(a, b);
    let q = if a_neg != b_neg {
        negate((q_lo, q_hi))
    } else {
        (q_lo, q_hi)
    };
    let r = if a_neg {
        negate((r_lo, r_hi))
    } else {
        (r_lo, r_hi)
    };
    core::ptr::copy_nonoverlapping([q.0, q.1, r.0, r.1].as_ptr(), out, 4);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn halves(v: u128) -> (u64, u64) {
        (v as u64, (v >> 64) as u64)
    }

    #[test]
    fn udivmod_matches_native_u128_division() {
        let values: [u128; 9] = [
            1,
            3,
            7,
            u64::MAX as u128,
            1 << 64,
            (1 << 64) + 5,
            u128::MAX / 3,
            u128::MAX - 1,
            0xdead_beef_u128 << 70,
        ];
        for a in values {
            for b in values {
                let [q_lo, q_hi, r_lo, r_hi] = udivmod(halves(a), halves(b));
                assert_eq!(
                    (
                        (q_hi as u128) << 64 | q_lo as u128,
                        (r_hi as u128) << 64 | r_lo as u128
                    ),
                    (a / b, a % b),
                    "{a} / {b}"
                );
            }
        }
    }

    #[test]
    fn signed_division_matches_native_i128_division() {
        let values: [i128; 6] = [
            1,
            -3,
            7,
            -(1 << 70),
            i64::MAX as i128 * 5,
            -(u64::MAX as i128),
        ];
        for a in values {
            for b in values {
                let mut out = [0u64; 4];
                let (a_lo, a_hi) = halves(a as u128);
                let (b_lo, b_hi) = halves(b as u128);
                unsafe { escrow_sdivmod128(out.as_mut_ptr(), a_lo, a_hi, b_lo, b_hi) };
                let q = ((out[1] as u128) << 64 | out[0] as u128) as i128;
                let r = ((out[3] as u128) << 64 | out[2] as u128) as i128;
                assert_eq!((q, r), (a / b, a % b), "{a} / {b}");
            }
        }
    }
}

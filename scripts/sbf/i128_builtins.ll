; i128 libcalls with the register ABI that LLVM 23's BPF backend uses for libcalls
; (i128 args as lo/hi register pairs, i128 result in r0 (lo) / r2 (hi)).
; rustc 1.96's BPF "C" ABI passes/returns i128 indirectly, so the Rust-defined
; compiler_builtins / solana-compiler-builtins versions are ABI-incompatible.
target datalayout = "e-m:e-p:64:64-i64:64-i128:128-n32:64-S128"
target triple = "bpfel"

declare void @escrow_udivmod128(ptr, i64, i64, i64, i64)
declare void @escrow_sdivmod128(ptr, i64, i64, i64, i64)

define internal i128 @join(i64 %lo, i64 %hi) alwaysinline {
  %l = zext i64 %lo to i128
  %h = zext i64 %hi to i128
  %hs = shl i128 %h, 64
  %r = or i128 %l, %hs
  ret i128 %r
}

define i128 @__multi3(i128 %a, i128 %b) {
  %alo = trunc i128 %a to i64
  %ahs = lshr i128 %a, 64
  %ahi = trunc i128 %ahs to i64
  %blo = trunc i128 %b to i64
  %bhs = lshr i128 %b, 64
  %bhi = trunc i128 %bhs to i64
  ; lo*lo full 128-bit product with 32-bit halves
  %a0 = and i64 %alo, 4294967295
  %a1 = lshr i64 %alo, 32
  %b0 = and i64 %blo, 4294967295
  %b1 = lshr i64 %blo, 32
  %p00 = mul i64 %a0, %b0
  %p01 = mul i64 %a0, %b1
  %p10 = mul i64 %a1, %b0
  %p11 = mul i64 %a1, %b1
  %p00h = lshr i64 %p00, 32
  %mid1 = add i64 %p01, %p00h          ; < 2^64 (no overflow: max (2^32-1)^2 + 2^32-1)
  %mid1l = and i64 %mid1, 4294967295
  %mid1h = lshr i64 %mid1, 32
  %mid2 = add i64 %p10, %mid1l         ; no overflow
  %mid2h = lshr i64 %mid2, 32
  %lo_lo = and i64 %p00, 4294967295
  %mid2s = shl i64 %mid2, 32
  %lo = or i64 %mid2s, %lo_lo
  %hi0 = add i64 %p11, %mid1h
  %hi1 = add i64 %hi0, %mid2h
  ; cross terms (mod 2^64)
  %c1 = mul i64 %alo, %bhi
  %c2 = mul i64 %ahi, %blo
  %hi2 = add i64 %hi1, %c1
  %hi = add i64 %hi2, %c2
  %r = call i128 @join(i64 %lo, i64 %hi)
  ret i128 %r
}

define internal i128 @divmod(i128 %a, i128 %b, i1 %signed, i64 %idx) alwaysinline {
  %out = alloca [4 x i64], align 8
  %alo = trunc i128 %a to i64
  %ahs = lshr i128 %a, 64
  %ahi = trunc i128 %ahs to i64
  %blo = trunc i128 %b to i64
  %bhs = lshr i128 %b, 64
  %bhi = trunc i128 %bhs to i64
  br i1 %signed, label %s, label %u
s:
  call void @escrow_sdivmod128(ptr %out, i64 %alo, i64 %ahi, i64 %blo, i64 %bhi)
  br label %done
u:
  call void @escrow_udivmod128(ptr %out, i64 %alo, i64 %ahi, i64 %blo, i64 %bhi)
  br label %done
done:
  %p0 = getelementptr i64, ptr %out, i64 %idx
  %i1 = add i64 %idx, 1
  %p1 = getelementptr i64, ptr %out, i64 %i1
  %lo = load i64, ptr %p0, align 8
  %hi = load i64, ptr %p1, align 8
  %r = call i128 @join(i64 %lo, i64 %hi)
  ret i128 %r
}

define i128 @__udivti3(i128 %a, i128 %b) {
  %r = call i128 @divmod(i128 %a, i128 %b, i1 false, i64 0)
  ret i128 %r
}
define i128 @__umodti3(i128 %a, i128 %b) {
  %r = call i128 @divmod(i128 %a, i128 %b, i1 false, i64 2)
  ret i128 %r
}
define i128 @__divti3(i128 %a, i128 %b) {
  %r = call i128 @divmod(i128 %a, i128 %b, i1 true, i64 0)
  ret i128 %r
}
define i128 @__modti3(i128 %a, i128 %b) {
  %r = call i128 @divmod(i128 %a, i128 %b, i1 true, i64 2)
  ret i128 %r
}

; variable shifts: amount in [0,127]
define i128 @__ashlti3(i128 %a, i32 %n32) {
  %n = zext i32 %n32 to i64
  %lo = trunc i128 %a to i64
  %ahs = lshr i128 %a, 64
  %hi = trunc i128 %ahs to i64
  %big = icmp uge i64 %n, 64
  br i1 %big, label %B, label %S
B:
  %m = sub i64 %n, 64
  %bhi = shl i64 %lo, %m
  %rb = call i128 @join(i64 0, i64 %bhi)
  ret i128 %rb
S:
  %z = icmp eq i64 %n, 0
  br i1 %z, label %Z, label %N
Z:
  ret i128 %a
N:
  %slo = shl i64 %lo, %n
  %shi = shl i64 %hi, %n
  %k = sub i64 64, %n
  %carry = lshr i64 %lo, %k
  %nhi = or i64 %shi, %carry
  %rs = call i128 @join(i64 %slo, i64 %nhi)
  ret i128 %rs
}
define i128 @__lshrti3(i128 %a, i32 %n32) {
  %n = zext i32 %n32 to i64
  %lo = trunc i128 %a to i64
  %ahs = lshr i128 %a, 64
  %hi = trunc i128 %ahs to i64
  %big = icmp uge i64 %n, 64
  br i1 %big, label %B, label %S
B:
  %m = sub i64 %n, 64
  %blo = lshr i64 %hi, %m
  %rb = call i128 @join(i64 %blo, i64 0)
  ret i128 %rb
S:
  %z = icmp eq i64 %n, 0
  br i1 %z, label %Z, label %N
Z:
  ret i128 %a
N:
  %slo = lshr i64 %lo, %n
  %shi = lshr i64 %hi, %n
  %k = sub i64 64, %n
  %carry = shl i64 %hi, %k
  %nlo = or i64 %slo, %carry
  %rs = call i128 @join(i64 %nlo, i64 %shi)
  ret i128 %rs
}
define i128 @__ashrti3(i128 %a, i32 %n32) {
  %n = zext i32 %n32 to i64
  %lo = trunc i128 %a to i64
  %ahs = lshr i128 %a, 64
  %hi = trunc i128 %ahs to i64
  %sign = ashr i64 %hi, 63
  %big = icmp uge i64 %n, 64
  br i1 %big, label %B, label %S
B:
  %m = sub i64 %n, 64
  %blo = ashr i64 %hi, %m
  %rb = call i128 @join(i64 %blo, i64 %sign)
  ret i128 %rb
S:
  %z = icmp eq i64 %n, 0
  br i1 %z, label %Z, label %N
Z:
  ret i128 %a
N:
  %slo = lshr i64 %lo, %n
  %shi = ashr i64 %hi, %n
  %k = sub i64 64, %n
  %carry = shl i64 %hi, %k
  %nlo = or i64 %slo, %carry
  %rs = call i128 @join(i64 %nlo, i64 %shi)
  ret i128 %rs
}

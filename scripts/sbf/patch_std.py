#!/usr/bin/env python3
"""Patch a copy of Rust 1.96's `library/` so std builds for our JSON target (arch=bpf, os=solana).

Upstream std does not know `os = "solana"`; five small edits make it build for a single-threaded,
OS-less VM. Each edit asserts that it changed something, so a new std version fails loudly here
instead of building something subtly different.

usage: patch_std.py <library-dir>
"""
import os
import sys

lib = sys.argv[1]
sys_dir = os.path.join(lib, "std/src/sys")


def edit(path, old, new, count=1):
    with open(path) as f:
        text = f.read()
    if old not in text:
        sys.exit(f"patch_std: pattern not found in {path}: {old!r}")
    with open(path, "w") as f:
        f.write(text.replace(old, new, count))


# 1. Allocator: 8-byte MIN_ALIGN on bpf, and a System allocator that is never used
#    (Solana programs install their own bump allocator as #[global_allocator]).
alloc = os.path.join(sys_dir, "alloc/mod.rs")
edit(alloc, '    target_arch = "xtensa",\n)) {\n    8', '    target_arch = "xtensa",\n    target_arch = "bpf",\n)) {\n    8')
edit(alloc, '    target_os = "zkvm" => {\n        mod zkvm;\n    }',
     '    target_os = "zkvm" => {\n        mod zkvm;\n    }\n    target_os = "solana" => {\n        mod solana;\n    }')
with open(os.path.join(sys_dir, "alloc/solana.rs"), "w") as f:
    f.write('''use crate::alloc::{GlobalAlloc, Layout, System};

// Solana programs install their own #[global_allocator]; this one is never reached.
#[stable(feature = "alloc_system_type", since = "1.28.0")]
unsafe impl GlobalAlloc for System {
    #[inline]
    unsafe fn alloc(&self, _layout: Layout) -> *mut u8 {
        crate::ptr::null_mut()
    }

    #[inline]
    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}
''')

# 2. io::Error: the generic representation.
edit(os.path.join(sys_dir, "io/error/mod.rs"),
     '        target_os = "zkvm",\n    ) => {\n        mod generic;',
     '        target_os = "zkvm",\n        target_os = "solana",\n    ) => {\n        mod generic;')

# 3. Thread locals: no threads.
edit(os.path.join(sys_dir, "thread_local/mod.rs"),
     'target_os = "zkvm",\n', 'target_os = "zkvm",\n        target_os = "solana",\n', count=-1)

# 4. Randomness: unsupported.
edit(os.path.join(sys_dir, "random/mod.rs"),
     'target_os = "vexos",\n', 'target_os = "vexos",\n    target_os = "solana",\n', count=-1)

# 5. HashMap's RandomState caches keys in a writable static, which sBPF cannot relocate:
#    use fixed keys (no attacker feeds a program's hash maps across transactions).
edit(os.path.join(lib, "std/src/hash/random.rs"),
     '    pub fn new() -> RandomState {\n',
     '    pub fn new() -> RandomState {\n'
     '        #[cfg(target_os = "solana")]\n'
     '        return RandomState { k0: 0, k1: 0 };\n')
print(f"patch_std: patched {lib}")

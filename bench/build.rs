use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "src/bpf/endpoint.bpf.c";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR set by cargo"))
        .join("endpoint.skel.rs");
    // Debian keeps asm/types.h under the multiarch include directory.
    SkeletonBuilder::new()
        .source(SRC)
        .clang_args(["-I/usr/include/x86_64-linux-gnu", "-Wall", "-O2"])
        .build_and_generate(&out)
        .expect("compile the endpoint XDP program (needs clang and libelf)");
    println!("cargo:rerun-if-changed={SRC}");
}

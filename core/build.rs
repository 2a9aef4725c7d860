//! Links csrc/closed_stdout.c whole into every tool (see there): a constructor that
//! nothing references, so the linker must be told to keep it.

fn main() {
    println!("cargo:rerun-if-changed=csrc/closed_stdout.c");
    cc::Build::new()
        .file("csrc/closed_stdout.c")
        .cargo_metadata(false)
        .compile("kpipe_closed_stdout");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    println!("cargo:rustc-link-search=native={out}");
    println!("cargo:rustc-link-lib=static:+whole-archive=kpipe_closed_stdout");
}

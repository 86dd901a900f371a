//! `cairn-hello`: the start-up floor of `bench/compare`'s command-line rows. A Rust binary
//! that prints one line and exits, built with the same profile as `cairn`, so that
//! `cairn --version` is measured against what any Rust process costs to start on the machine.

fn main() {
    println!("cairn-hello 0.1.0");
}

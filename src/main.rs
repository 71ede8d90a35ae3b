//! The `ferry` binary: parse, call the library, print, exit with a code
//! whose meaning is fixed (see `docs/reference/exit-codes.md`).

mod cli;

fn main() {
    std::process::exit(cli::run());
}

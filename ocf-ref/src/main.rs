//! The `ocf` command: a thin shell over [`ocf_ref::cli`].

fn main() -> std::process::ExitCode {
    ocf_ref::cli::main()
}

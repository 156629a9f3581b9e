#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]
//! C programs against ocf's C library (`ocf-capi`): compiled with the system compiler, linked
//! to the `libocf.so` cargo built for these tests (a dev-dependency, so it is always fresh),
//! and run under valgrind where it is installed (required in CI).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where cargo put `libocf.so` and `libocf.a`: beside this test's executable.
pub fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let dir = exe.parent().expect("its directory").to_owned();
    assert!(
        dir.join("libocf.so").exists(),
        "libocf.so is not in {} (ocf-capi is a dev-dependency of ocf-ref: build with cargo test)",
        dir.display()
    );
    dir
}

/// `ocf-capi/include`.
pub fn include_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ocf-capi/include")
}

/// `ocf-capi/tests/c/<name>`.
pub fn source(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ocf-capi/tests/c")
        .join(name)
}

fn run_cc(args: &[String]) {
    let out = Command::new("cc").args(args).output().expect("cc runs");
    assert!(
        out.status.success(),
        "cc {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The start of a compile of `ocf-capi/tests/c/<name>` against ocf's headers (with
/// `-DUSE_OCF`), warnings as errors, into `out`.
fn ocf_compile(name: &str, out: &Path) -> Vec<String> {
    vec![
        "-std=gnu11".into(),
        "-Wall".into(),
        "-Wextra".into(),
        "-Werror".into(),
        "-DUSE_OCF".into(),
        format!("-I{}", include_dir().display()),
        "-o".into(),
        out.display().to_string(),
        source(name).display().to_string(),
    ]
}

/// Compiles `ocf-capi/tests/c/<name>` against `libocf.so` into `out`.
pub fn compile_ocf(name: &str, out: &Path) -> PathBuf {
    let lib = lib_dir();
    let mut args = ocf_compile(name, out);
    args.extend([
        format!("-L{}", lib.display()),
        "-locf".into(),
        format!("-Wl,-rpath,{}", lib.display()),
    ]);
    run_cc(&args);
    out.to_owned()
}

/// Compiles the same program statically against `libocf.a`. Only what the program reaches
/// is linked (`--gc-sections`: the test build's library also holds the Corosync engine, whose
/// libraries a C program does not need).
pub fn compile_ocf_static(name: &str, out: &Path) -> PathBuf {
    let mut args = ocf_compile(name, out);
    args.extend([
        lib_dir().join("libocf.a").display().to_string(),
        "-lpthread".into(),
        "-ldl".into(),
        "-lm".into(),
        "-lgcc_s".into(),
        "-Wl,--gc-sections".into(),
    ]);
    run_cc(&args);
    out.to_owned()
}

/// Whether Debian's `cluster-glue-dev` (libstonith's header and library) and glib's headers
/// are installed.
pub fn have_libstonith() -> bool {
    Path::new("/usr/include/stonith/stonith.h").exists()
        && Path::new("/usr/lib/libstonith.so").exists()
        && Command::new("pkg-config")
            .args(["--exists", "glib-2.0"])
            .status()
            .is_ok_and(|s| s.success())
}

/// Compiles `ocf-capi/tests/c/<name>` against cluster-glue's `stonith.h` and libstonith.
pub fn compile_libstonith(name: &str, out: &Path) -> PathBuf {
    let glib = Command::new("pkg-config")
        .args(["--cflags", "--libs", "glib-2.0"])
        .output()
        .expect("pkg-config");
    let mut args: Vec<String> = vec![
        "-std=gnu11".into(),
        "-Wall".into(),
        "-o".into(),
        out.display().to_string(),
        source(name).display().to_string(),
        "-I/usr/include/heartbeat".into(),
    ];
    args.extend(
        String::from_utf8_lossy(&glib.stdout)
            .split_whitespace()
            .map(str::to_owned),
    );
    args.push("-lstonith".into());
    run_cc(&args);
    out.to_owned()
}

/// Whether valgrind is installed.
pub fn have_valgrind() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// In CI a missing tool is a failure; elsewhere the test says what it skipped.
pub fn require(what: &str, present: bool) -> bool {
    if !present {
        assert!(
            std::env::var_os("CI").is_none(),
            "{what} is missing (scripts/install-peers.sh installs it)"
        );
        eprintln!("note: {what} is missing here; that part is skipped");
    }
    present
}

/// The exit code valgrind gives a run with a memory error or a definite leak.
pub const VALGRIND_ERROR: i32 = 99;

/// `program` under valgrind (memory errors and definite leaks fail the run with
/// [`VALGRIND_ERROR`], the report in `log`), or alone when valgrind is missing outside CI.
pub fn checked(program: &Path, log: &Path) -> Command {
    if require("valgrind", have_valgrind()) {
        let mut c = Command::new("valgrind");
        c.args([
            "--quiet",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
            "--show-leak-kinds=definite",
        ])
        .arg(format!("--error-exitcode={VALGRIND_ERROR}"))
        .arg(format!("--log-file={}", log.display()))
        .arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// The valgrind report at `log`, for failure messages.
pub fn report(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

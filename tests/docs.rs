//! The command-line reference in docs/ is generated from `--help`; this
//! test fails when the program and the reference drift apart.

mod support;

#[test]
fn cli_reference_matches_help_output() {
    let scratch = support::Scratch::new();
    let generated = scratch.path("cli.md");
    let status = std::process::Command::new("bash")
        .args(["docs/reference/generate-cli.sh", env!("CARGO_BIN_EXE_ferry"), generated.as_str()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run generate-cli.sh");
    assert!(status.success());
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/reference/cli.md")).unwrap();
    let fresh = std::fs::read_to_string(&generated).unwrap();
    assert!(committed == fresh, "docs/reference/cli.md is stale: run `bash docs/reference/generate-cli.sh`");
}

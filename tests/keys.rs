//! Key generation and passphrase handling through the real binary.

mod support;
use std::os::unix::fs::PermissionsExt;
use support::*;

#[test]
fn keygen_encrypts_with_the_passphrase_and_writes_the_secret_key_0600() {
    let scratch = Scratch::new();
    let prefix = scratch.path("site");
    Run::from(ferry().args(["keygen", prefix.as_str()]).env("FERRY_PASSPHRASE", "s3cret words").output().unwrap()).ok();
    let secret = std::fs::read_to_string(scratch.path("site.key")).unwrap();
    assert!(secret.contains("protection: argon2id-xchacha20poly1305"), "{secret}");
    let mode = std::fs::metadata(scratch.path("site.key")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let public = std::fs::read_to_string(scratch.path("site.pub")).unwrap();
    let key_id = public.lines().nth(1).unwrap().strip_prefix("id: ").unwrap().to_owned();

    let source = scratch.path("source");
    small_repository(&source);
    let export = |passphrase: &str| {
        Run::from(
            ferry()
                .args([
                    "export",
                    source.as_str(),
                    scratch.path("media").as_str(),
                    "--key",
                    scratch.path("site.key").as_str(),
                ])
                .args(["--repository", "av", "--sequence", "1"])
                .env("FERRY_PASSPHRASE", passphrase)
                .output()
                .unwrap(),
        )
    };
    let wrong = export("wrong").expect_code(1);
    assert!(wrong.stderr.contains("wrong passphrase") && wrong.stderr.contains(&key_id), "{}", wrong.stderr);
    assert!(!scratch.path("media").exists(), "a failed unlock must not write to the media");
    let right = export("s3cret words").ok();
    assert!(right.stdout.contains(&key_id), "{}", right.stdout);

    let passphrase_file = scratch.path("passphrase");
    std::fs::write(&passphrase_file, "s3cret words\n").unwrap();
    let no_passphrase =
        run(&["export", source.as_str(), scratch.path("media2").as_str(), "--key", scratch.path("site.key").as_str()])
            .expect_code(2);
    assert!(no_passphrase.stderr.contains("--passphrase-file"), "{}", no_passphrase.stderr);
    run(&[
        "export",
        source.as_str(),
        scratch.path("media2").as_str(),
        "--key",
        scratch.path("site.key").as_str(),
        "--passphrase-file",
        passphrase_file.as_str(),
        "-q",
    ])
    .ok();
}

#[test]
fn keygen_refuses_to_overwrite_and_needs_a_passphrase_source() {
    let scratch = Scratch::new();
    let prefix = scratch.path("k");
    keygen(&prefix);
    let before = tree_state(&scratch.root);
    let again = run(&["keygen", prefix.as_str(), "--no-passphrase"]).expect_code(1);
    assert!(again.stderr.contains("k.key") && again.stderr.contains("already exists"), "{}", again.stderr);
    assert_eq!(tree_state(&scratch.root), before);
    // No terminal, no variable, no file: a clear usage error, nothing written.
    let other = scratch.path("other");
    let no_source = run(&["keygen", other.as_str()]).expect_code(2);
    assert!(no_source.stderr.contains("FERRY_PASSPHRASE"), "{}", no_source.stderr);
    assert!(!scratch.path("other.key").exists());
}

//! What operators used to rclone, restic and rsync expect of a command
//! line (issue 13, "Operators' habits"): shell completions, a man page,
//! examples and environment variables in `--help`.

mod support;
use support::*;

/// The subcommands `ferry --help` lists (without clap's `help`).
fn subcommands() -> Vec<String> {
    let help = run(&["--help"]).ok().stdout;
    let listing = help.split("Commands:\n").nth(1).expect("a Commands: section");
    let names: Vec<String> = listing
        .lines()
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect();
    assert!(names.len() >= 10, "too few commands parsed from --help: {names:?}");
    names
}

#[test]
fn completions_name_every_subcommand_in_every_shell() {
    let commands = subcommands();
    for shell in ["bash", "zsh", "fish"] {
        let script = run(&["completions", shell]).ok().stdout;
        for command in &commands {
            assert!(script.contains(command.as_str()), "{shell} completion does not mention `{command}`");
        }
    }
    // The bash script defines the completion function and registers it.
    let bash = run(&["completions", "bash"]).ok().stdout;
    assert!(bash.contains("_ferry()") && bash.contains("complete -F _ferry"), "{bash}");
}

#[test]
fn completions_refuse_an_unknown_shell() {
    let refused = run(&["completions", "tcsh"]).expect_code(2);
    assert!(refused.stderr.contains("tcsh"), "{}", refused.stderr);
    assert!(refused.stdout.is_empty());
}

/// The roff page opens with `.TH` (after clap_mangen's two lines defining
/// the apostrophe string `\*(Aq`, which must come before any text).
fn assert_man_page(page: &str, title: &str) {
    let first_macro = page.lines().find(|line| !line.starts_with(".ie ") && !line.starts_with(".el ")).unwrap_or("");
    assert!(first_macro.starts_with(&format!(".TH {title} 1 ")), "first line after the preamble: {first_macro}");
    assert!(page.lines().take_while(|line| !line.starts_with(".TH")).count() <= 2, "{page}");
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION", ".SH OPTIONS"] {
        assert!(page.contains(section), "{title}: no {section}");
    }
}

#[test]
fn man_prints_a_roff_page_for_ferry_and_each_command() {
    let page = run(&["man"]).ok().stdout;
    assert_man_page(&page, "ferry");
    assert!(page.contains(".SH SUBCOMMANDS"));
    for command in subcommands() {
        let page = run(&["man", &command]).ok().stdout;
        assert_man_page(&page, &format!("ferry-{command}"));
    }
    let refused = run(&["man", "nope"]).expect_code(2);
    assert!(refused.stderr.contains("`nope` is not a ferry command"), "{}", refused.stderr);
}

#[test]
fn help_shows_examples_and_the_environment_each_command_reads() {
    let reads: &[(&str, &[&str])] = &[
        ("keygen", &["FERRY_PASSPHRASE"]),
        ("export", &["FERRY_PASSPHRASE", "SOURCE_DATE_EPOCH"]),
        ("verify", &["FERRY_TRUST", "FERRY_FTP_PASSWORD"]),
        ("list", &["FERRY_TRUST"]),
        ("import", &["FERRY_TRUST", "FERRY_FTP_PASSWORD"]),
        ("publish", &["FERRY_TRUST", "FERRY_FTP_PASSWORD"]),
        ("rollback", &["FERRY_FTP_PASSWORD"]),
        ("status", &["FERRY_FTP_PASSWORD"]),
    ];
    for command in subcommands() {
        let help = run(&[&command, "--help"]).ok().stdout;
        let examples = help.split("Examples:\n").nth(1).unwrap_or_else(|| panic!("{command}: no Examples:\n{help}"));
        let count = examples.lines().take_while(|l| !l.is_empty()).filter(|l| l.contains("ferry ")).count();
        assert!(count >= 2, "{command}: {count} example(s)");
        let variables = reads.iter().find(|(name, _)| *name == command).map_or(&[][..], |(_, v)| *v);
        for variable in variables {
            let environment = help.split("Environment:\n").nth(1).unwrap_or("");
            assert!(environment.contains(variable), "`ferry {command} --help` does not list {variable}:\n{help}");
        }
    }
}

/// FERRY_TRUST is a colon-separated list with empty entries ignored, used
/// only when no `--trust` is given; `--trust` values are single paths,
/// colons and all.
#[test]
fn ferry_trust_is_a_colon_separated_list_and_trust_wins() {
    let root = env!("CARGO_MANIFEST_DIR");
    let media = format!("{root}/samples/media");
    let key = format!("{root}/samples/keys/TEST-ONLY-DO-NOT-USE.pub");
    let untrusted = format!("{root}/samples/keys/TEST-ONLY-DO-NOT-USE-untrusted.pub");
    let verify = |env: Option<&str>, args: &[&str]| {
        let mut command = ferry();
        command.args(["verify", &media]).args(args);
        if let Some(value) = env {
            command.env("FERRY_TRUST", value);
        }
        Run::from(command.output().unwrap())
    };
    verify(Some(&format!("::{untrusted}::{key}:")), &[]).ok();
    verify(Some(&untrusted), &[]).expect_code(3);
    verify(Some("/nonexistent.pub"), &["--trust", &key]).ok();
    let none = verify(Some(""), &[]).expect_code(2);
    assert!(none.stderr.contains("no trusted public key given"), "{}", none.stderr);
    let none = verify(Some(":::"), &[]).expect_code(2);
    assert!(none.stderr.contains("no trusted public key given"), "{}", none.stderr);
    let joined = verify(None, &["--trust", &format!("{key}:{key}")]).expect_code(1);
    assert!(joined.stderr.contains(&format!("`{key}:{key}`")), "{}", joined.stderr);
}

/// The commands that move data end their text with the time they took and
/// the rate (issue 13: "end summary with elapsed time and rate").
#[test]
fn data_commands_end_with_elapsed_time_and_rate() {
    let scratch = Scratch::new();
    let (secret, public, source) = support::bundled_sample();
    let (usb, target, mirror) = (scratch.path("usb"), scratch.path("target"), scratch.path("mirror"));
    let runs: [Vec<&str>; 4] = [
        vec!["export", &source, usb.as_str(), "--key", &secret],
        vec!["verify", usb.as_str(), "--trust", &public],
        vec!["import", usb.as_str(), target.as_str(), "--trust", &public],
        vec!["publish", target.as_str(), mirror.as_str(), "--trust", &public],
    ];
    for args in runs {
        let out = run(&args).ok().stdout;
        let last = out.lines().last().unwrap_or("");
        assert!(last.starts_with("  done in "), "`ferry {}`: last line {last:?}", args[0]);
        assert!(last.ends_with("/s") || last.ends_with(" s") || last.ends_with(" ms"), "{last:?}");
    }
    let installed = run(&["verify", target.as_str()]).ok().stdout;
    assert!(installed.lines().last().unwrap_or("").starts_with("  done in "), "{installed}");
}

/// A `ferry keygen` blocked opening its passphrase file (a FIFO), once its
/// signal thread is up: a moment at which a signal finds the handler set.
struct BlockedKeygen {
    child: std::process::Child,
    fifo: camino::Utf8PathBuf,
}

impl BlockedKeygen {
    fn start(scratch: &Scratch, name: &str, ignore_sigint: bool) -> Self {
        let fifo = scratch.path(&format!("{name}.fifo"));
        rustix::fs::mknodat(rustix::fs::CWD, fifo.as_std_path(), rustix::fs::FileType::Fifo, 0o600.into(), 0).unwrap();
        let prefix = scratch.path(name);
        // A shell script starts its background jobs with SIGINT ignored;
        // `trap '' INT` then `exec` gives ferry the same start.
        let trap = if ignore_sigint { "trap '' INT; " } else { "" };
        let script = format!("{trap}exec \"$0\" keygen \"$1\" --passphrase-file \"$2\"");
        let child = std::process::Command::new("bash")
            .args(["-c", &script, env!("CARGO_BIN_EXE_ferry"), prefix.as_str(), fifo.as_str()])
            .env_remove("FERRY_PASSPHRASE")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("bash");
        let tasks = format!("/proc/{}/task", child.id());
        let has_signal_thread = || {
            std::fs::read_dir(&tasks).into_iter().flatten().flatten().any(|task| {
                std::fs::read_to_string(task.path().join("comm")).is_ok_and(|comm| comm.trim() == "signals")
            })
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !has_signal_thread() {
            assert!(std::time::Instant::now() < deadline, "ferry never started its signal thread");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        BlockedKeygen { child, fifo }
    }

    fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, signal).unwrap();
    }

    fn finish(self, feed_passphrase: bool) -> (std::process::ExitStatus, String) {
        if feed_passphrase {
            std::fs::write(&self.fifo, "a passphrase\n").unwrap();
        }
        let output = self.child.wait_with_output().unwrap();
        (output.status, String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[test]
fn a_signal_prints_one_line_and_ends_the_process_by_that_signal() {
    use rustix::process::Signal;
    use std::os::unix::process::ExitStatusExt;
    let scratch = Scratch::new();
    for (name, signal) in [("int", Signal::INT), ("term", Signal::TERM)] {
        let keygen = BlockedKeygen::start(&scratch, name, false);
        keygen.signal(signal);
        let (status, stderr) = keygen.finish(false);
        assert_eq!(status.signal(), Some(signal.as_raw()), "{name}: {status:?}\n{stderr}");
        let expected = format!("ferry: interrupted; delete {} and", scratch.path(name).with_extension("key"));
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with(&expected), "{stderr}");
    }
    // Started with SIGINT ignored, ferry keeps ignoring it, and finishes.
    let keygen = BlockedKeygen::start(&scratch, "ignored", true);
    keygen.signal(Signal::INT);
    let (status, stderr) = keygen.finish(true);
    assert_eq!(status.code(), Some(0), "{status:?}\n{stderr}");
    assert!(!stderr.contains("interrupted"), "{stderr}");
    assert!(scratch.path("ignored.pub").is_file());
}

/// `ferry import DRIVE` with TARGET forgotten: clap alone would say MEDIA is
/// missing; the message names both and shows the order.
#[test]
fn a_forgotten_import_target_is_named() {
    let forgot = run(&["import", "/media/usb"]).expect_code(2);
    assert!(forgot.stderr.contains("needs the drive(s) first, then the update source"), "{}", forgot.stderr);
    assert!(forgot.stderr.contains("hint: ferry import MEDIA... TARGET"), "{}", forgot.stderr);
    // Other missing arguments keep clap's own message.
    let export = run(&["export", "/srv/repo", "--key", "k.key"]).expect_code(2);
    assert!(export.stderr.contains("<MEDIA>..."), "{}", export.stderr);
}

/// Relative paths, bare file names included, are taken from the current
/// folder, as every command-line tool does.
#[test]
fn relative_paths_and_bare_file_names_work() {
    let scratch = Scratch::new();
    let (secret, public, source) = bundled_sample();
    let in_scratch = |args: &[&str]| Run::from(ferry().current_dir(scratch.path("")).args(args).output().unwrap());
    in_scratch(&["export", &source, "usb", "--key", &secret, "-q"]).ok();
    in_scratch(&["import", "usb", "site", "--trust", &public, "-q"]).ok();
    in_scratch(&["receipt", "site", "site.receipt", "-q"]).ok();
    let receipt = std::fs::read_to_string(scratch.path("site.receipt")).unwrap();
    assert!(receipt.starts_with("ferry receipt v1\n"), "{receipt}");
}

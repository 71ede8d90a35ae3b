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

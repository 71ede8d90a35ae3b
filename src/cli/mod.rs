//! The only code that knows about clap, terminals, progress bars and
//! `--json`. Each command (one module in [`commands`]) builds the
//! library's options, calls one function in `ferry::ops`, and prints its
//! report; [`exit`] is the one map from outcomes to exit codes.

mod args;
mod commands;
mod exit;
mod output;
mod secrets;
mod signals;

use args::{Cli, Command};
use commands::Context;
use output::Output;

/// Runs the command line and returns the exit code.
pub fn run() -> i32 {
    let (cli, name) = match Cli::parse_args() {
        Ok(parsed) => parsed,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { exit::OK };
            let _ = e.print();
            return code;
        }
    };
    signals::on_interrupt(&cli.command);
    let out = Output::new(name, cli.global.json, cli.global.quiet, cli.global.verbose);
    let ctx = Context { out: &out, now: cli.global.now.unwrap_or_else(ferry::clock::now) };
    match dispatch(&cli.command, &ctx) {
        Ok(code) => code,
        Err(error) => {
            let code = exit::for_class(error.class());
            out.error(&error, code);
            code
        }
    }
}

fn dispatch(command: &Command, ctx: &Context) -> ferry::Result<i32> {
    match command {
        Command::Keygen(args) => commands::keygen::run(args, ctx),
        Command::Export(args) => commands::export::run(args, ctx),
        Command::Verify(args) => commands::verify::run(args, ctx),
        Command::List(args) => commands::list::run(args, ctx),
        Command::Import(args) => commands::import::run(args, ctx),
        Command::Rollback(args) => commands::rollback::run(args, ctx),
        Command::Publish(args) => commands::publish::run(args, ctx),
        Command::Status(args) => commands::status::run(args, ctx),
        Command::Log(args) => commands::log::run(args, ctx),
        Command::Sign(args) => commands::sign::run(args, ctx),
        Command::Rotate(args) => commands::rotate::run(args, ctx),
        Command::Trust(args) => commands::trust::run(args, ctx),
        Command::Receipt(args) => commands::receipt::run(args, ctx),
        Command::Diff(args) => commands::diff::run(args, ctx),
        Command::Policy(args) => commands::policy::run(args, ctx),
        Command::Verdict(args) => commands::verdict::run(args, ctx),
        Command::Promote(args) => commands::promote::run(args, ctx),
        Command::Inventory(args) => commands::inventory::run(args, ctx),
        Command::Completions(args) => commands::completions::run(args, ctx),
        Command::Man(args) => commands::man::run(args, ctx),
    }
}

#[cfg(test)]
mod tests {
    use super::args::Cli;
    use clap::{CommandFactory, Parser};

    /// The command lines in an "Examples:" block, continuation lines joined,
    /// without a leading `VAR=value`, a trailing comment, redirection or pipe.
    fn examples(help: &str) -> Vec<Vec<String>> {
        let block = help.split("Examples").nth(1).unwrap_or("");
        let block = block.split("\n\n").next().unwrap_or("").replace("\\\n", " ");
        block
            .lines()
            .map(str::trim)
            .filter(|line| line.contains("ferry "))
            .map(|line| {
                let line = line.split(" #").next().unwrap_or(line);
                let line = line.split(['>', '|']).next().unwrap_or(line);
                let words = line.split_whitespace().skip_while(|w| w.contains('='));
                words.map(str::to_owned).collect()
            })
            .collect()
    }

    #[test]
    fn every_example_in_help_parses() {
        let command = Cli::command();
        let mut helps = vec![(command.get_name().to_owned(), command.get_after_help().map(|h| h.to_string()))];
        for sub in command.get_subcommands().filter(|c| c.get_name() != "help") {
            helps.push((sub.get_name().to_owned(), sub.get_after_help().map(|h| h.to_string())));
        }
        for (name, help) in helps {
            let help = help.unwrap_or_else(|| panic!("`ferry {name}` has no examples in --help"));
            let lines = examples(&help);
            assert!(lines.len() >= 2, "`ferry {name}`: fewer than 2 examples in\n{help}");
            for words in lines {
                assert_eq!(words[0], "ferry", "{words:?}");
                if name != "ferry" {
                    assert_eq!(words[1], name, "an example of another command: {words:?}");
                }
                if let Err(e) = Cli::try_parse_from(&words) {
                    panic!("example `{}` does not parse:\n{e}", words.join(" "));
                }
            }
        }
    }
}

//! The only code that knows about clap, terminals, progress bars and
//! `--json`. Each command (one module in [`commands`]) builds the
//! library's options, calls one function in `ferry::ops`, and prints its
//! report; [`exit`] is the one map from outcomes to exit codes.

mod args;
mod commands;
mod exit;
mod output;
mod secrets;

use args::{Cli, Command};
use clap::Parser;
use commands::Context;
use output::Output;

/// Runs the command line and returns the exit code.
pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { exit::OK };
            let _ = e.print();
            return code;
        }
    };
    let out = Output::new(cli.global.json, cli.global.quiet, cli.global.verbose);
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
        Command::Sign(args) => commands::sign::run(args, ctx),
        Command::Rotate(args) => commands::rotate::run(args, ctx),
        Command::Trust(args) => commands::trust::run(args, ctx),
        Command::Completions(args) => commands::completions::run(args, ctx),
        Command::Man(args) => commands::man::run(args, ctx),
    }
}

//! `ferry completions`: a completion script for a shell, generated from
//! the same clap definition as the parser, so it can never drift.

use super::Context;
use crate::cli::args::Cli;
use crate::cli::exit;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

/// Shown after the options by `-h` and `--help`: real command lines, and the
/// environment variables this command reads.
const AFTER_HELP: &str = "\
Examples:
  ferry completions bash > /etc/bash_completion.d/ferry
  ferry completions zsh > /usr/local/share/zsh/site-functions/_ferry
  ferry completions fish > ~/.config/fish/completions/ferry.fish";

/// `ferry completions`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct CompletionsArgs {
    /// The shell to write the completion script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Prints the completion script on stdout (`--json` does not apply: the
/// output is a script).
pub fn run(args: &CompletionsArgs, _ctx: &Context) -> ferry::Result<i32> {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "ferry", &mut std::io::stdout());
    Ok(exit::OK)
}

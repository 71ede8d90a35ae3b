//! `ferry man`: the roff man page, generated from the same clap definition
//! as the parser and `--help`.

use super::Context;
use crate::cli::args::Cli;
use crate::cli::exit;
use clap::{Args, CommandFactory};

/// Shown after the options by `-h` and `--help`: real command lines, and the
/// environment variables this command reads.
const AFTER_HELP: &str = "\
Examples:
  ferry man > /usr/local/share/man/man1/ferry.1
  ferry man export > /usr/local/share/man/man1/ferry-export.1
  ferry man import | man -l -";

/// `ferry man`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct ManArgs {
    /// Print the page of this command (ferry-COMMAND(1)) instead of ferry(1).
    #[arg(value_name = "COMMAND", value_parser = known_command)]
    pub command: Option<String>,
}

/// Prints the page on stdout, in roff (`--json` does not apply).
pub fn run(args: &ManArgs, _ctx: &Context) -> ferry::Result<i32> {
    let mut ferry = Cli::command();
    // Building propagates the global options and the version to the
    // subcommands, so their pages list them too.
    ferry.build();
    let page = match &args.command {
        None => clap_mangen::Man::new(ferry),
        Some(name) => {
            let command = ferry.find_subcommand(name).cloned().ok_or_else(|| unknown(name))?;
            clap_mangen::Man::new(command.name(format!("ferry-{name}")).bin_name(format!("ferry {name}")))
        }
    };
    page.render(&mut std::io::stdout()).map_err(|e| ferry::Error::io("write", "<stdout>", e))?;
    Ok(exit::OK)
}

fn known_command(name: &str) -> Result<String, String> {
    if Cli::command().find_subcommand(name).is_some() { Ok(name.to_owned()) } else { Err(unknown(name).to_string()) }
}

fn unknown(name: &str) -> ferry::Error {
    let names: Vec<String> = Cli::command().get_subcommands().map(|c| c.get_name().to_owned()).collect();
    ferry::Error::InvalidArgument(format!("`{name}` is not a ferry command (commands: {})", names.join(", ")))
}

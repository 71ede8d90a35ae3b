//! Running the verify command (formats/verdict-v1.md §3 W2, W3): a shell
//! command in its own process group, its output in a file, killed as a
//! group when it outlives its timeout.

use crate::error::{Error, Result};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How much of the command's output is kept (§1).
pub const MAX_OUTPUT_BYTES: u64 = 1 << 20;

/// What the verify command did.
#[derive(Debug, Clone)]
pub struct CommandRun {
    /// Whether it passed (exit status 0 within the timeout).
    pub passed: bool,
    /// Why, for the verdict: `exit status 0 after 3s`, `timed out after 30m`, ...
    pub reason: String,
    /// Its exit code, when it exited.
    pub exit_code: Option<i32>,
    /// Whether it was killed at the timeout.
    pub timed_out: bool,
    /// The last [`MAX_OUTPUT_BYTES`] of its stdout and stderr together.
    pub output: Vec<u8>,
}

/// Runs `/bin/sh -c command` with `env`, in `dir` when given, for at most
/// `timeout`; never fails for what the command does, only when its output
/// file cannot be made or read.
pub fn run(
    command: &str,
    env: &[(&str, String)],
    dir: Option<&camino::Utf8Path>,
    timeout: Duration,
) -> Result<CommandRun> {
    let output =
        tempfile::tempfile().map_err(|e| Error::io("create", std::env::temp_dir().display().to_string(), e))?;
    let clone = || output.try_clone().map_err(|e| Error::io("open", "the verify command's output file", e));
    let mut shell = Command::new("/bin/sh");
    shell.arg("-c").arg(command).stdin(Stdio::null()).stdout(clone()?).stderr(clone()?).process_group(0);
    shell.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    if let Some(dir) = dir {
        shell.current_dir(dir);
    }
    let started = Instant::now();
    let (status, timed_out) = match shell.spawn() {
        Err(e) => return Ok(finished(None, false, format!("could not start /bin/sh: {e}"), Vec::new())),
        Ok(mut child) => {
            let group = rustix::process::Pid::from_child(&child);
            let outcome = wait(&mut child, timeout);
            // Whatever the command left running in its group goes too.
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
            match outcome {
                Some(status) => (Some(status), false),
                None => (child.wait().ok(), true),
            }
        }
    };
    let took = crate::clock::describe(jiff::SignedDuration::try_from(started.elapsed()).unwrap_or_default());
    let reason = match (timed_out, status.and_then(|s| s.code())) {
        (true, _) => format!(
            "timed out after {}; killed",
            crate::clock::describe(jiff::SignedDuration::try_from(timeout).unwrap_or_default())
        ),
        (false, Some(code)) => format!("exit status {code} after {took}"),
        (false, None) => format!("killed by a signal after {took}"),
    };
    let exit_code = status.filter(|_| !timed_out).and_then(|s| s.code());
    Ok(finished(exit_code, timed_out, reason, tail(output)?))
}

fn finished(exit_code: Option<i32>, timed_out: bool, reason: String, output: Vec<u8>) -> CommandRun {
    CommandRun { passed: exit_code == Some(0) && !timed_out, reason, exit_code, timed_out, output }
}

/// Waits for `child` until `timeout`; `None` when it is still running then.
fn wait(child: &mut std::process::Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() >= deadline => return None,
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(_) => return None,
        }
    }
}

/// The last [`MAX_OUTPUT_BYTES`] of the output file.
fn tail(mut file: std::fs::File) -> Result<Vec<u8>> {
    let fail = |e| Error::io("read", "the verify command's output file", e);
    let len = file.seek(SeekFrom::End(0)).map_err(fail)?;
    file.seek(SeekFrom::Start(len.saturating_sub(MAX_OUTPUT_BYTES))).map_err(fail)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(fail)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_fail_timeout_and_environment() {
        let env = [("FERRY_SEQUENCE", "42".to_string())];
        let long = Duration::from_secs(600);
        let ok = run("echo seq=$FERRY_SEQUENCE; echo err >&2", &env, None, long).unwrap();
        assert!(ok.passed && ok.exit_code == Some(0), "{ok:?}");
        assert_eq!(String::from_utf8_lossy(&ok.output), "seq=42\nerr\n");
        let failed = run("exit 3", &env, None, long).unwrap();
        assert!(!failed.passed && failed.exit_code == Some(3), "{failed:?}");
        let hung = run("sleep 600 & sleep 600", &env, None, Duration::from_millis(200)).unwrap();
        assert!(!hung.passed && hung.timed_out && hung.reason.starts_with("timed out"), "{hung:?}");
    }
}

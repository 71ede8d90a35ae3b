//! Named crash points for the crash-safety tests.
//!
//! Built with the `crash-points` feature, [`point`] kills the process with
//! SIGKILL when `FERRY_CRASH_POINT` names it, so a test can stop an import at
//! an exact step and check what the target serves afterwards. Without the
//! feature (release builds) the function is empty and the variable ignored.

/// Marks a place where an import or export may be interrupted.
#[inline]
pub fn point(name: &str) {
    #[cfg(feature = "crash-points")]
    if std::env::var("FERRY_CRASH_POINT").is_ok_and(|wanted| wanted == name) {
        let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    }
    #[cfg(not(feature = "crash-points"))]
    let _ = name;
}

/// Whether `FERRY_CONTROL_UNSAFE` names `name`: a deliberately broken mode
/// for the control runs of `tests/crash.rs`, which must see the crash checks
/// fail when a protection is switched off (otherwise passing proves nothing).
/// Exists only with the `crash-points` feature.
#[cfg(feature = "crash-points")]
pub fn control_unsafe(name: &str) -> bool {
    std::env::var("FERRY_CONTROL_UNSAFE").is_ok_and(|wanted| wanted == name)
}

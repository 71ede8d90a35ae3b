//! Flushing the large files of a tree export while the rest is copied.
//!
//! Export ends with a `syncfs` of the drive before it signs (E3 of
//! formats/media-layout-v1.md). The kernel starts writing dirty pages back
//! only seconds after they were written, so without help the drive wrote
//! the whole payload during that last call, after the copy. The large files
//! are copied first; a `fdatasync` of each on a thread of its own, as soon
//! as it is complete, has the drive write them while the small files are
//! still being copied.

use crate::error::{Error, Result};
use camino::Utf8PathBuf;
use std::fs::File;
use std::sync::mpsc::SyncSender;
use std::thread::JoinHandle;

/// Files waiting for their flush: the workers wait when the drive lags
/// this far behind, which it would have to catch up at the end anyway.
const QUEUED: usize = 4;

/// A thread that flushes the complete files it is given, in order.
pub(crate) struct BackgroundFlush {
    sender: Option<SyncSender<(Utf8PathBuf, File)>>,
    worker: Option<JoinHandle<Result<()>>>,
}

impl BackgroundFlush {
    /// Starts the flushing thread.
    pub(crate) fn new() -> Self {
        let (sender, files) = std::sync::mpsc::sync_channel::<(Utf8PathBuf, File)>(QUEUED);
        let worker = std::thread::spawn(move || {
            for (path, file) in files {
                file.sync_data().map_err(|e| Error::io("flush", path, e))?;
            }
            Ok(())
        });
        BackgroundFlush { sender: Some(sender), worker: Some(worker) }
    }

    /// Queues `file`, written completely, at `path` for a `fdatasync`.
    pub(crate) fn push(&self, path: Utf8PathBuf, file: File) {
        // A send fails only when the thread stopped at an error, which
        // `finish` returns.
        if let Some(sender) = &self.sender {
            let _ = sender.send((path, file));
        }
    }

    /// Waits for the flushes queued; the first error.
    pub(crate) fn finish(mut self) -> Result<()> {
        drop(self.sender.take());
        match self.worker.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) | None => {
                Err(Error::io("flush", Utf8PathBuf::new(), std::io::Error::other("the flushing thread stopped")))
            }
        }
    }
}

//! Tar volumes: the `layout: tar` payload (`formats/tar-volumes-v1.md`).
//!
//! Export packs the tree into deterministic POSIX tar volumes of at most a
//! given size: entries in manifest order, fixed owner, mode and time, a PAX
//! `path` record where a name does not fit the ustar header, and a file
//! that does not fit in a volume split into `PATH.ferry-part-NNNN` entries.
//! Every volume is a complete archive that GNU tar and bsdtar read.
//!
//! Readers never unpack an archive. [`index`] walks the headers of every
//! volume in order and matches each entry against the signed manifest,
//! which is the allow-list: the next entry must be exactly the next thing
//! the manifest lists (a folder, a file of the listed size, or the next
//! part of a split file). Anything else is refused with the volume, the
//! byte offset and the entry named. The resulting [`TarIndex`] says where
//! each file's bytes are, so import reads only the files it installs and
//! verifies each against its digest on the way.

use crate::beneath::Dir;
use crate::digest::{Digest, Hashed, copy_hashing};
use crate::error::{Error, IoContext, Result};
use crate::manifest::{Entry, EntryKind, Manifest, Volume};
use crate::rel_path::{RelPath, escape};
use camino::{Utf8Path, Utf8PathBuf};
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// Folder of a snapshot folder that holds the volumes.
pub const VOLUMES_DIR: &str = "volumes";
/// Default largest volume: well below FAT32's 4 GiB - 1 byte file limit.
pub const DEFAULT_VOLUME_SIZE: u64 = 4_000_000_000;
/// Smallest volume: room for the longest header and some data.
pub const MIN_VOLUME_SIZE: u64 = 64 * 1024;
/// Largest volume: an entry's size must fit the 11 octal digits of ustar.
pub const MAX_VOLUME_SIZE: u64 = 8 * 1024 * 1024 * 1024 - 1;
/// Infix of the entries that hold the parts of a split file.
pub const PART_INFIX: &str = ".ferry-part-";

const BLOCK: u64 = 512;
/// Two zero blocks end every volume.
const END_OF_ARCHIVE: u64 = 2 * BLOCK;
/// Longest PAX record block accepted: a 4096-byte path needs far less.
const MAX_PAX_BYTES: u64 = 16 * 1024;
/// Names up to this length fit the ustar `name` field without PAX.
const USTAR_NAME_BYTES: usize = 100;

/// File name of volume `number` (from 1).
pub fn volume_name(number: usize) -> String {
    format!("{number:04}.tar")
}

/// Bytes of the volumes written so far: how export learns sizes and digests.
struct OpenVolume {
    /// Largest size this volume may reach: the volume size, or less where
    /// the drive it goes to has less room left.
    capacity: u64,
    path: Utf8PathBuf,
    /// Writes the volume file on a thread of its own; `None` once it failed.
    writer: Option<Background<io::Result<()>>>,
    hasher: Background<(Vec<Digest>, Digest)>,
    written: u64,
}

impl OpenVolume {
    /// Headers and padding: small, copied to the writer and the hasher.
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.check_writer()?;
        if let Some(writer) = &mut self.writer {
            writer.update(bytes);
        }
        self.hasher.update(bytes);
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// File content: handed to the writer and the hasher without a copy.
    fn write_shared(&mut self, chunk: &Arc<Chunk>) -> Result<()> {
        self.check_writer()?;
        if let Some(writer) = &mut self.writer {
            writer.share(chunk);
        }
        self.hasher.share(chunk);
        self.written += chunk.len() as u64;
        Ok(())
    }

    /// The writer's error as soon as it has one (a full drive), so that
    /// export stops reading instead of finding out at the end.
    fn check_writer(&mut self) -> Result<()> {
        if self.writer.as_ref().is_some_and(Background::failed) {
            return self.close_writer();
        }
        Ok(())
    }

    /// Waits until every byte handed over is written; the first error.
    fn close_writer(&mut self) -> Result<()> {
        let Some(writer) = self.writer.take() else {
            return Err(Error::io("write", self.path.clone(), io::Error::other("an earlier write failed")));
        };
        match writer.finish() {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(Error::io("write", self.path.clone(), e)),
            None => Err(Error::io("write", self.path.clone(), io::Error::other("the writing thread stopped"))),
        }
    }

    fn finish(mut self) -> Result<Volume> {
        self.write(&[0; END_OF_ARCHIVE as usize])?;
        self.close_writer()?;
        // A hasher that died gives an all-zero digest: read-back and
        // verify then refuse the volume, never pass it.
        let digest = self.hasher.finish().map_or(Digest([0; 32]), |(_, digest)| digest);
        Ok(Volume { size: self.written, digest })
    }
}

/// Bytes shared between the writer and the hashers. A chunk from a
/// [`ChunkPool`] goes back to it when the last of them drops it, so that
/// export reuses a few buffers instead of faulting in fresh pages for every
/// megabyte.
struct Chunk {
    bytes: Vec<u8>,
    len: usize,
    pool: Option<ChunkPool>,
}

impl std::ops::Deref for Chunk {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        if let Some(pool) = &self.pool {
            let mut free = pool.0.lock().unwrap_or_else(|p| p.into_inner());
            if free.len() < ChunkPool::KEEP {
                free.push(std::mem::take(&mut self.bytes));
            }
        }
    }
}

/// Free buffers of [`DATA_CHUNK`] bytes.
#[derive(Clone, Default)]
struct ChunkPool(Arc<std::sync::Mutex<Vec<Vec<u8>>>>);

impl ChunkPool {
    /// Buffers kept: about as many as can be in flight.
    const KEEP: usize = 3 * IN_FLIGHT + 4;

    /// A buffer of [`DATA_CHUNK`] bytes, reused when one is free.
    fn take(&self) -> Vec<u8> {
        let reused = self.0.lock().unwrap_or_else(|p| p.into_inner()).pop();
        reused.unwrap_or_else(|| vec![0u8; DATA_CHUNK])
    }
}

/// What a [`Background`] thread is sent: more bytes, and the offsets in
/// them where a digest ends and the next begins (one per small file, so
/// that a thousand small files cost one hand-over, not a thousand).
struct Piece {
    chunk: Arc<Chunk>,
    cuts: Vec<usize>,
}

/// A thread that consumes the bytes of a volume or of the files in it:
/// the volume's writer, the volume's hasher, the files' hasher. Export
/// hashes every byte twice, once for the file's digest and once for the
/// volume's (both are signed); with each consumer on a thread of its own,
/// fed the chunks read from the source without a copy, the thread that
/// reads never waits for a hash or a write and both cores share the work.
struct Background<R> {
    /// Small bytes (headers, padding, small files) not handed over yet.
    pending: Vec<u8>,
    /// Offsets in `pending` where a digest ends.
    cuts: Vec<usize>,
    sender: Option<std::sync::mpsc::SyncSender<Piece>>,
    worker: Option<std::thread::JoinHandle<R>>,
    /// Set by a worker that failed (a writer's error).
    failed: Arc<std::sync::atomic::AtomicBool>,
}

impl<R: Send + 'static> Background<R> {
    /// Small bytes collected before they are handed over.
    const CHUNK: usize = 1024 * 1024;
    /// Shared chunks shorter than this are copied into the pending bytes.
    const SMALL: usize = 64 * 1024;

    fn spawn(
        work: impl FnOnce(std::sync::mpsc::Receiver<Piece>, &std::sync::atomic::AtomicBool) -> R + Send + 'static,
    ) -> Self {
        let (sender, pieces) = std::sync::mpsc::sync_channel::<Piece>(IN_FLIGHT);
        let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&failed);
        let worker = std::thread::spawn(move || work(pieces, &flag));
        Background {
            pending: Vec::with_capacity(Self::CHUNK),
            cuts: Vec::new(),
            sender: Some(sender),
            worker: Some(worker),
            failed,
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= Self::CHUNK {
            self.hand_over();
        }
    }

    fn share(&mut self, chunk: &Arc<Chunk>) {
        if chunk.len() < Self::SMALL {
            return self.update(chunk);
        }
        self.hand_over();
        self.send(Piece { chunk: Arc::clone(chunk), cuts: Vec::new() });
    }

    /// Ends the current digest (for a hasher).
    fn cut(&mut self) {
        self.cuts.push(self.pending.len());
    }

    fn failed(&self) -> bool {
        self.failed.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn hand_over(&mut self) {
        if !self.pending.is_empty() || !self.cuts.is_empty() {
            let bytes = std::mem::replace(&mut self.pending, Vec::with_capacity(Self::CHUNK));
            let cuts = std::mem::take(&mut self.cuts);
            self.send(Piece { chunk: Arc::new(Chunk { len: bytes.len(), bytes, pool: None }), cuts });
        }
    }

    fn send(&self, piece: Piece) {
        // The worker only stops when the sender is dropped, so a send fails
        // only if it panicked; `finish` then reports that.
        if let Some(sender) = &self.sender {
            let _ = sender.send(piece);
        }
    }

    /// Hands over what is pending, waits for the worker and returns what it
    /// made; `None` if it panicked.
    fn finish(mut self) -> Option<R> {
        self.hand_over();
        drop(self.sender.take());
        self.worker.take().and_then(|worker| worker.join().ok())
    }
}

/// Pieces in flight to each background thread: bounds memory to a few MiB.
const IN_FLIGHT: usize = 8;

/// A SHA-256 hasher: the digests ended by each cut, in order, and the
/// digest of the bytes after the last cut.
fn background_hasher() -> Background<(Vec<Digest>, Digest)> {
    Background::spawn(|pieces, _| {
        let mut done = Vec::new();
        let mut hasher = Sha256::new();
        for Piece { chunk, cuts } in pieces {
            let mut start = 0;
            for cut in cuts {
                hasher.update(&chunk[start..cut]);
                done.push(Digest(std::mem::take(&mut hasher).finalize().into()));
                start = cut;
            }
            hasher.update(&chunk[start..]);
        }
        (done, Digest(hasher.finalize().into()))
    })
}

/// Writes `file`; stops at the first error, which it flags at once and
/// returns at the end. Every [`WRITEBACK_BYTES`] written, the volume's
/// writeback is started on another thread ([`EarlyWriteback`]).
fn background_writer(mut file: File) -> Background<io::Result<()>> {
    Background::spawn(move |pieces, failed| {
        let mut writeback = EarlyWriteback::new(&file);
        for piece in pieces {
            if let Err(e) = file.write_all(&piece.chunk) {
                failed.store(true, std::sync::atomic::Ordering::Relaxed);
                return Err(e);
            }
            writeback.wrote(piece.chunk.len());
        }
        writeback.finish(&file).inspect_err(|_| failed.store(true, std::sync::atomic::Ordering::Relaxed))
    })
}

/// Bytes of a volume written between two early flushes.
const WRITEBACK_BYTES: usize = 32 * 1024 * 1024;

/// Flushes a volume while it is still being written, and once more when
/// it is complete, so that it is durable when it is closed (E3 of
/// formats/media-layout-v1.md: no `syncfs` for tar volumes). Without the
/// early flushes the drive only started writing when the kernel's
/// background writeback got round to the dirty pages (seconds later), so
/// the whole volume was written out after its last byte was hashed, one
/// after the other; with a `fdatasync` every [`WRITEBACK_BYTES`] on a
/// thread of its own, the drive writes while export reads and hashes. A
/// flush due while one is still queued is not queued again (the queued
/// one takes the new bytes too); the first error is returned at the end.
struct EarlyWriteback {
    /// Wakes the flushing thread; `None` if the handle could not be cloned
    /// (the writer then flushes once, at the end).
    wake: Option<std::sync::mpsc::SyncSender<()>>,
    flusher: Option<std::thread::JoinHandle<io::Result<()>>>,
    since_flush: usize,
}

impl EarlyWriteback {
    fn new(file: &File) -> Self {
        let Ok(handle) = file.try_clone() else {
            return EarlyWriteback { wake: None, flusher: None, since_flush: 0 };
        };
        let (wake, woken) = std::sync::mpsc::sync_channel::<()>(1);
        let flusher = std::thread::spawn(move || {
            for () in woken {
                handle.sync_data()?;
            }
            Ok(())
        });
        EarlyWriteback { wake: Some(wake), flusher: Some(flusher), since_flush: 0 }
    }

    fn wrote(&mut self, bytes: usize) {
        self.since_flush += bytes;
        if self.since_flush >= WRITEBACK_BYTES {
            self.since_flush = 0;
            if let Some(wake) = &self.wake {
                // Full: a flush is queued already and will take these bytes.
                let _ = wake.try_send(());
            }
        }
    }

    /// Flushes `file`, now complete, and waits for that; the first error
    /// of any flush.
    fn finish(mut self, file: &File) -> io::Result<()> {
        let Some(wake) = self.wake.take() else { return file.sync_data() };
        // Queued or sent now, one flush starts after the last write. A
        // flusher that stopped early returned its error: `join` gives it.
        let _ = wake.try_send(());
        drop(wake);
        match self.flusher.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) | None => Err(io::Error::other("the flushing thread stopped")),
        }
    }
}

/// A folder that receives volumes, and how many bytes of volumes it may
/// take: one per drive when a snapshot spans several drives.
#[derive(Debug, Clone)]
pub struct Destination {
    /// The `volumes/` folder on that drive (it must exist and be empty).
    pub dir: Utf8PathBuf,
    /// Bytes of volumes it may take; `u64::MAX` for no limit.
    pub budget: u64,
}

/// A destination as the writer holds it: the folder open, the room left.
struct Bin {
    dir: Dir,
    budget: u64,
}

/// Refuses a volume size outside [`MIN_VOLUME_SIZE`] to [`MAX_VOLUME_SIZE`].
pub fn check_volume_size(size: u64) -> Result<()> {
    if (MIN_VOLUME_SIZE..=MAX_VOLUME_SIZE).contains(&size) {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "--volume-size {size} bytes is outside {MIN_VOLUME_SIZE} to {MAX_VOLUME_SIZE} bytes (64K to 8G - 1)"
        )))
    }
}

/// A finished volume and the destination (drive) it went to.
#[derive(Debug, Clone)]
pub struct PlacedVolume {
    /// Size and digest, for the manifest.
    pub volume: Volume,
    /// Index into the destinations given to [`VolumeWriter::new`].
    pub destination: usize,
}

/// Writes a snapshot's entries as tar volumes of at most `capacity` bytes,
/// deterministically: the same entries, contents, capacity, destination
/// budgets and `mtime` always give the same bytes.
pub struct VolumeWriter {
    destinations: Vec<Bin>,
    /// Index of the destination volumes go to now.
    destination: usize,
    capacity: u64,
    mtime: u64,
    current: Option<OpenVolume>,
    finished: Vec<PlacedVolume>,
    /// The digests of the files added, one cut per file.
    files: Background<(Vec<Digest>, Digest)>,
    /// Buffers for file content.
    pool: ChunkPool,
}

impl VolumeWriter {
    /// Starts writing volumes into `destinations`, filling each in turn.
    pub fn new(destinations: Vec<Destination>, capacity: u64, mtime: u64) -> Result<Self> {
        let opened = destinations
            .into_iter()
            .map(|destination| Ok((Dir::root(&destination.dir)?, destination.budget)))
            .collect::<Result<_>>()?;
        Self::in_dirs(opened, capacity, mtime)
    }

    /// [`VolumeWriter::new`] with the `volumes/` folders already opened
    /// (without following links, [`crate::beneath`]), each with its budget.
    pub fn in_dirs(destinations: Vec<(Dir, u64)>, capacity: u64, mtime: u64) -> Result<Self> {
        check_volume_size(capacity)?;
        let destinations = destinations.into_iter().map(|(dir, budget)| Bin { dir, budget }).collect();
        Ok(VolumeWriter {
            destinations,
            destination: 0,
            capacity,
            mtime,
            current: None,
            finished: Vec::new(),
            files: background_hasher(),
            pool: ChunkPool::default(),
        })
    }

    fn used(&self) -> u64 {
        self.current.as_ref().map_or(0, |v| v.written)
    }

    /// The largest the next volume may be: capped by the room left at its
    /// destination.
    fn next_capacity(&self) -> u64 {
        let budget = self.destinations.get(self.destination).map_or(0, |d| d.budget);
        self.capacity.min(budget)
    }

    /// Room left for one more entry's headers and data in the open volume
    /// (or in the next one, if none is open).
    fn room(&self) -> u64 {
        let capacity = self.current.as_ref().map_or_else(|| self.next_capacity(), |v| v.capacity);
        capacity.saturating_sub(self.used() + END_OF_ARCHIVE)
    }

    fn volume(&mut self) -> Result<&mut OpenVolume> {
        if self.current.is_none() {
            // A drive with less room than the smallest volume is full.
            while self.next_capacity() < MIN_VOLUME_SIZE {
                if self.destination + 1 >= self.destinations.len() {
                    let last = self.destinations.last().map(|d| d.dir.path().to_owned()).unwrap_or_default();
                    return Err(Error::DriveUnfit {
                        media: last,
                        problems: vec![format!(
                            "the snapshot needs more room than the drives given: {} written so far; give another drive",
                            crate::report::counted(self.finished.len(), "volume", "volumes")
                        )],
                    });
                }
                self.destination += 1;
            }
            let capacity = self.next_capacity();
            let name = volume_name(self.finished.len() + 1);
            let dir = &self.destinations[self.destination].dir;
            let path = dir.path().join(&name);
            let file = dir.create_file(&name)?;
            self.current = Some(OpenVolume {
                capacity,
                path,
                writer: Some(background_writer(file)),
                hasher: background_hasher(),
                written: 0,
            });
        }
        Ok(self.current.as_mut().expect("opened above"))
    }

    fn close_volume(&mut self) -> Result<()> {
        if let Some(volume) = self.current.take() {
            let volume = volume.finish()?;
            let destination = &mut self.destinations[self.destination];
            destination.budget = destination.budget.saturating_sub(volume.size);
            self.finished.push(PlacedVolume { volume, destination: self.destination });
        }
        Ok(())
    }

    /// Adds a folder.
    pub fn add_dir(&mut self, path: &RelPath) -> Result<()> {
        let headers = headers(&format!("{path}/"), Kind::Dir, 0, self.mtime, false);
        if headers.len() as u64 > self.room() {
            self.close_volume()?;
        }
        self.volume()?.write(&headers)
    }

    /// Adds a file of `size` bytes read from `reader`, split over volumes
    /// where it does not fit. What is read must be exactly `size` bytes (a
    /// file that changes while it is exported fails the export); its
    /// digest, computed on another thread, comes from
    /// [`VolumeWriter::finish_hashed`].
    pub fn add_file(
        &mut self,
        path: &RelPath,
        size: u64,
        executable: bool,
        reader: &mut dyn Read,
        source: &Utf8Path,
        progress: &dyn Fn(u64),
    ) -> Result<()> {
        let whole = headers(path.as_str(), Kind::File, size, self.mtime, executable);
        let whole_cost = whole.len() as u64 + padded(size);
        if whole_cost > self.room() && self.used() > 0 && whole_cost <= self.capacity - END_OF_ARCHIVE {
            self.close_volume()?;
        }
        if whole_cost <= self.room() {
            self.volume()?.write(&whole)?;
            self.copy_data(size, reader, source, progress)?;
        } else {
            let mut part = 1;
            let mut left = size;
            while left > 0 {
                let name = format!("{path}{PART_INFIX}{part:04}");
                let header_bytes = headers(&name, Kind::File, 0, self.mtime, executable).len() as u64;
                let fits = (self.room().saturating_sub(header_bytes) / BLOCK * BLOCK).min(left);
                if fits == 0 {
                    // No block fits: end this volume, or, with none open,
                    // let `volume` move on to the next drive.
                    if self.current.is_some() {
                        self.close_volume()?;
                    } else {
                        self.volume()?;
                    }
                    continue;
                }
                let part_headers = headers(&name, Kind::File, fits, self.mtime, executable);
                self.volume()?.write(&part_headers)?;
                self.copy_data(fits, reader, source, progress)?;
                left -= fits;
                part += 1;
            }
        }
        // The file must end exactly where the scan said it would.
        let mut probe = [0u8; 1];
        if reader.read(&mut probe).ctx("read", source)? != 0 {
            return Err(changed_while_exported(source, size));
        }
        self.files.cut();
        Ok(())
    }

    /// Copies `length` bytes of content and its padding into the open
    /// volume, in chunks that the writer, the file's hasher and the
    /// volume's hasher share.
    fn copy_data(
        &mut self,
        length: u64,
        reader: &mut dyn Read,
        source: &Utf8Path,
        progress: &dyn Fn(u64),
    ) -> Result<()> {
        self.volume()?;
        let volume = self.current.as_mut().expect("opened above");
        let mut left = length;
        while left > 0 {
            let mut bytes = self.pool.take();
            let wanted = usize::try_from(left).unwrap_or(usize::MAX).min(DATA_CHUNK);
            let read = read_full(reader, &mut bytes[..wanted]).map_err(|e| Error::io("read", source, e))?;
            if read == 0 {
                break;
            }
            let chunk = Arc::new(Chunk { bytes, len: read, pool: Some(self.pool.clone()) });
            self.files.share(&chunk);
            volume.write_shared(&chunk)?;
            left -= read as u64;
            progress(read as u64);
        }
        if left != 0 {
            return Err(changed_while_exported(source, length));
        }
        volume.write(&[0; BLOCK as usize][..(padded(length) - length) as usize])
    }

    /// Ends the last volume and returns every volume's size and digest,
    /// in order, with the index of the destination it went to. A snapshot
    /// with no entries still gets one (empty) volume.
    pub fn finish(self) -> Result<Vec<PlacedVolume>> {
        Ok(self.finish_hashed()?.0)
    }

    /// [`VolumeWriter::finish`], and the SHA-256 of every file added, in
    /// the order they were added.
    pub fn finish_hashed(mut self) -> Result<(Vec<PlacedVolume>, Vec<Digest>)> {
        self.volume()?;
        self.close_volume()?;
        let digests = self.files.finish().map(|(digests, _)| digests).unwrap_or_default();
        Ok((self.finished, digests))
    }
}

/// Bytes of file content read at a time by export: few system calls, and
/// a few such chunks in flight between the writer and the two hashers.
const DATA_CHUNK: usize = 1024 * 1024;

/// Reads until `buffer` is full or the reader ends; returns the bytes read.
fn read_full(reader: &mut dyn Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// About how many bytes of volumes `entries` (path, and size for a file)
/// make with volumes of `volume_size`: every header and padded content, an
/// end marker per volume, and a header per part where a file is split. An
/// upper bound within a few blocks, used to check room before writing.
pub fn estimate<'a>(entries: impl Iterator<Item = (&'a str, Option<u64>)>, volume_size: u64) -> u64 {
    let mut total = 0u64;
    for (path, size) in entries {
        let header = headers(path, Kind::Dir, 0, 0, false).len() as u64 + BLOCK;
        let data = size.map_or(0, padded);
        let parts = data.div_ceil(volume_size.saturating_sub(header + END_OF_ARCHIVE).max(BLOCK)).max(1);
        total = total.saturating_add(parts * header + data);
    }
    let volumes = total.div_ceil(volume_size.saturating_sub(END_OF_ARCHIVE).max(BLOCK)).max(1);
    // A volume closed early (P1, P2) wastes at most one entry's worth: count
    // a block per volume for it on top of the end markers.
    total.saturating_add(volumes * (END_OF_ARCHIVE + BLOCK))
}

fn changed_while_exported(source: &Utf8Path, size: u64) -> Error {
    Error::SourceChanged {
        path: source.to_owned(),
        problem: format!("it no longer has the {size} bytes it had when scanned"),
    }
}

fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK) * BLOCK
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
}

/// The header block(s) of one entry: a PAX `path` record first when the
/// name is longer than the ustar field or not ASCII.
fn headers(name: &str, kind: Kind, size: u64, mtime: u64, executable: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 * BLOCK as usize);
    let needs_pax = name.len() > USTAR_NAME_BYTES || !name.is_ascii();
    if needs_pax {
        let record = pax_record("path", name);
        out.extend_from_slice(&header_block(b"PaxHeader", b'x', record.len() as u64, mtime, 0o644));
        out.extend_from_slice(&record);
        out.resize(padded(out.len() as u64) as usize, 0);
    }
    // Readers that ignore PAX see the name cut to the field, at a character boundary.
    let mut short = name.len().min(USTAR_NAME_BYTES);
    while !name.is_char_boundary(short) {
        short -= 1;
    }
    let (typeflag, mode) = match kind {
        Kind::Dir => (b'5', 0o755),
        Kind::File if executable => (b'0', 0o755),
        Kind::File => (b'0', 0o644),
    };
    out.extend_from_slice(&header_block(&name.as_bytes()[..short], typeflag, size, mtime, mode));
    out
}

fn header_block(name: &[u8], typeflag: u8, size: u64, mtime: u64, mode: u32) -> [u8; BLOCK as usize] {
    let mut header = tar::Header::new_ustar();
    header.set_size(size);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime);
    let ustar = header.as_ustar_mut().expect("new_ustar makes a ustar header");
    ustar.name[..name.len()].copy_from_slice(name);
    ustar.typeflag = [typeflag];
    header.set_cksum();
    *header.as_bytes()
}

/// One `LEN key=value\n` record; LEN counts its own digits.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let rest = key.len() + value.len() + 3; // " ", "=", "\n"
    let mut length = rest + 1;
    while length != rest + length.to_string().len() {
        length = rest + length.to_string().len();
    }
    format!("{length} {key}={value}\n").into_bytes()
}

/// Where a stretch of a file's bytes lies in the volumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Volume number, from 1.
    pub volume: usize,
    /// Byte offset of the data in the volume file.
    pub offset: u64,
    /// Length in bytes.
    pub length: u64,
}

/// Where every file of a snapshot lies in its volumes, built by [`index`]
/// after every header matched the signed manifest.
#[derive(Debug, Clone)]
pub struct TarIndex {
    /// Path and open file of each volume, volume 1 first (they may lie on
    /// several drives).
    volumes: Vec<(Utf8PathBuf, Arc<File>)>,
    files: FileSegments,
    /// Per volume: every header is byte for byte the one export writes for
    /// its entry (T1 to T5), so the only bytes the signer's volume digest
    /// covers beyond them are file contents, padding and the end marker.
    canonical: Vec<bool>,
}

/// Each manifest file's segments, compact because a snapshot may hold a
/// million files (issue 14): the paths in one arena, in manifest order
/// (sorted by bytes, so a lookup is a binary search), and every segment in
/// one list. About 60 bytes per file where a map of paths to lists took 120.
#[derive(Debug, Clone)]
struct FileSegments {
    /// Every path, one after another.
    arena: String,
    /// Where file `i`'s path ends in `arena` (it starts where `i - 1`'s ends).
    path_ends: Vec<u32>,
    /// Index in `segments` of file `i`'s first segment; its last is the one
    /// before file `i + 1`'s first.
    first_segment: Vec<u32>,
    segments: Vec<Segment>,
}

impl FileSegments {
    /// Room for the files of `manifest`, each in one segment, so the lists
    /// never grow by doubling.
    fn for_manifest(manifest: &Manifest) -> Self {
        let (count, path_bytes) =
            manifest.files().fold((0, 0), |(count, bytes), (path, _)| (count + 1, bytes + path.as_str().len()));
        FileSegments {
            arena: String::with_capacity(path_bytes),
            path_ends: Vec::with_capacity(count),
            first_segment: Vec::with_capacity(count),
            segments: Vec::with_capacity(count),
        }
    }

    /// Adds a segment of `path`, which is the last file added or comes after
    /// it in [`volume_order`].
    fn push(&mut self, path: &RelPath, segment: Segment) -> std::result::Result<(), String> {
        let count = self.path_ends.len();
        let last = count.checked_sub(1).map(|i| self.path(i));
        if last != Some(path.as_str()) {
            if last.is_some_and(|last| volume_order(last) >= volume_order(path.as_str())) {
                return Err(format!("`{path}` comes after a file that sorts after it"));
            }
            self.arena.push_str(path.as_str());
            let end = u32::try_from(self.arena.len()).map_err(|_| "more than 4 GiB of paths".to_owned())?;
            let first = u32::try_from(self.segments.len()).map_err(|_| "more than 2^32 segments".to_owned())?;
            self.path_ends.push(end);
            self.first_segment.push(first);
        }
        self.segments.push(segment);
        Ok(())
    }

    /// The path of file `i`.
    fn path(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.path_ends[i - 1] as usize };
        &self.arena[start..self.path_ends[i] as usize]
    }

    /// The segments of `path`, if the index holds it.
    fn get(&self, path: &RelPath) -> Option<&[Segment]> {
        let count = self.path_ends.len();
        let i = binary_search(count, |i| volume_order(self.path(i)).cmp(&volume_order(path.as_str())))?;
        let end = self.first_segment.get(i + 1).map_or(self.segments.len(), |next| *next as usize);
        Some(&self.segments[self.first_segment[i] as usize..end])
    }

    /// Frees the room the lists grew into.
    fn shrink(&mut self) {
        self.arena.shrink_to_fit();
        self.path_ends.shrink_to_fit();
        self.first_segment.shrink_to_fit();
        self.segments.shrink_to_fit();
    }
}

/// The order of files in the volumes: manifest order (path bytes), then
/// the patch files a delta's medium adds under the reserved root `.ferry`
/// after every file (formats/delta-v1.md §5 DM2; no manifest path starts
/// with `.ferry/`, manifest-v1.md §5 P9).
fn volume_order(path: &str) -> (bool, &[u8]) {
    (path.starts_with(".ferry/"), path.as_bytes())
}

/// The `i` in `0..count` for which `compare(i)` is `Equal`, in a list sorted
/// by `compare`.
fn binary_search(count: usize, compare: impl Fn(usize) -> std::cmp::Ordering) -> Option<usize> {
    let (mut low, mut high) = (0, count);
    while low < high {
        let middle = low + (high - low) / 2;
        match compare(middle) {
            std::cmp::Ordering::Less => low = middle + 1,
            std::cmp::Ordering::Greater => high = middle,
            std::cmp::Ordering::Equal => return Some(middle),
        }
    }
    None
}

impl TarIndex {
    /// The path of volume `number` (from 1).
    pub fn volume_path(&self, number: usize) -> Utf8PathBuf {
        self.volumes.get(number.wrapping_sub(1)).map_or_else(|| volume_name(number).into(), |(path, _)| path.clone())
    }

    /// A reader over the whole of volume `number` (from 1), from its start.
    fn read_volume(&self, number: usize) -> Option<PositionedReader<'_>> {
        let (_, file) = self.volumes.get(number.wrapping_sub(1))?;
        Some(PositionedReader { file, position: 0, end: u64::MAX })
    }

    /// Where the file's bytes are; `None` if the manifest lists no such file.
    pub fn segments(&self, path: &RelPath) -> Option<&[Segment]> {
        self.files.get(path)
    }

    /// A reader over the file's bytes, across volumes, in order.
    pub fn open(&self, path: &RelPath) -> SegmentReader<'_> {
        SegmentReader { index: self, segments: self.segments(path).unwrap_or(&[]), current: None }
    }
}

impl crate::payload::FileSource for TarIndex {
    fn open(&self, path: &RelPath, _expected: &crate::manifest::FileEntry) -> Result<crate::payload::OpenedFile<'_>> {
        let volume = self.volume_path(self.segments(path).and_then(|s| s.first()).map_or(0, |s| s.volume));
        Ok(crate::payload::OpenedFile {
            reader: Box::new(TarIndex::open(self, path)),
            shown_as: Utf8PathBuf::from(format!("{volume}: {path}")),
            origin: volume,
        })
    }

    fn read_position(&self, path: &RelPath) -> (usize, u64) {
        self.segments(path).and_then(|s| s.first()).map_or((0, 0), |s| (s.volume, s.offset))
    }
}

/// Reads a file's segments one after another; a short volume reads short,
/// which the digest check then reports.
pub struct SegmentReader<'a> {
    index: &'a TarIndex,
    segments: &'a [Segment],
    current: Option<PositionedReader<'a>>,
}

impl Read for SegmentReader<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.current.is_none() {
                let Some((first, rest)) = self.segments.split_first() else { return Ok(0) };
                self.segments = rest;
                let Some((_, file)) = self.index.volumes.get(first.volume.wrapping_sub(1)) else { return Ok(0) };
                self.current =
                    Some(PositionedReader { file, position: first.offset, end: first.offset + first.length });
            }
            let read = self.current.as_mut().expect("opened above").read(buffer)?;
            if read == 0 {
                // Segment done, or the volume is shorter than its headers say.
                self.current = None;
                continue;
            }
            return Ok(read);
        }
    }
}

/// Reads a stretch of an open volume with positioned reads, so that many
/// readers can share one handle.
struct PositionedReader<'a> {
    file: &'a File,
    position: u64,
    end: u64,
}

impl Read for PositionedReader<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let wanted = buffer.len().min(usize::try_from(self.end - self.position).unwrap_or(usize::MAX));
        if wanted == 0 {
            return Ok(0);
        }
        let read = self.file.read_at(&mut buffer[..wanted], self.position)?;
        self.position += read as u64;
        Ok(read)
    }
}

/// One parsed header: what the volume says comes next.
#[derive(Debug)]
struct TarEntry {
    name: String,
    kind: Kind,
    size: u64,
    /// Offset of the entry's first header block.
    at: u64,
    /// Every header byte of the entry (a PAX header and its records
    /// included), to compare with the canonical ones (T1 to T5).
    raw: Vec<u8>,
}

/// Reads headers of one volume file with positioned reads.
struct HeaderWalker<'a> {
    file: &'a File,
    path: &'a Utf8Path,
    position: u64,
    length: u64,
}

impl HeaderWalker<'_> {
    fn refuse(&self, at: u64, problem: impl std::fmt::Display) -> Error {
        Error::Damaged { media: self.path.to_owned(), problems: vec![format!("at byte {at}: {problem}")] }
    }

    fn read_block(&mut self) -> Result<[u8; BLOCK as usize]> {
        let mut block = [0u8; BLOCK as usize];
        if self.position + BLOCK > self.length {
            return Err(self.refuse(self.position, "the volume ends in the middle of an entry (truncated?)"));
        }
        self.file.read_exact_at(&mut block, self.position).ctx("read", self.path)?;
        self.position += BLOCK;
        Ok(block)
    }

    /// The next entry, or `None` at the end-of-archive marker.
    fn next(&mut self) -> Result<Option<TarEntry>> {
        let at = self.position;
        let block = self.read_block()?;
        if block.iter().all(|&b| b == 0) {
            let second = self.read_block()?;
            if second.iter().any(|&b| b != 0) {
                return Err(self.refuse(at, "a single zero block where the end-of-archive marker needs two"));
            }
            return Ok(None);
        }
        let header = self.check_header(at, &block)?;
        let (typeflag, size) = header;
        let mut raw = block.to_vec();
        let mut pax_path = None;
        let (typeflag, size, block) = if typeflag == b'x' {
            if size > MAX_PAX_BYTES {
                return Err(self.refuse(at, format!("a PAX header of {size} bytes (at most {MAX_PAX_BYTES})")));
            }
            let mut records = vec![0u8; padded(size) as usize];
            if self.position + padded(size) > self.length {
                return Err(self.refuse(at, "the volume ends in the middle of a PAX header (truncated?)"));
            }
            self.file.read_exact_at(&mut records, self.position).ctx("read", self.path)?;
            self.position += padded(size);
            raw.extend_from_slice(&records);
            records.truncate(size as usize);
            pax_path = Some(parse_pax(&records).map_err(|problem| {
                // Name the entry the PAX header belongs to, as its ustar header does.
                let mut next = [0u8; BLOCK as usize];
                match self.position + BLOCK <= self.length && self.file.read_exact_at(&mut next, self.position).is_ok()
                {
                    true => self.refuse(at, format!("entry `{}`: {problem}", ustar_name(&next))),
                    false => self.refuse(at, problem),
                }
            })?);
            let next_at = self.position;
            let block = self.read_block()?;
            let (typeflag, size) = self.check_header(next_at, &block)?;
            if typeflag == b'x' {
                return Err(self.refuse(next_at, "two PAX headers in a row"));
            }
            raw.extend_from_slice(&block);
            (typeflag, size, block)
        } else {
            (typeflag, size, block)
        };
        let field = &block[..USTAR_NAME_BYTES];
        let short = &field[..field.iter().position(|&b| b == 0).unwrap_or(USTAR_NAME_BYTES)];
        let prefix = &block[345..500];
        if prefix.iter().any(|&b| b != 0) {
            return Err(self.refuse(at, "the ustar prefix field is used (ferry never writes it)"));
        }
        let name = match pax_path {
            Some(path) => path,
            None => String::from_utf8(short.to_vec())
                .map_err(|_| self.refuse(at, format!("the name `{}` is not UTF-8", String::from_utf8_lossy(short))))?,
        };
        let kind = match typeflag {
            b'0' => Kind::File,
            b'5' => Kind::Dir,
            other => return Err(self.refuse(at, format!("entry `{}` is {}", escape(&name), describe_type(other)))),
        };
        if kind == Kind::Dir && size != 0 {
            return Err(self.refuse(at, format!("folder entry `{}` claims {size} bytes of data", escape(&name))));
        }
        if self.position + padded(size) > self.length {
            return Err(
                self.refuse(at, format!("entry `{}`: the volume ends inside its data (truncated?)", escape(&name)))
            );
        }
        Ok(Some(TarEntry { name, kind, size, at, raw }))
    }

    /// Checks checksum and magic; returns the type flag and the size field.
    fn check_header(&self, at: u64, block: &[u8; BLOCK as usize]) -> Result<(u8, u64)> {
        let header = tar::Header::from_byte_slice(block);
        let stored = header.cksum().map_err(|_| self.refuse(at, "a header with an unreadable checksum"))?;
        let computed: u32 =
            block.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { b as u32 }).sum();
        if stored != computed {
            return Err(self.refuse(at, "a header whose checksum does not match (damaged, or not a tar volume)"));
        }
        // The checksum matched, so the name field is worth showing, in a
        // refusal only (escaping every name cost more than the checks).
        let name = || ustar_name(block);
        if &block[257..265] != b"ustar\x0000" {
            return Err(self.refuse(
                at,
                format!("entry `{}`: a header that is not POSIX ustar (ferry writes only ustar and PAX)", name()),
            ));
        }
        if block[124] & 0x80 != 0 {
            return Err(
                self.refuse(at, format!("entry `{}`: a size in base-256 (ferry writes octal sizes only)", name()))
            );
        }
        let size = header
            .entry_size()
            .map_err(|_| self.refuse(at, format!("entry `{}`: a header with an unreadable size", name())))?;
        Ok((block[156], size))
    }
}

/// The ustar `name` field of a header block, escaped, for messages.
fn ustar_name(block: &[u8; BLOCK as usize]) -> String {
    let field = &block[..USTAR_NAME_BYTES];
    escape(&String::from_utf8_lossy(&field[..field.iter().position(|&b| b == 0).unwrap_or(USTAR_NAME_BYTES)]))
}

fn describe_type(typeflag: u8) -> String {
    let kind = match typeflag {
        b'1' => "a hard link",
        b'2' => "a symbolic link",
        b'3' => "a character device",
        b'4' => "a block device",
        b'6' => "a FIFO",
        b'7' => "a contiguous file",
        b'g' => "a global PAX header",
        b'L' | b'K' => "a GNU long-name record",
        b'S' => "a sparse file",
        b'M' => "a GNU multi-volume continuation",
        b'\0' => "an old-style (pre-POSIX) file",
        _ => return format!("of unknown type `{}`", typeflag.escape_ascii()),
    };
    format!("{kind} (only files and folders are allowed)")
}

/// The `path` of a PAX header; every other key is refused, so no reader
/// can be told a size or name other than the ones ferry checks.
fn parse_pax(mut records: &[u8]) -> std::result::Result<String, String> {
    let mut path = None;
    while !records.is_empty() {
        let space = records.iter().position(|&b| b == b' ').ok_or("a PAX record without a length")?;
        let length: usize = std::str::from_utf8(&records[..space])
            .ok()
            .filter(|t| !t.starts_with('0'))
            .and_then(|t| t.parse().ok())
            .ok_or("a PAX record with a bad length")?;
        if length <= space + 1 || length > records.len() || records[length - 1] != b'\n' {
            return Err("a PAX record whose length does not match".into());
        }
        let record = &records[space + 1..length - 1];
        let equals = record.iter().position(|&b| b == b'=').ok_or("a PAX record without `=`")?;
        let key = &record[..equals];
        let value = std::str::from_utf8(&record[equals + 1..]).map_err(|_| "a PAX path that is not UTF-8")?;
        if key != b"path" {
            return Err(format!(
                "a PAX record `{}` (ferry allows only `path`, so no reader sees another name or size)",
                String::from_utf8_lossy(key).escape_debug()
            ));
        }
        if path.replace(value.to_owned()).is_some() {
            return Err("two PAX `path` records for one entry".into());
        }
        records = &records[length..];
    }
    path.ok_or_else(|| "a PAX header without a `path` record".into())
}

/// Walks every volume's headers in order and matches each entry against
/// the manifest (the allow-list). Volume N is looked for in each of `dirs`
/// in turn (one `volumes/` folder per drive of a spanned snapshot). Reads
/// headers only; data is read later, by whoever needs it, and checked
/// against the file digests then.
pub fn index(dirs: &[Utf8PathBuf], manifest: &Manifest) -> Result<TarIndex> {
    let opened: Vec<Dir> = dirs.iter().map(|dir| Dir::root(dir)).collect::<Result<_>>()?;
    index_in(&opened, manifest)
}

/// [`index`] over `volumes/` folders already opened (without following
/// links, [`crate::beneath`]). Each volume is opened non-blocking, checked
/// to be a regular file of the signed size before a byte is read, and kept
/// open: the bytes read later come from the file the headers were read from.
pub fn index_in(dirs: &[Dir], manifest: &Manifest) -> Result<TarIndex> {
    let volumes = manifest.layout.volumes();
    let mut expected = Expected::new(&manifest.entries);
    let mut files = FileSegments::for_manifest(manifest);
    let mut paths = Vec::with_capacity(volumes.len());
    let mut canonical = Vec::with_capacity(volumes.len());
    // The mtime export gives every header (T4).
    let mtime = u64::try_from(manifest.created.as_second()).unwrap_or(0);
    for (i, volume) in volumes.iter().enumerate() {
        let number = i + 1;
        let name = volume_name(number);
        let mut found = None;
        for dir in dirs {
            if dir.kind(Utf8Path::new(&name))?.is_some() {
                found = Some(dir);
                break;
            }
        }
        let Some(dir) = found else {
            let looked: Vec<String> = dirs.iter().map(|d| d.path().to_string()).collect();
            return Err(Error::Damaged {
                media: dirs.first().map(|d| d.path().to_owned()).unwrap_or_default(),
                problems: vec![format!(
                    "missing: volume {} of {} (looked in {}{})",
                    volume_name(number),
                    volumes.len(),
                    looked.join(", "),
                    if dirs.len() > 1 || number > 1 { "; is a drive of this snapshot missing?" } else { "" }
                )],
            });
        };
        let path = dir.path().join(&name);
        let file = dir.open_file(Utf8Path::new(&name))?;
        let length = file.metadata().ctx("inspect", &path)?.len();
        if length != volume.size {
            return Err(Error::Damaged {
                media: path.clone(),
                problems: vec![format!(
                    "size is {length} bytes, the signed manifest says {} (truncated, or from another export?)",
                    volume.size
                )],
            });
        }
        let mut walker = HeaderWalker { file: &file, path: &path, position: 0, length };
        let mut all_canonical = true;
        while let Some(entry) = walker.next()? {
            let data_offset = walker.position;
            let (file_path, executable) =
                expected.accept(&entry).map_err(|problem| walker.refuse(entry.at, problem))?;
            all_canonical =
                all_canonical && entry.raw == headers(&entry.name, entry.kind, entry.size, mtime, executable);
            if let Some(file_path) = file_path {
                let segment = Segment { volume: number, offset: data_offset, length: entry.size };
                files.push(file_path, segment).map_err(|problem| walker.refuse(entry.at, &problem))?;
            }
            walker.position += padded(entry.size);
        }
        if walker.position != length {
            return Err(walker.refuse(walker.position, "bytes after the end-of-archive marker"));
        }
        paths.push((path, Arc::new(file)));
        canonical.push(all_canonical);
    }
    if let Some(missing) = expected.missing() {
        let media = dirs.first().map(|d| d.path().to_owned()).unwrap_or_default();
        return Err(Error::Damaged { media, problems: vec![missing] });
    }
    files.shrink();
    Ok(TarIndex { volumes: paths, files, canonical })
}

/// The allow-list as a cursor over the manifest: what must come next.
struct Expected<'a> {
    entries: &'a [Entry],
    next: usize,
    /// In a split file: the next part number and the bytes seen so far.
    split: Option<(u32, u64)>,
}

impl<'a> Expected<'a> {
    fn new(entries: &'a [Entry]) -> Self {
        Expected { entries, next: 0, split: None }
    }

    /// Checks one entry; returns the manifest file it holds bytes of (if
    /// any) and whether that file is executable.
    fn accept(&mut self, entry: &TarEntry) -> std::result::Result<(Option<&'a RelPath>, bool), String> {
        let name = escape(&entry.name);
        let Some(listed) = self.entries.get(self.next) else {
            return Err(format!("entry `{name}` comes after the last entry the signed manifest lists"));
        };
        let path = listed.path.as_str();
        match (&listed.kind, entry.kind) {
            (EntryKind::Dir, Kind::Dir) if entry.name.strip_suffix('/') == Some(path) => {
                self.next += 1;
                Ok((None, false))
            }
            (EntryKind::File(file), Kind::File) => {
                let (part, seen) = self.split.unwrap_or((1, 0));
                if self.split.is_none() && entry.name == path {
                    if entry.size != file.size {
                        return Err(format!(
                            "entry `{name}` is {} bytes, the signed manifest says {}",
                            entry.size, file.size
                        ));
                    }
                    self.next += 1;
                    return Ok((Some(&listed.path), file.executable));
                }
                let part_name = format!("{path}{PART_INFIX}{part:04}");
                if entry.name != part_name {
                    return Err(self.unexpected(&name));
                }
                let total = seen + entry.size;
                if entry.size == 0 || total > file.size || (part == 1 && total == file.size) {
                    return Err(format!(
                        "part entry `{name}` of {} bytes does not fit the {} bytes the signed manifest lists",
                        entry.size, file.size
                    ));
                }
                if total == file.size {
                    self.split = None;
                    self.next += 1;
                } else {
                    self.split = Some((part + 1, total));
                }
                Ok((Some(&listed.path), file.executable))
            }
            _ => Err(self.unexpected(&name)),
        }
    }

    fn unexpected(&self, name: &str) -> String {
        let listed = &self.entries[self.next];
        let wanted = match (&listed.kind, self.split) {
            (EntryKind::Dir, _) => format!("folder `{}/`", listed.path),
            (EntryKind::File(_), Some((part, _))) => format!("`{}{PART_INFIX}{part:04}`", listed.path),
            (EntryKind::File(_), None) => format!("file `{}`", listed.path),
        };
        format!(
            "entry `{name}` is not what the signed manifest lists next ({wanted}): not in the manifest, duplicated or out of order"
        )
    }

    fn missing(&self) -> Option<String> {
        let listed = self.entries.get(self.next)?;
        Some(format!("missing: {} (the volumes end before it)", listed.path))
    }
}

/// Checks every byte of every volume: what `verify` and read-back do.
/// Problems are listed, not stopped at. Where every header is the
/// canonical one (R3a), each file's content is hashed once, on every core,
/// and the padding checked; otherwise each volume is read whole and
/// compared with its signed digest (R3), on one core per volume.
pub fn check_all(
    index: &TarIndex,
    manifest: &Manifest,
    from_device: bool,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<String>> {
    if from_device {
        for (_, file) in &index.volumes {
            crate::fsutil::drop_cache(file);
        }
    }
    if index.canonical.iter().all(|&canonical| canonical) {
        let (mut problems, suspects) = check_contents(index, manifest, progress)?;
        // Name the volumes the damage lies in, as R3 does.
        problems.extend(check_volumes(index, manifest, &suspects, &|_| {})?.1);
        return Ok(problems);
    }
    let every: Vec<usize> = (1..=manifest.layout.volumes().len()).collect();
    let (damaged, mut problems) = check_volumes(index, manifest, &every, progress)?;
    if damaged.is_empty() {
        return Ok(problems);
    }
    // Some volume differs from what was signed: name the files it damaged,
    // hashing only those with bytes in it.
    for (path, expected) in manifest.files() {
        let segments = index.segments(path).unwrap_or(&[]);
        if !segments.iter().any(|segment| damaged.contains(&segment.volume)) {
            continue;
        }
        let mut reader = index.open(path);
        let seen = copy_hashing(&mut reader, None, expected.size, &|_| {}).ctx("read", &index.volume_path(1))?;
        if let Some(problem) = crate::payload::mismatch(&seen, expected) {
            let volumes: Vec<String> = segments.iter().map(|s| volume_name(s.volume)).collect();
            problems.push(format!("damaged: {path} in volume {} ({problem})", volumes.join(", ")));
        }
    }
    Ok(problems)
}

/// R3 for the volumes `numbers` (from 1): each read whole and compared with
/// its signed size and digest. Returns the ones that differ and a problem
/// line for each.
fn check_volumes(
    index: &TarIndex,
    manifest: &Manifest,
    numbers: &[usize],
    progress: &dyn Fn(u64),
) -> Result<(Vec<usize>, Vec<String>)> {
    let mut damaged = Vec::new();
    let mut problems = Vec::new();
    for &number in numbers {
        let Some(volume) = manifest.layout.volumes().get(number.wrapping_sub(1)) else { continue };
        let path = index.volume_path(number);
        let Some(mut reader) = index.read_volume(number) else { continue };
        let seen = copy_hashing(&mut reader, None, volume.size, progress).ctx("read", &path)?;
        if seen.size != volume.size || seen.digest != volume.digest {
            damaged.push(number);
            problems.push(format!(
                "damaged: volume {} (sha256 is {}, the signed manifest says {})",
                volume_name(number),
                seen.digest.short(),
                volume.digest.short()
            ));
        }
    }
    Ok((damaged, problems))
}

/// Files of at least this size are checked first by R3a, largest first.
const LARGE_FILE: u64 = 1024 * 1024;

/// What checking one file's stretches of the volumes found.
enum Finding {
    /// The file (or its padding) differs from what was signed: the
    /// problem line and the volumes holding the file's bytes.
    Damaged(String, Vec<usize>),
    /// A volume could not be read.
    Failed(Error),
}

/// R3a: every file's content hashed from the index (files in volume order,
/// spread over the cores) and every padding byte checked to be zero. With
/// canonical headers (checked by [`index_in`]) and the end marker checked
/// by the walk, that covers every byte of every volume once.
/// Returns the problems and the volumes holding bytes of a damaged file.
fn check_contents(
    index: &TarIndex,
    manifest: &Manifest,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(Vec<String>, Vec<usize>)> {
    // Files of at least 1 MiB first, largest first, so that the workers
    // finish together (the largest files of a repository often sort last,
    // and one core hashed them alone); the rest in volume order.
    let mut files: Vec<(&RelPath, &crate::manifest::FileEntry)> = manifest.files().collect();
    files.sort_by_cached_key(|(path, file)| {
        let large = if file.size >= LARGE_FILE { file.size } else { 0 };
        (std::cmp::Reverse(large), crate::payload::FileSource::read_position(index, path))
    });
    let findings = crate::parallel::for_each(&files, false, |(path, expected)| -> std::result::Result<(), Finding> {
        let segments = index.segments(path).unwrap_or(&[]);
        let (seen, bad_padding) = hash_padded(index, segments, progress)?;
        let volumes = || segments.iter().map(|s| volume_name(s.volume)).collect::<Vec<_>>().join(", ");
        if let Some(problem) = crate::payload::mismatch(&seen, expected) {
            let line = format!("damaged: {path} in volume {} ({problem})", volumes());
            return Err(Finding::Damaged(line, segments.iter().map(|s| s.volume).collect()));
        }
        match bad_padding {
            Some((volume, at)) => Err(Finding::Damaged(
                format!(
                    "damaged: volume {} (a non-zero byte at byte {at}, in the padding after {path})",
                    volume_name(volume)
                ),
                Vec::new(),
            )),
            None => Ok(()),
        }
    });
    let mut problems = Vec::new();
    let mut suspects = Vec::new();
    for finding in findings {
        match finding {
            Finding::Damaged(problem, volumes) => {
                problems.push(problem);
                suspects.extend(volumes);
            }
            Finding::Failed(error) => return Err(error),
        }
    }
    suspects.sort_unstable();
    suspects.dedup();
    Ok((problems, suspects))
}

/// Hashes the content of `segments` and reads the zero padding after each;
/// returns what was hashed and the first non-zero padding byte (volume,
/// offset), if any.
fn hash_padded(
    index: &TarIndex,
    segments: &[Segment],
    progress: &(dyn Fn(u64) + Sync),
) -> std::result::Result<(Hashed, Option<(usize, u64)>), Finding> {
    crate::digest::with_buffer(|buffer| {
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut bad_padding = None;
        for segment in segments {
            let Some((path, file)) = index.volumes.get(segment.volume.wrapping_sub(1)) else { continue };
            let data_end = segment.offset + segment.length;
            let end = segment.offset + padded(segment.length);
            let mut position = segment.offset;
            while position < end {
                let wanted = buffer.len().min(usize::try_from(end - position).unwrap_or(usize::MAX));
                let read = match file.read_at(&mut buffer[..wanted], position) {
                    // Shorter than its headers say: the size check reports it.
                    Ok(0) => break,
                    Ok(read) => read,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(Finding::Failed(Error::io("read", path.clone(), e))),
                };
                let content = usize::try_from(data_end.saturating_sub(position)).unwrap_or(usize::MAX).min(read);
                hasher.update(&buffer[..content]);
                if let Some(nonzero) = buffer[content..read].iter().position(|&b| b != 0) {
                    bad_padding.get_or_insert((segment.volume, position + (content + nonzero) as u64));
                }
                size += content as u64;
                position += read as u64;
                progress(content as u64);
            }
        }
        Ok((Hashed { size, digest: Digest(hasher.finalize().into()) }, bad_padding))
    })
}

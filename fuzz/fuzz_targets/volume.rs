//! Tar volumes: `volume::index` on arbitrary bytes as the only volume of
//! the golden tar sample's manifest (`samples/media/ferry/sample/2`). It
//! must refuse with `Damaged` or give an index whose files lie inside the
//! volume with exactly the listed sizes; it must never panic.
//! The volume goes through a file because the reader reads files.
#![no_main]

use camino::{Utf8Path, Utf8PathBuf};
use ferry::manifest::{Layout, Manifest, Volume};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static MANIFEST: LazyLock<Manifest> = LazyLock::new(|| {
    let dir = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/media/ferry/sample/2");
    let (path, signature) = (dir.join("manifest"), dir.join("manifest.sig"));
    let read = |path: &Utf8Path| std::fs::read(path).expect("the golden tar sample");
    ferry::signing::verify(read(&path), &path, read(&signature), &signature, ferry_fuzz::trust())
        .expect("a valid signed manifest")
        .manifest()
        .clone()
});

/// One folder per process under `$TMPDIR` (fuzz/run.sh points it at a
/// folder it removes; `TMPDIR=/dev/shm` keeps the writes in memory): the
/// volume is read from a file, as on a drive.
static DIR: LazyLock<Utf8PathBuf> = LazyLock::new(|| {
    let base = Utf8PathBuf::from_path_buf(std::env::temp_dir()).expect("a UTF-8 TMPDIR");
    let dir = base.join(format!("ferry-fuzz-volume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
});

fuzz_target!(|data: &[u8]| {
    std::fs::write(DIR.join(ferry::volume::volume_name(1)), data).expect("write the volume");
    let mut manifest = MANIFEST.clone();
    manifest.layout = Layout::Tar(vec![Volume { size: data.len() as u64, digest: ferry::digest::Digest([0; 32]) }]);
    match ferry::volume::index(std::slice::from_ref(&*DIR), &manifest) {
        Ok(index) => {
            for (path, file) in manifest.files() {
                let segments = index.segments(path).unwrap_or(&[]);
                assert_eq!(segments.iter().map(|s| s.length).sum::<u64>(), file.size);
                assert!(segments.iter().all(|s| s.offset + s.length <= data.len() as u64));
            }
        }
        Err(error) => assert!(matches!(error, ferry::Error::Damaged { .. }), "{error:?}"),
    }
});

//! [`FsBlobStore`]: blobs as files under a data directory.
//!
//! A write goes to `uploads/<uuid>` in batches of about 1 MiB (the received
//! chunks themselves, written with one vectored write, never copied into a
//! buffer) while SHA-256 is computed; `commit` checks digest and size,
//! optionally fsyncs, and renames the file into `blobs/sha256/..`. A rename
//! is atomic, so a reader sees either no blob or the whole verified blob; a
//! crash leaves only an upload file, which [`BlobStore::purge_uploads`]
//! removes on the next start. A writer holds an advisory lock on its
//! upload file (`File::lock`: `flock` on Unix) until it is done, and a purge
//! removes only files whose lock is free, so a purge never takes the upload
//! of a live writer, in this process or in another one sharing the
//! directory (replicas on one filesystem); a killed process's locks go
//! with it, so its uploads are purged at once. Every file and directory is
//! owner-only.
//!
//! Parts of chunked uploads ([`super::parts`]) are written the same way to
//! `upload-parts/<upload>/<uuid>` and fsynced when finished; the only part
//! of an upload is renamed into place. A purge removes part directories a
//! day old (their session expired long before).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;

use super::layout::Layout;
use super::parts::{PARTS_KEPT, check_upload_id};
use super::{
    BlobEntry, BlobListing, BlobReader, BlobStore, BlobWriter, ByteStream, PartWriter, StoreError,
};
use crate::digest::{Digest, Hasher};

/// How many bytes of received chunks are batched before a write reaches the
/// file.
const WRITE_BATCH: usize = 1024 * 1024;
/// At most this many chunks per batch (one `writev`; well under `IOV_MAX`).
const WRITE_BATCH_CHUNKS: usize = 256;
/// Read chunk size when serving a blob (and reading an upload's parts).
/// A blob being served holds about two of them (the chunk being read, the
/// chunk the connection is writing; the server queues no more), so it
/// bounds memory per client: 100 clients pulling at once hold some 25 MiB
/// (the `server_rss` bench's cache pulls).
const READ_CHUNK: usize = 128 * 1024;

/// `length` bytes of `file` from `offset`, as chunks of at most
/// [`READ_CHUNK`], each read by one `pread` on the blocking pool straight
/// into the buffer it is handed out in (no second buffer, no copy, and no
/// read ahead of the consumer).
fn positional_reads(
    file: File,
    offset: u64,
    length: u64,
    digest: Digest,
) -> impl futures_util::Stream<Item = Result<Bytes, StoreError>> + Send + 'static {
    let file = std::sync::Arc::new(file);
    futures_util::stream::try_unfold((file, offset, offset + length), move |(file, at, end)| {
        let digest = digest.clone();
        async move {
            if at >= end {
                return Ok(None);
            }
            let want = usize::try_from(end - at).map_or(READ_CHUNK, |n| n.min(READ_CHUNK));
            let reader = file.clone();
            let chunk = blocking_io(move || {
                use std::os::unix::fs::FileExt;
                let mut buf = vec![0u8; want];
                let mut filled = 0;
                while filled < want {
                    match reader.read_at(&mut buf[filled..], at + filled as u64)? {
                        0 => break,
                        n => filled += n,
                    }
                }
                buf.truncate(filled);
                Ok(Bytes::from(buf))
            })
            .await
            .map_err(|e| StoreError::io(format!("reading blob {digest}"), e))?;
            if chunk.is_empty() {
                return Err(StoreError::io(
                    format!("reading blob {digest}"),
                    std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("the file ends at {at}, before {end}"),
                    ),
                ));
            }
            let next = at + chunk.len() as u64;
            Ok(Some((chunk, (file, next, end))))
        }
    })
}

/// Settings of the filesystem blob store.
#[derive(Debug, Clone)]
pub struct FsOptions {
    /// fsync each blob and its directory before it becomes visible, so a
    /// power loss cannot leave a published tag pointing at lost bytes.
    pub durable: bool,
}

impl Default for FsOptions {
    fn default() -> Self {
        FsOptions { durable: true }
    }
}

/// Content-addressed blobs in a local directory.
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    layout: Layout,
    options: FsOptions,
}

impl FsBlobStore {
    /// Opens (creating if needed) the blob store under `root` with owner-only
    /// permissions.
    ///
    /// ```
    /// # tokio_test_block(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = mirror_core::store::FsBlobStore::open(dir.path(), Default::default()).unwrap();
    /// # });
    /// # fn tokio_test_block<F: std::future::Future>(f: F) { tokio::runtime::Runtime::new().unwrap().block_on(f); }
    /// ```
    pub fn open(root: &Path, options: FsOptions) -> Result<Self, StoreError> {
        let layout = Layout::new(root);
        for dir in [root.to_path_buf(), layout.blobs_dir(), layout.uploads_dir()] {
            create_private_dir(&dir)?;
        }
        Ok(FsBlobStore { layout, options })
    }
}

impl FsBlobStore {
    /// A writer to `file` at `path`, continuing `hasher`.
    fn file_writer(&self, path: PathBuf, file: File, hasher: Hasher) -> FsBlobWriter {
        FsBlobWriter {
            written: 0,
            sink: Some(Sink {
                file,
                hasher,
                written: 0,
                flushed_to: 0,
            }),
            inflight: None,
            path,
            batch: Vec::new(),
            batch_len: 0,
            layout: self.layout.clone(),
            durable: self.options.durable,
            done: false,
        }
    }

    /// The path of part `part` of `upload`, both checked.
    fn part_path(&self, upload: &str, part: &str) -> Result<PathBuf, StoreError> {
        check_upload_id(upload)?;
        check_upload_id(part)?;
        Ok(self.layout.upload_parts(upload).join(part))
    }

    /// Creates an upload file and takes its (advisory, exclusive) lock,
    /// held for as long as the writer has the file open: what tells
    /// [`BlobStore::purge_uploads`] the upload is live, whichever process
    /// on the shared directory purges. Where locks are unsupported, the
    /// file is left unlocked.
    fn create_upload(&self) -> Result<(PathBuf, File), StoreError> {
        loop {
            let path = self.layout.upload(&uuid::Uuid::new_v4().to_string());
            let file = super::open_private_file(&path, true)
                .map_err(|e| StoreError::io(format!("creating {}", path.display()), e))?;
            if file.lock().is_err() {
                return Ok((path, file));
            }
            // A purge that locked the file between its creation and our
            // lock has removed it (it unlinks before unlocking): then the
            // path is gone and the upload starts over under a new name.
            match std::fs::symlink_metadata(&path) {
                Ok(_) => return Ok((path, file)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io(format!("creating {}", path.display()), e)),
            }
        }
    }
}

/// Creates `dir` (and parents) readable only by the owner.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .map_err(|e| StoreError::io(format!("creating {}", dir.display()), e))
}

/// Checks what a writer hashed against the digest (and size, when given)
/// its commit announced: the one verification of every blob store's commit.
pub(super) fn verify_written(
    hasher: Hasher,
    expected: &Digest,
    size: Option<u64>,
) -> Result<(), StoreError> {
    let written = hasher.len();
    if let Some(size) = size
        && size != written
    {
        return Err(StoreError::SizeMismatch {
            digest: expected.clone(),
            expected: size,
            actual: written,
        });
    }
    let actual = hasher.finish();
    if &actual != expected {
        return Err(StoreError::DigestMismatch {
            expected: expected.clone(),
            actual,
        });
    }
    Ok(())
}

/// The `(offset, length)` a reader of a `size`-byte blob serves for a
/// request from `offset` for `length` bytes (`None` = to the end): both
/// clamped to the blob.
pub(super) fn clamp_range(size: u64, offset: u64, length: Option<u64>) -> (u64, u64) {
    let offset = offset.min(size);
    (offset, length.unwrap_or(size - offset).min(size - offset))
}

/// The committed blobs in one `blobs/sha256/<2 hex>` directory (none when
/// it does not exist). Names that are not a digest's hex are skipped.
fn list_prefix(dir: &Path) -> Result<Vec<BlobEntry>, StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io(format!("listing {}", dir.display()), e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io(format!("listing {}", dir.display()), e))?;
        let Some(digest) = entry
            .file_name()
            .to_str()
            .and_then(|hex| Digest::parse(&format!("sha256:{hex}")).ok())
        else {
            continue;
        };
        let meta = match entry.metadata() {
            Ok(m) => m,
            // Deleted since the directory was read.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::io(format!("stat of blob {digest}"), e)),
        };
        let modified = meta
            .modified()
            .map_err(|e| StoreError::io(format!("stat of blob {digest}"), e))?;
        out.push(BlobEntry {
            digest,
            size: meta.len(),
            modified: modified.into(),
        });
    }
    Ok(out)
}

/// Runs `f` (file I/O) on the blocking pool.
async fn blocking_io<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::io("blocking task", std::io::Error::other(e)))?
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        match tokio::fs::metadata(self.layout.blob(digest)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(format!("stat of blob {digest}"), e)),
        }
    }

    async fn writer(&self) -> Result<Box<dyn BlobWriter>, StoreError> {
        // Created synchronously (a create is microseconds): with no await
        // between creating the file and handing out its owner, a caller
        // dropped mid-call can never leave an upload file nobody removes.
        let (path, file) = self.create_upload()?;
        Ok(Box::new(self.file_writer(path, file, Hasher::new())))
    }

    async fn reader(
        &self,
        digest: &Digest,
        offset: u64,
        length: Option<u64>,
    ) -> Result<BlobReader, StoreError> {
        let path = self.layout.blob(digest);
        let opened = blocking_io(move || {
            let file = File::open(&path)?;
            let size = file.metadata()?.len();
            Ok((file, size))
        })
        .await;
        let (file, size) = match opened {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound {
                    what: format!("blob {digest}"),
                });
            }
            Err(e) => return Err(StoreError::io(format!("opening blob {digest}"), e)),
        };
        let (offset, length) = clamp_range(size, offset, length);
        let stream = positional_reads(file, offset, length, digest.clone());
        Ok(BlobReader {
            size,
            offset,
            length,
            stream: Box::pin(stream),
        })
    }

    /// One `blobs/sha256/<2 hex>` directory at a time.
    fn list(&self) -> BlobListing {
        let dir = self.layout.blobs_dir();
        let pages = futures_util::stream::iter(0..256u32).then(move |i| {
            let sub = dir.join(format!("{i:02x}"));
            blocking(move || list_prefix(&sub))
        });
        Box::pin(pages.flat_map(|page| {
            let items: Vec<Result<BlobEntry, StoreError>> = match page {
                Ok(entries) => entries.into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            };
            futures_util::stream::iter(items)
        }))
    }

    async fn delete(&self, digest: &Digest) -> Result<(), StoreError> {
        match tokio::fs::remove_file(self.layout.blob(digest)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(format!("deleting blob {digest}"), e)),
        }
    }

    /// Removes the upload files no live writer holds: those whose lock is
    /// free (their writer's process ended, as in a crash), sparing the
    /// uploads of running writers of this or any other process sharing the
    /// directory. Each file is removed while the purge holds its lock.
    async fn purge_uploads(&self) -> Result<usize, StoreError> {
        let dir = self.layout.uploads_dir();
        let parts_dir = self.layout.parts_dir();
        blocking(move || {
            let mut n = 0;
            let entries = std::fs::read_dir(&dir)
                .map_err(|e| StoreError::io(format!("listing {}", dir.display()), e))?;
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(file) = File::open(&path) else {
                    continue; // gone meanwhile (committed or discarded)
                };
                match file.try_lock() {
                    Err(std::fs::TryLockError::WouldBlock) => continue, // a live writer's
                    // Locked now, or locks unsupported here (the file is
                    // then purged as before locks were used).
                    Ok(()) | Err(std::fs::TryLockError::Error(_)) => {}
                }
                if std::fs::remove_file(&path).is_ok() {
                    n += 1;
                }
                drop(file); // the lock, once the path is gone
            }
            Ok(n + purge_old_parts(&parts_dir))
        })
        .await
    }

    async fn part_writer(
        &self,
        upload: &str,
        hasher: Hasher,
    ) -> Result<Box<dyn PartWriter>, StoreError> {
        let name = uuid::Uuid::new_v4().to_string();
        let path = self.part_path(upload, &name)?;
        // Synchronous, as in `writer`: no await between creating the file
        // and handing out its owner, which removes it unless finished.
        create_private_dir(path.parent().expect("a part path has a parent"))?;
        let file = super::open_private_file(&path, true)
            .map_err(|e| StoreError::io(format!("creating {}", path.display()), e))?;
        Ok(Box::new(FsPartWriter {
            writer: self.file_writer(path, file, hasher),
            name,
        }))
    }

    async fn part_reader(
        &self,
        upload: &str,
        part: &str,
    ) -> Result<ByteStream<StoreError>, StoreError> {
        let path = self.part_path(upload, part)?;
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound {
                    what: format!("part {part} of upload {upload}"),
                });
            }
            Err(e) => return Err(StoreError::io(format!("opening {}", path.display()), e)),
        };
        let stream = tokio_util::io::ReaderStream::with_capacity(file, READ_CHUNK)
            .map(move |r| r.map_err(|e| StoreError::io(format!("reading {}", path.display()), e)));
        Ok(Box::pin(stream))
    }

    async fn place_part(
        &self,
        upload: &str,
        part: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<(), StoreError> {
        let from = self.part_path(upload, part)?;
        let to = self.layout.blob(digest);
        let durable = self.options.durable;
        let what = format!("part {part} of upload {upload}");
        blocking(move || {
            let actual = match std::fs::metadata(&from) {
                Ok(m) => m.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(StoreError::NotFound { what });
                }
                Err(e) => return Err(StoreError::io(format!("stat of {}", from.display()), e)),
            };
            if actual != size {
                return Err(StoreError::Corrupt {
                    reason: format!("{what} holds {actual} bytes, its upload says {size}"),
                });
            }
            move_into_place(&from, &to, durable)
        })
        .await
    }

    async fn delete_parts(&self, upload: &str) -> Result<(), StoreError> {
        check_upload_id(upload)?;
        let dir = self.layout.upload_parts(upload);
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(format!("removing {}", dir.display()), e)),
        }
    }
}

/// Removes the part directories of chunked uploads not written to for
/// [`PARTS_KEPT`]; returns how many.
fn purge_old_parts(parts_dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(parts_dir) else {
        return 0; // none yet
    };
    let mut n = 0;
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > PARTS_KEPT);
        if old && std::fs::remove_dir_all(entry.path()).is_ok() {
            n += 1;
        }
    }
    n
}

/// Renames the verified file `from` to the blob path `to` (creating its
/// directory), syncing the directory when `durable`.
fn move_into_place(from: &Path, to: &Path, durable: bool) -> Result<(), StoreError> {
    let parent = to.parent().expect("blob path has a parent");
    create_private_dir(parent)?;
    std::fs::rename(from, to)
        .map_err(|e| StoreError::io(format!("moving {} into place", from.display()), e))?;
    if durable {
        File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(|e| StoreError::io(format!("syncing {}", parent.display()), e))?;
    }
    Ok(())
}

/// The file and running hash, owned by whichever side holds them: the
/// writer between chunks, or the blocking task writing a buffer.
struct Sink {
    file: File,
    hasher: Hasher,
    /// Bytes written to the file, and the offset up to which writeback was
    /// already started (durable stores only).
    written: u64,
    flushed_to: u64,
}

/// With durable commits, writeback of a blob's pages is started every this
/// many bytes, so the disk works while the network is still sending and the
/// final fsync has little left to do.
const WRITEBACK_EVERY: u64 = 16 * 1024 * 1024;

impl Sink {
    /// Starts (does not wait for) writeback of what was written since the
    /// last call, on Linux; elsewhere the final fsync does all the work.
    fn start_writeback(&mut self) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let len = self.written - self.flushed_to;
            // SAFETY: a valid open file descriptor and an in-file range;
            // SYNC_FILE_RANGE_WRITE only queues writeback and never changes
            // file contents. A failure is harmless (the fsync at commit
            // still makes the data durable), so it is ignored.
            unsafe {
                libc::sync_file_range(
                    self.file.as_raw_fd(),
                    self.flushed_to as libc::off64_t,
                    len as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
        }
        self.flushed_to = self.written;
    }
}

/// A batch handed to the blocking pool: hashing and the disk write of one
/// batch overlap with receiving the next one from the network.
type Inflight = tokio::task::JoinHandle<Result<Sink, StoreError>>;

struct FsBlobWriter {
    /// `None` while a batch is being written (then `inflight` holds it).
    sink: Option<Sink>,
    inflight: Option<Inflight>,
    path: PathBuf,
    /// Received chunks not yet handed to the blocking pool, and their bytes.
    batch: Vec<Bytes>,
    batch_len: usize,
    /// Bytes accepted so far (buffered or written).
    written: u64,
    layout: Layout,
    durable: bool,
    /// Set once committed or canceled, so `Drop` leaves the file alone.
    done: bool,
}

impl FsBlobWriter {
    /// Waits for the batch being written, if any, and takes the sink back.
    async fn settle(&mut self) -> Result<(), StoreError> {
        if let Some(h) = self.inflight.take() {
            let sink = h
                .await
                .map_err(|e| StoreError::io("blob write task", std::io::Error::other(e)))??;
            self.sink = Some(sink);
        }
        Ok(())
    }

    /// Writes what is buffered, waits for it, and takes the sink (the
    /// file and the hasher) for good.
    async fn close(&mut self) -> Result<Sink, StoreError> {
        self.flush().await?;
        self.settle().await?;
        self.sink.take().ok_or_else(|| StoreError::Corrupt {
            reason: "blob writer used after a failed write".into(),
        })
    }

    /// Hands the batch to the blocking pool; at most one batch is in
    /// flight, so memory stays at about two batches.
    async fn flush(&mut self) -> Result<(), StoreError> {
        self.settle().await?;
        if self.batch.is_empty() {
            return Ok(());
        }
        let mut sink = self.sink.take().ok_or_else(|| StoreError::Corrupt {
            reason: "blob writer used after a failed write".into(),
        })?;
        let batch = std::mem::take(&mut self.batch);
        let len = std::mem::take(&mut self.batch_len);
        let path = self.path.clone();
        let durable = self.durable;
        self.inflight = Some(tokio::task::spawn_blocking(move || {
            for chunk in &batch {
                sink.hasher.update(chunk);
            }
            write_all_vectored(&mut sink.file, &batch)
                .map_err(|e| StoreError::io(format!("writing {}", path.display()), e))?;
            sink.written += len as u64;
            if durable && sink.written - sink.flushed_to >= WRITEBACK_EVERY {
                sink.start_writeback();
            }
            Ok(sink)
        }));
        Ok(())
    }
}

/// Writes every chunk, in order, with as few `writev` calls as the kernel
/// allows (usually one per batch).
fn write_all_vectored(file: &mut File, chunks: &[Bytes]) -> std::io::Result<()> {
    use std::io::IoSlice;
    let mut slices: Vec<IoSlice<'_>> = chunks.iter().map(|c| IoSlice::new(c)).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match file.write_vectored(rest) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[async_trait]
impl BlobWriter for FsBlobWriter {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        if chunk.is_empty() {
            return Ok(());
        }
        self.written += chunk.len() as u64;
        self.batch_len += chunk.len();
        self.batch.push(chunk);
        if self.batch_len >= WRITE_BATCH || self.batch.len() >= WRITE_BATCH_CHUNKS {
            self.flush().await?;
        }
        Ok(())
    }

    fn written(&self) -> u64 {
        self.written
    }

    async fn commit(
        mut self: Box<Self>,
        expected: &Digest,
        size: Option<u64>,
    ) -> Result<(), StoreError> {
        let sink = self.close().await?;
        // On a mismatch, Drop removes the upload file.
        verify_written(sink.hasher, expected, size)?;
        let file = sink.file;
        let from = self.path.clone();
        let to = self.layout.blob(expected);
        let durable = self.durable;
        self.done = true;
        blocking(move || {
            let result = (|| {
                if durable {
                    file.sync_data()
                        .map_err(|e| StoreError::io(format!("syncing {}", from.display()), e))?;
                }
                drop(file);
                move_into_place(&from, &to, durable)
            })();
            if result.is_err() {
                let _ = std::fs::remove_file(&from);
            }
            result
        })
        .await
    }

    async fn cancel(mut self: Box<Self>) -> Result<(), StoreError> {
        let _ = self.settle().await;
        self.done = true;
        self.sink.take();
        let path = self.path.clone();
        blocking(move || {
            let _ = std::fs::remove_file(path);
            Ok(())
        })
        .await
    }
}

/// A part of a chunked upload: an [`FsBlobWriter`] to the part's file
/// whose `finish` syncs it instead of renaming it.
struct FsPartWriter {
    writer: FsBlobWriter,
    name: String,
}

#[async_trait]
impl PartWriter for FsPartWriter {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        BlobWriter::write(&mut self.writer, chunk).await
    }

    fn written(&self) -> u64 {
        self.writer.written
    }

    async fn finish(mut self: Box<Self>) -> Result<(String, Hasher), StoreError> {
        let sink = self.writer.close().await?;
        let path = self.writer.path.clone();
        let durable = self.writer.durable;
        let file = sink.file;
        blocking(move || {
            if durable {
                file.sync_data()
                    .map_err(|e| StoreError::io(format!("syncing {}", path.display()), e))?;
                let dir = path.parent().expect("a part path has a parent");
                File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| StoreError::io(format!("syncing {}", dir.display()), e))?;
            }
            Ok(())
        })
        .await?;
        self.writer.done = true;
        Ok((std::mem::take(&mut self.name), sink.hasher))
    }
}

impl Drop for FsBlobWriter {
    fn drop(&mut self) {
        if !self.done {
            // An in-flight write keeps its file handle; unlinking is still
            // safe, and the space is freed when the handle closes.
            self.sink.take();
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

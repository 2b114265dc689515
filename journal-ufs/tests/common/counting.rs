//! A store wrapper that counts requests by kind and can pretend to be a
//! store without create-if-absent (every `PutMode::Create` becomes a plain
//! overwrite, as an S3-compatible server ignoring `If-None-Match` behaves).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    CopyMode, CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// Requests seen, by kind.
#[derive(Debug, Default)]
pub struct Counts {
    pub puts: AtomicU64,
    /// GETs with a body (whole or ranged).
    pub gets: AtomicU64,
    pub heads: AtomicU64,
    /// LIST calls (one per listing, however many pages).
    pub lists: AtomicU64,
    pub deletes: AtomicU64,
    pub copies: AtomicU64,
}

impl Counts {
    pub fn snapshot(&self) -> [u64; 6] {
        [
            &self.puts,
            &self.gets,
            &self.heads,
            &self.lists,
            &self.deletes,
            &self.copies,
        ]
        .map(|c| c.load(Ordering::SeqCst))
    }
}

/// `inner`, counted; with `ignore_create` set, creates overwrite.
pub struct Counting {
    pub inner: Arc<dyn ObjectStore>,
    pub counts: Arc<Counts>,
    pub ignore_create: AtomicBool,
    /// Copies with `CopyMode::Create` overwrite (a server honouring
    /// `If-None-Match` on PUT but not on CompleteMultipartUpload).
    pub ignore_copy_create: AtomicBool,
    /// The next create is written and then answered `AlreadyExists`, as a
    /// client retrying a conditional PUT that had landed sees it.
    pub landed_then_taken: AtomicBool,
}

impl Counting {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Counting {
        Counting {
            inner,
            counts: Arc::new(Counts::default()),
            ignore_create: AtomicBool::new(false),
            ignore_copy_create: AtomicBool::new(false),
            landed_then_taken: AtomicBool::new(false),
        }
    }
}

impl fmt::Debug for Counting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

impl fmt::Display for Counting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for Counting {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        mut opts: PutOptions,
    ) -> Result<PutResult> {
        self.counts.puts.fetch_add(1, Ordering::SeqCst);
        if self.ignore_create.load(Ordering::SeqCst) && opts.mode == PutMode::Create {
            opts.mode = PutMode::Overwrite;
        }
        if opts.mode == PutMode::Create && self.landed_then_taken.swap(false, Ordering::SeqCst) {
            self.inner.put_opts(location, payload, opts).await?;
            return Err(object_store::Error::AlreadyExists {
                path: location.to_string(),
                source: "412 on the retry of a PUT that had landed".into(),
            });
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.counts.puts.fetch_add(1, Ordering::SeqCst);
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        if options.head {
            self.counts.heads.fetch_add(1, Ordering::SeqCst);
        } else {
            self.counts.gets.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let counts = self.counts.clone();
        let counted = locations
            .inspect(move |_| {
                counts.deletes.fetch_add(1, Ordering::SeqCst);
            })
            .boxed();
        self.inner.delete_stream(counted)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.counts.lists.fetch_add(1, Ordering::SeqCst);
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.counts.lists.fetch_add(1, Ordering::SeqCst);
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.counts.lists.fetch_add(1, Ordering::SeqCst);
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, mut options: CopyOptions) -> Result<()> {
        self.counts.copies.fetch_add(1, Ordering::SeqCst);
        if self.ignore_copy_create.load(Ordering::SeqCst) && options.mode == CopyMode::Create {
            options.mode = CopyMode::Overwrite;
        }
        self.inner.copy_opts(from, to, options).await
    }
}

//! An object store wrapper that stalls one master's storage calls on demand,
//! as a GC pause, a suspended VM or a slow NFS mount would, while the other
//! masters (with their own handles on the same folder) move on.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::{BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use tokio::sync::watch;

/// The switch a test holds.
#[derive(Debug)]
pub struct Gate {
    paused: watch::Sender<bool>,
    pause_at_next_put: AtomicBool,
    pub pause_after_next_put: AtomicBool,
    pub fail_after_next_put: AtomicBool,
    /// Calls that found the gate closed and waited.
    pub waited: AtomicU64,
    /// While set, every call fails at once, as against an unmounted folder
    /// or an unreachable object store.
    pub down: AtomicBool,
    /// Calls made, to check that an outage is not retried in a busy loop.
    pub calls: AtomicU64,
}

impl Gate {
    pub fn new() -> Arc<Gate> {
        Arc::new(Gate {
            paused: watch::channel(false).0,
            pause_at_next_put: AtomicBool::new(false),
            pause_after_next_put: AtomicBool::new(false),
            fail_after_next_put: AtomicBool::new(false),
            waited: AtomicU64::new(0),
            down: AtomicBool::new(false),
            calls: AtomicU64::new(0),
        })
    }

    /// Every call from now on waits until [`Gate::resume`].
    pub fn pause(&self) {
        self.paused.send_replace(true);
    }

    /// The next `put` closes the gate and waits, before it reaches the store.
    pub fn pause_at_next_put(&self) {
        self.pause_at_next_put.store(true, Ordering::SeqCst);
    }

    pub fn resume(&self) {
        self.paused.send_replace(false);
    }

    pub fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }

    /// Waits until some call is held at the closed gate.
    pub async fn wait_held(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.waited.load(Ordering::SeqCst) == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no storage call reached the closed gate within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Fails while the store is `down`.
    fn check(&self) -> Result<()> {
        if self.down.load(Ordering::SeqCst) {
            return Err(object_store::Error::Generic {
                store: "pausable",
                source: "the journal folder is unavailable (simulated outage)".into(),
            });
        }
        Ok(())
    }

    async fn pass(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut rx = self.paused.subscribe();
        if *rx.borrow_and_update() {
            self.waited.fetch_add(1, Ordering::SeqCst);
        }
        while *rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

/// `inner`, behind `gate`.
pub struct Pausable {
    pub inner: Arc<dyn ObjectStore>,
    pub gate: Arc<Gate>,
}

impl fmt::Debug for Pausable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pausable({})", self.inner)
    }
}

impl fmt::Display for Pausable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pausable({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for Pausable {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        if self.gate.pause_at_next_put.swap(false, Ordering::SeqCst) {
            self.gate.pause();
        }
        self.gate.pass().await;
        self.gate.check()?;
        let r = self.inner.put_opts(location, payload, opts).await;
        if self.gate.pause_after_next_put.swap(false, Ordering::SeqCst) {
            self.gate.pause();
        }
        if r.is_ok() && self.gate.fail_after_next_put.swap(false, Ordering::SeqCst) {
            return Err(object_store::Error::Generic {
                store: "pausable",
                source: "the connection dropped after the write reached the store".into(),
            });
        }
        r
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.gate.pass().await;
        self.gate.check()?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.gate.pass().await;
        self.gate.check()?;
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let gate = self.gate.clone();
        let inner = self.inner.clone();
        futures::stream::once(async move {
            gate.pass().await;
            match gate.check() {
                Ok(()) => inner.delete_stream(locations),
                Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
            }
        })
        .flatten()
        .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let gate = self.gate.clone();
        let inner = self.inner.clone();
        let prefix = prefix.cloned();
        futures::stream::once(async move {
            gate.pass().await;
            match gate.check() {
                Ok(()) => inner.list(prefix.as_ref()),
                Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
            }
        })
        .flatten()
        .boxed()
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        let gate = self.gate.clone();
        let inner = self.inner.clone();
        let prefix = prefix.cloned();
        let offset = offset.clone();
        futures::stream::once(async move {
            gate.pass().await;
            match gate.check() {
                Ok(()) => inner.list_with_offset(prefix.as_ref(), &offset),
                Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
            }
        })
        .flatten()
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.gate.pass().await;
        self.gate.check()?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.gate.pass().await;
        self.gate.check()?;
        self.inner.copy_opts(from, to, options).await
    }
}

//! The handshake workers: a few threads that run TLS handshake steps (the public-key crypto
//! of EAP-TLS, PEAP and TTLS) so no shard ever does. A shard hands over a step and awaits its
//! answer on a oneshot channel; a PAP or accounting request behind it is not held up.
//!
//! Bound: at most `queue` steps wait for a worker; past it a step is refused at once
//! ([`CryptoPool::submit`] answers `None`), the conversation is rejected as overloaded and
//! counted, and the workers keep serving what they already hold.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Sender, TrySendError};
use futures_channel::oneshot;

type Task = Box<dyn FnOnce() + Send>;

/// The worker threads and their bounded queue.
pub struct CryptoPool {
    tx: Option<Sender<Task>>,
    threads: Vec<JoinHandle<()>>,
    /// Steps refused because the queue was full.
    pub refused: AtomicU64,
    /// Steps run.
    pub done: Arc<AtomicU64>,
}

impl std::fmt::Debug for CryptoPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CryptoPool")
            .field("threads", &self.threads.len())
            .finish_non_exhaustive()
    }
}

impl CryptoPool {
    /// Starts `workers` threads (0: one per available core) behind a queue of `queue` steps.
    pub fn start(workers: usize, queue: usize) -> std::io::Result<CryptoPool> {
        CryptoPool::start_beside(workers, queue, &[])
    }

    /// [`CryptoPool::start`], the workers kept off `shard_cpus` (the cores the shards are
    /// pinned to) when other cores are left, so a handshake rush takes no time from a shard
    /// answering PAP or accounting. With no core to spare they run where the kernel puts them.
    pub fn start_beside(
        workers: usize,
        queue: usize,
        shard_cpus: &[usize],
    ) -> std::io::Result<CryptoPool> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let spare: Vec<usize> = (0..cpus).filter(|c| !shard_cpus.contains(c)).collect();
        let workers = match workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let (tx, rx) = crossbeam_channel::bounded::<Task>(queue.max(1));
        let done = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::with_capacity(workers);
        for i in 0..workers {
            let (rx, done) = (rx.clone(), done.clone());
            let spare = spare.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("radshard-tls-{i}"))
                    .spawn(move || {
                        // Some cores are the shards' and some are not: keep to the others.
                        if !spare.is_empty() && spare.len() < cpus {
                            keep_to(&spare);
                        }
                        for task in rx.iter() {
                            task();
                            done.fetch_add(1, Relaxed);
                        }
                    })?,
            );
        }
        Ok(CryptoPool {
            tx: Some(tx),
            threads,
            refused: AtomicU64::new(0),
            done,
        })
    }

    /// Queues `work` for a worker: its answer, or `None` when the queue is full (or the pool
    /// stopped).
    pub fn submit<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<oneshot::Receiver<T>> {
        let (answer, rx) = oneshot::channel();
        let task: Task = Box::new(move || {
            // The waiter may have given up (deadline): nobody to tell then.
            let _ = answer.send(work());
        });
        match self.tx.as_ref()?.try_send(task) {
            Ok(()) => Some(rx),
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.refused.fetch_add(1, Relaxed);
                None
            }
        }
    }

    pub fn workers(&self) -> usize {
        self.threads.len()
    }
}

/// Restricts the calling thread to `cpus` (best effort: a failure leaves it unrestricted).
fn keep_to(cpus: &[usize]) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes within it for indices
    // below CPU_SETSIZE; sched_setaffinity(0, …) applies to the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus.iter().filter(|&&c| c < libc::CPU_SETSIZE as usize) {
            libc::CPU_SET(c, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            tracing::debug!("cannot keep the TLS workers off the shards' cores");
        }
    }
}

impl Drop for CryptoPool {
    fn drop(&mut self) {
        // Closing the queue ends every worker after the step it holds.
        self.tx = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn runs_work_and_refuses_past_its_bound() {
        let pool = CryptoPool::start(1, 2).expect("pool");
        // Hold the only worker until released.
        let (release, held) = mpsc::channel::<()>();
        let first = pool
            .submit(move || held.recv_timeout(Duration::from_secs(5)).is_ok())
            .expect("queued");
        // Give the worker time to pick up the first step, then fill the queue of two.
        std::thread::sleep(Duration::from_millis(50));
        let queued: Vec<_> = (0..2).map(|i| pool.submit(move || i * 10)).collect();
        assert!(queued.iter().all(Option::is_some));
        assert!(
            pool.submit(|| 99).is_none(),
            "a third waiting step is refused"
        );
        assert_eq!(pool.refused.load(Relaxed), 1);
        release.send(()).expect("worker waits");
        assert_eq!(futures_executor_block_on(first), Ok(true));
        let answers: Vec<_> = queued
            .into_iter()
            .map(|rx| futures_executor_block_on(rx.expect("queued")))
            .collect();
        assert_eq!(answers, vec![Ok(0), Ok(10)]);
    }

    /// A oneshot answer, waited for on this thread.
    fn futures_executor_block_on<T>(mut rx: oneshot::Receiver<T>) -> Result<T, oneshot::Canceled> {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            match rx.try_recv() {
                Ok(Some(v)) => return Ok(v),
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Ok(None) => panic!("no answer in 5 s"),
                Err(e) => return Err(e),
            }
        }
    }
}

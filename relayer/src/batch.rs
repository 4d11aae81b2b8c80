//! Group commit: requests that arrive while a batch is being written wait and go together in
//! the next one, and each caller gets its own answer once that batch is done. A request alone is
//! written at once. Used where every transaction ends with an audit append, whose order lock is
//! held until the commit's disk flush: one flush for many requests instead of one each.
use std::{future::Future, sync::Arc};

use tokio::sync::{mpsc, oneshot, Mutex};

type Request<T, R> = (T, oneshot::Sender<R>);

/// A handle to the writers; they stop when the last handle is dropped.
pub struct Batcher<T, R> {
    requests: mpsc::Sender<Request<T, R>>,
}

impl<T, R> Clone for Batcher<T, R> {
    fn clone(&self) -> Self {
        Self {
            requests: self.requests.clone(),
        }
    }
}

impl<T: Send + 'static, R: Send + 'static> Batcher<T, R> {
    /// `write` gets up to `max_batch` requests in order of arrival and returns one answer per
    /// request, in the same order. `writers` batches may be written at once.
    pub fn start<W, F>(writers: usize, max_batch: usize, write: W) -> Self
    where
        W: Fn(Vec<T>) -> F + Send + Sync + 'static,
        F: Future<Output = Vec<R>> + Send + 'static,
    {
        let (requests, received) = mpsc::channel(4 * max_batch);
        let received = Arc::new(Mutex::new(received));
        let write = Arc::new(write);
        for _ in 0..writers {
            tokio::spawn(run(received.clone(), write.clone(), max_batch));
        }
        Self { requests }
    }

    /// The answer to `item`, or `None` when the writers have stopped (or one panicked on its
    /// batch).
    pub async fn submit(&self, item: T) -> Option<R> {
        let (reply, answer) = oneshot::channel();
        self.requests.send((item, reply)).await.ok()?;
        answer.await.ok()
    }
}

async fn run<T, R, W, F>(
    received: Arc<Mutex<mpsc::Receiver<Request<T, R>>>>,
    write: Arc<W>,
    max_batch: usize,
) where
    W: Fn(Vec<T>) -> F,
    F: Future<Output = Vec<R>>,
{
    loop {
        let batch = {
            let mut received = received.lock().await;
            let Some(first) = received.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < max_batch {
                match received.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            batch
        };
        let (items, replies): (Vec<T>, Vec<_>) = batch.into_iter().unzip();
        let answers = write(items).await;
        debug_assert_eq!(answers.len(), replies.len(), "one answer per request");
        for (reply, answer) in replies.into_iter().zip(answers) {
            // A caller that hung up has its request written anyway.
            let _ = reply.send(answer);
        }
    }
}

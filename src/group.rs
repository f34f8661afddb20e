//! [`TaskGroup`]: many tasks, awaited as they finish, aborted together.

use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures_core::Stream;
use futures_util::stream::FuturesUnordered;

use crate::join::{JoinError, JoinHandle};
use crate::spawner::Spawner;

/// A group of tasks on any [`Spawner`]: spawn many, await them as they finish, abort the rest
/// when the group drops. tokio's `JoinSet` and Python 3.11's `TaskGroup`, for every runtime.
///
/// Each member gets its own copy of the context at the moment it is spawned.
///
/// ```
/// use ctxflow::{ContextVar, DefaultSpawner, TaskGroup};
///
/// static ITEM_ID: ContextVar<u32> = ContextVar::new("item_id");
///
/// let mut seen = ctxflow::block_on(async {
///     let mut group = TaskGroup::new(DefaultSpawner);
///     for item in 0..10 {
///         ITEM_ID.sync_scope(item, || group.spawn(async { ITEM_ID.get() }));
///     }
///     let mut seen = Vec::new();
///     while let Some(result) = group.join_next().await {
///         seen.push(result.unwrap().unwrap());
///     }
///     seen
/// });
/// seen.sort();
/// assert_eq!(seen, (0..10).collect::<Vec<_>>());
/// ```
#[must_use = "dropping a TaskGroup aborts its tasks"]
pub struct TaskGroup<S, T> {
    spawner: S,
    members: FuturesUnordered<JoinHandle<T>>,
}

impl<S: Spawner, T: Send + 'static> TaskGroup<S, T> {
    /// An empty group whose members `spawner` spawns.
    pub fn new(spawner: S) -> Self {
        TaskGroup {
            spawner,
            members: FuturesUnordered::new(),
        }
    }

    /// Spawns `future` as a member, in a snapshot of the caller's context.
    pub fn spawn<F>(&mut self, future: F)
    where
        F: Future<Output = T> + Send + 'static,
    {
        self.members.push(self.spawner.spawn(future));
    }

    /// Runs `f` on the blocking pool as a member, in a snapshot of the caller's context.
    pub fn spawn_blocking<F>(&mut self, f: F)
    where
        F: FnOnce() -> T + Send + 'static,
    {
        self.members.push(self.spawner.spawn_blocking(f));
    }

    /// The next member to finish, or `None` once the group is empty.
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        poll_fn(|cx| self.poll_join_next(cx)).await
    }

    /// Polls for the next member to finish.
    pub fn poll_join_next(
        &mut self,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<T, JoinError>>> {
        Pin::new(&mut self.members).poll_next(cx)
    }

    /// Every member's outcome, in the order they finish.
    pub async fn join_all(mut self) -> Vec<Result<T, JoinError>> {
        let mut outcomes = Vec::with_capacity(self.len());
        while let Some(outcome) = self.join_next().await {
            outcomes.push(outcome);
        }
        outcomes
    }

    /// Aborts every member still running; they finish as cancelled.
    pub fn abort_all(&self) {
        self.members.iter().for_each(JoinHandle::abort);
    }

    /// Lets every member run on without the group, which becomes empty.
    pub fn detach_all(&mut self) {
        std::mem::take(&mut self.members)
            .into_iter()
            .for_each(JoinHandle::detach);
    }

    /// How many members have not been joined yet.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether every member has been joined.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

impl<S, T> Drop for TaskGroup<S, T> {
    fn drop(&mut self) {
        self.members.iter().for_each(JoinHandle::abort);
    }
}

impl<S, T> fmt::Debug for TaskGroup<S, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskGroup")
            .field("members", &self.members.len())
            .finish()
    }
}

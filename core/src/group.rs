//! [`TaskGroup`]: many tasks, awaited as they finish, aborted together.

use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context as TaskContext, Poll, Waker};

use pin_project_lite::pin_project;

use crate::join::JoinHandle;
use crate::join_error::JoinError;
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
    members: Members<T>,
}

/// The members' handles, by index, and which of them to poll.
///
/// A member costs the group no allocation of its own: its task carries a [`Notice`] that, when
/// the member's future is dropped (finished, panicked or cancelled), tells the group its index.
/// The group polls a handle only once told, or again when that handle wakes it.
struct Members<T> {
    handles: Vec<Option<JoinHandle<T>>>,
    /// Indices of `handles` that are `None`, to reuse.
    vacant: Vec<usize>,
    /// How many handles are `Some`.
    len: usize,
    ended: Arc<Ended>,
    /// Indices taken from `ended`; those before `polled` have been polled.
    notified: Vec<usize>,
    polled: usize,
    /// Members told ended whose handles were not ready yet: polled at every `poll_join_next`.
    waiting: Vec<usize>,
}

/// Indices of the members whose futures were dropped, and the waker of whoever awaits the group.
#[derive(Default)]
struct Ended {
    state: Mutex<EndedState>,
}

#[derive(Default)]
struct EndedState {
    indices: Vec<usize>,
    joiner: Option<Waker>,
}

impl Ended {
    fn state(&self) -> MutexGuard<'_, EndedState> {
        // No user code runs under this lock: a poisoned lock still holds a consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Tells the group, when dropped with its member's future, that the member has ended.
struct Notice {
    ended: Arc<Ended>,
    index: usize,
}

impl Drop for Notice {
    fn drop(&mut self) {
        let joiner = {
            let mut state = self.ended.state();
            state.indices.push(self.index);
            state.joiner.take()
        };
        if let Some(joiner) = joiner {
            joiner.wake();
        }
    }
}

pin_project! {
    /// A member's future, with the notice its drop sends. The notice is the last field, so it
    /// is sent once the future itself is dropped.
    struct Member<F> {
        #[pin]
        future: F,
        notice: Notice,
    }
}

impl<F: Future> Future for Member<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        self.project().future.poll(cx)
    }
}

impl<T> Members<T> {
    fn new() -> Self {
        Members {
            handles: Vec::new(),
            vacant: Vec::new(),
            len: 0,
            ended: Arc::default(),
            notified: Vec::new(),
            polled: 0,
            waiting: Vec::new(),
        }
    }

    /// Adds the member that `spawn` spawns, given the notice its task must carry.
    fn insert(&mut self, spawn: impl FnOnce(Notice) -> JoinHandle<T>) {
        let index = self.vacant.pop().unwrap_or(self.handles.len());
        let notice = Notice {
            ended: self.ended.clone(),
            index,
        };
        // If `spawn` panics the index stays unused; a notice the dropped member sends for it
        // finds no handle there, or a later member's, which is then only polled early.
        let handle = spawn(notice);
        match self.handles.get_mut(index) {
            Some(slot) => *slot = Some(handle),
            None => self.handles.push(Some(handle)),
        }
        self.len += 1;
    }

    /// Polls `index`'s handle; a finished member leaves the group.
    fn poll_member(
        &mut self,
        index: usize,
        cx: &mut TaskContext<'_>,
    ) -> Option<Poll<Result<T, JoinError>>> {
        let slot = self.handles.get_mut(index)?;
        let outcome = Pin::new(slot.as_mut()?).poll(cx);
        if outcome.is_ready() {
            *slot = None;
            self.vacant.push(index);
            self.len -= 1;
        }
        Some(outcome)
    }

    fn poll_next(&mut self, cx: &mut TaskContext<'_>) -> Poll<Option<Result<T, JoinError>>> {
        loop {
            if self.len == 0 {
                return Poll::Ready(None);
            }
            // Polled again every time: their handles hold this waker, not an older one.
            let mut at = 0;
            while at < self.waiting.len() {
                match self.poll_member(self.waiting[at], cx) {
                    Some(Poll::Ready(outcome)) => {
                        self.waiting.swap_remove(at);
                        return Poll::Ready(Some(outcome));
                    }
                    Some(Poll::Pending) => at += 1,
                    None => drop(self.waiting.swap_remove(at)),
                }
            }
            // In the order the members ended.
            while let Some(&index) = self.notified.get(self.polled) {
                self.polled += 1;
                match self.poll_member(index, cx) {
                    Some(Poll::Ready(outcome)) => return Poll::Ready(Some(outcome)),
                    Some(Poll::Pending) => self.waiting.push(index),
                    None => {}
                }
            }
            self.notified.clear();
            self.polled = 0;
            let mut state = self.ended.state();
            if state.indices.is_empty() {
                if !state
                    .joiner
                    .as_ref()
                    .is_some_and(|w| w.will_wake(cx.waker()))
                {
                    state.joiner = Some(cx.waker().clone());
                }
                return Poll::Pending;
            }
            // Swapped, not moved: both buffers keep their capacity.
            std::mem::swap(&mut state.indices, &mut self.notified);
        }
    }

    fn iter(&self) -> impl Iterator<Item = &JoinHandle<T>> {
        self.handles.iter().flatten()
    }
}

impl<S: Spawner, T: Send + 'static> TaskGroup<S, T> {
    /// An empty group whose members `spawner` spawns.
    pub fn new(spawner: S) -> Self {
        TaskGroup {
            spawner,
            members: Members::new(),
        }
    }

    /// Spawns `future` as a member, in a snapshot of the caller's context.
    pub fn spawn<F>(&mut self, future: F)
    where
        F: Future<Output = T> + Send + 'static,
    {
        let spawner = &self.spawner;
        self.members
            .insert(|notice| spawner.spawn(Member { future, notice }));
    }

    /// Runs `f` on the blocking pool as a member, in a snapshot of the caller's context.
    pub fn spawn_blocking<F>(&mut self, f: F)
    where
        F: FnOnce() -> T + Send + 'static,
    {
        let spawner = &self.spawner;
        self.members.insert(|notice| {
            spawner.spawn_blocking(move || {
                let _notice = notice;
                f()
            })
        });
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
        self.members.poll_next(cx)
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
        // The detached members' notices go to the old `Ended`, never to later members.
        std::mem::replace(&mut self.members, Members::new())
            .handles
            .into_iter()
            .flatten()
            .for_each(JoinHandle::detach);
    }

    /// How many members have not been joined yet.
    pub fn len(&self) -> usize {
        self.members.len
    }

    /// Whether every member has been joined.
    pub fn is_empty(&self) -> bool {
        self.members.len == 0
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
            .field("members", &self.members.len)
            .finish()
    }
}

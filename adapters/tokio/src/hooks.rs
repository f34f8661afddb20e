//! Context for every task of a tokio runtime, through tokio's task hooks (`--cfg tokio_unstable`).
//!
//! The spawn hook runs on the spawning thread before the task can be scheduled: it takes the
//! spawner's [`Context::inheritable`](ctxflow_core::Context::inheritable), carriers included, as a
//! [`TaskScope`], and files it under the task's id. The poll hooks enter that scope on the
//! polling thread and leave it after the poll, as ctxflow's own task wrapper does, and the
//! terminate hook drops it. Only ctxflow's public `rt_scope` is used.
//!
//! tokio gives a hook nothing but the task's id, so the scopes live in a map keyed by id. The map
//! is sharded by id so that workers polling different tasks rarely meet on a lock, and it
//! belongs to the runtime: whatever is left in it goes when the runtime goes.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ::tokio::runtime::{Builder, TaskMeta};
use ::tokio::task::Id;

use ctxflow_core::rt::{EnteredScope, TaskScope};

/// Shards of the map; a power of two well above the number of workers of common machines.
const SHARDS: usize = 64;

/// How long a poll waits for its task's scope to come back from the task's previous poll on
/// another thread, which takes microseconds, before it concludes that it never will.
const STUCK: Duration = Duration::from_secs(10);

/// Why a task's scope never came back from its previous poll.
const AFTER_POLL_REPLACED: &str = "ctxflow::tokio::ContextHooks: a task's context never came \
    back from its previous poll, so ctxflow's `on_after_task_poll` hook did not run: a later \
    call on the runtime's `Builder` replaced it. tokio keeps one hook of each kind, so \
    `carry_context()` needs all four of its hooks: set no `on_task_spawn`, \
    `on_before_task_poll`, `on_after_task_poll` or `on_task_terminate` after it";

/// The scopes of one runtime's tasks, filed by task id.
struct Scopes {
    shards: [Shard; SHARDS],
}

impl Default for Scopes {
    fn default() -> Self {
        Scopes {
            shards: std::array::from_fn(|_| Shard::default()),
        }
    }
}

/// One shard, on a cache line of its own so that two workers locking neighbouring shards do not
/// contend for the line.
#[derive(Default)]
#[repr(align(128))]
struct Shard(Mutex<Map>);

/// A task's scope, or `None` while a thread has it installed for a poll.
type Map = HashMap<Id, Option<TaskScope>, BuildHasherDefault<IdHasher>>;

thread_local! {
    /// The scopes of the tasks this thread is polling, innermost last. Polls nest only when a
    /// task drives another runtime from inside `block_in_place`.
    static POLLING: RefCell<Vec<(Id, EnteredScope)>> = const { RefCell::new(Vec::new()) };
}

impl Scopes {
    fn shard(&self, id: Id) -> MutexGuard<'_, Map> {
        let mut hasher = IdHasher::default();
        std::hash::Hash::hash(&id, &mut hasher);
        // The middle bits: the map inside the shard uses the top and the bottom ones.
        let index = (hasher.finish() >> 32) as usize % SHARDS;
        // Nothing panics while a shard is locked (only moves are done under the lock), and a
        // poisoned map would still be consistent.
        self.shards[index]
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn spawned(&self, meta: &TaskMeta<'_>) {
        let scope = TaskScope::inheritable();
        let replaced = self.shard(meta.id()).insert(meta.id(), Some(scope));
        drop(replaced);
    }

    fn before_poll(&self, meta: &TaskMeta<'_>) {
        let Some(scope) = self.check_out(meta.id()) else {
            return;
        };
        let mut polling = Some((meta.id(), scope.enter()));
        let _ = POLLING.try_with(|stack| {
            if let Some(entry) = polling.take() {
                stack.borrow_mut().push(entry);
            }
        });
        // The thread is exiting: the task runs without its context rather than with it stuck.
        if let Some((id, entered)) = polling {
            self.check_in(id, entered.leave());
        }
    }

    /// Takes the task's scope out of the map. A task woken during its poll can be scheduled,
    /// stolen and polled by another worker before the after-poll hook of its previous poll has
    /// run on the first: then the scope is still out, and comes back within a few instructions.
    ///
    /// # Panics
    /// When the scope does not come back, because ctxflow's after-poll hook was replaced: at
    /// once if the previous poll was on this thread (its scope is still installed here), else
    /// after [`STUCK`]. Waiting on would hang the runtime without a word.
    fn check_out(&self, id: Id) -> Option<TaskScope> {
        let mut waiting_since = None;
        loop {
            match self.shard(id).get_mut(&id) {
                // Not spawned on this runtime's scheduler (a blocking task, a `LocalSet` task).
                None => return None,
                Some(slot) => {
                    if let Some(scope) = slot.take() {
                        return Some(scope);
                    }
                }
            }
            let since = *waiting_since.get_or_insert_with(Instant::now);
            if is_installed_here(id) || since.elapsed() > STUCK {
                panic!("{AFTER_POLL_REPLACED}");
            }
            std::thread::yield_now();
        }
    }

    fn after_poll(&self, meta: &TaskMeta<'_>) {
        if let Some(scope) = uninstall(meta.id()) {
            self.check_in(meta.id(), scope);
        }
    }

    /// Files the task's scope back after a poll.
    fn check_in(&self, id: Id, scope: TaskScope) {
        let orphan = match self.shard(id).get_mut(&id) {
            Some(slot) => slot.replace(scope),
            // The task was shut down from another thread between its poll and this hook.
            None => Some(scope),
        };
        drop(orphan);
    }

    /// The task is done and its future dropped. Inside a poll (the task finished, panicked or
    /// was cancelled at its poll) its scope is still installed: it comes off here, which spares
    /// the after-poll hook a look in the map for an entry that is gone.
    fn terminated(&self, meta: &TaskMeta<'_>) {
        let installed = uninstall(meta.id());
        let filed = self.shard(meta.id()).remove(&meta.id());
        // The values are dropped here, with no lock held: their `Drop` may spawn.
        drop((installed, filed));
    }
}

/// Whether the scope of task `id` is installed on this thread, from a poll that has not ended
/// for ctxflow.
fn is_installed_here(id: Id) -> bool {
    let installed = POLLING.try_with(|polling| {
        polling
            .borrow()
            .iter()
            .any(|(installed, _)| *installed == id)
    });
    installed.unwrap_or(false)
}

/// Takes the scope of task `id` off this thread, if it is the one installed here.
fn uninstall(id: Id) -> Option<TaskScope> {
    let (_, entered) = POLLING
        .try_with(|polling| {
            let mut polling = polling.borrow_mut();
            match polling.last() {
                Some((installed, _)) if *installed == id => polling.pop(),
                _ => None,
            }
        })
        .ok()??;
    Some(entered.leave())
}

/// tokio's task ids are distinct integers: hashing one is a multiplication that spreads its
/// bits, where the default hasher would run SipHash at every poll.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0 ^ value).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Makes context follow every task of a tokio runtime, whoever spawns it; implemented for
/// tokio's [`Builder`].
///
/// After [`carry_context`](Self::carry_context), every task spawned on the runtime, by any crate
/// and through any path (`tokio::spawn`, `Handle::spawn`, `JoinSet`, hyper-util's
/// `TokioExecutor`), starts with a copy of the spawner's context, as a ctxflow spawn does: what
/// the task sets stays in it, and the copy is installed around every poll and around the drop
/// of the future when the task finishes or is aborted. Tasks that set nothing see nothing
/// another task set. Unlike a ctxflow spawn's, the copy is dropped after the task's
/// `JoinHandle` is woken (tokio runs the terminate hook then): on a multi-thread runtime, the
/// awaiting task may resume just before the child's values go.
///
/// It needs `RUSTFLAGS="--cfg tokio_unstable"`, since tokio's task hooks do; without it, calling
/// it does not compile. See docs/spawner.md for what the hooks do not reach (`spawn_blocking`,
/// `LocalSet`, the `block_on` future, futures dropped at runtime shutdown).
///
/// ```
/// use ctxflow::tokio::ContextHooks;
/// use ctxflow::ContextVar;
///
/// static REQUEST_ID: ContextVar<u32> = ContextVar::new("request_id");
///
/// let runtime = tokio::runtime::Builder::new_multi_thread()
///     .carry_context()
///     .build()
///     .unwrap();
/// let _token = REQUEST_ID.set(7);
/// let seen = runtime.block_on(async { tokio::spawn(async { REQUEST_ID.get() }).await });
/// assert_eq!(seen.unwrap(), Some(7));
/// ```
pub trait ContextHooks {
    /// Installs ctxflow's task hooks: `on_task_spawn`, `on_before_task_poll`,
    /// `on_after_task_poll` and `on_task_terminate`. tokio keeps one hook of each kind, so this
    /// call replaces earlier ones, and a later call to one of those replaces ctxflow's and breaks
    /// it: without its after-poll hook, a task's next poll panics naming the cause (it would
    /// wait forever for its context); without its terminate hook, every task's context is kept
    /// until the runtime drops.
    fn carry_context(&mut self) -> &mut Self;
}

impl ContextHooks for Builder {
    fn carry_context(&mut self) -> &mut Self {
        let scopes = Arc::new(Scopes::default());
        let (spawned, before, after, terminated) =
            (scopes.clone(), scopes.clone(), scopes.clone(), scopes);
        self.on_task_spawn(move |meta| spawned.spawned(meta))
            .on_before_task_poll(move |meta| before.before_poll(meta))
            .on_after_task_poll(move |meta| after.after_poll(meta))
            .on_task_terminate(move |meta| terminated.terminated(meta))
    }
}

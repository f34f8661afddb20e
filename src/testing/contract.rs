//! The `Spawner` contract as checks that any spawner can be put through: ctxflow's own suite
//! runs them on every runtime, and an adapter for another runtime runs them on its own with
//! [`spawner_contract!`](crate::testing::spawner_contract!).
//!
//! Each check is an async body run as a task, in an empty context, on the spawner it is given:
//! the body spawns, blocks, aborts and panics through that spawner and asserts what the contract
//! promises (docs/spawner.md): a child gets a copy of its parent's context, nothing one task
//! sets reaches another or the runtime's threads, a handle reports outcomes, panics and aborts
//! the same way on every runtime, and the flow policy holds. The timers, the local spawners and
//! shutdown are checked elsewhere, on ctxflow's own runtimes.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use super::Runtime;
use crate::{AnySpawner, Context, Spawner};

/// The checks' bodies, generic over the spawner; what `spawner_contract!` expands to. Not an API.
#[doc(hidden)]
pub mod bodies;

/// One behaviour of the contract: a name, and an async body that checks it on a spawner.
#[derive(Clone, Copy)]
pub struct Check {
    name: &'static str,
    body: fn(AnySpawner) -> Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Check {
    /// The check's name, which is also the name of its test in [`spawner_contract!`].
    ///
    /// [`spawner_contract!`]: crate::testing::spawner_contract!
    pub fn name(self) -> &'static str {
        self.name
    }

    /// The check's body: run it as a task, in an empty context, on `spawner`'s runtime, and
    /// await it. It panics when the spawner breaks the contract.
    pub fn body(self, spawner: AnySpawner) -> impl Future<Output = ()> + Send + 'static {
        (self.body)(spawner)
    }
}

impl fmt::Debug for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Check").field(&self.name).finish()
    }
}

/// Every check of the contract.
///
/// ```
/// let names: Vec<_> = ctxflow::testing::contract::checks().iter().map(|check| check.name()).collect();
/// assert!(names.contains(&"a_childs_writes_never_reach_its_parent"));
/// ```
pub fn checks() -> &'static [Check] {
    &CHECKS
}

static CHECKS: [Check; 29] = crate::__spawner_contract_checks!(table);

/// What runs the checks: a closure that makes a fresh spawner for each, or one of ctxflow's own
/// [`Runtime`]s.
pub trait Harness {
    /// The spawner a check is given.
    type Spawner: Spawner;

    /// Runs `body`, the check named `name`, as a task in an empty context on a fresh spawner,
    /// and fails the calling test with the body's own panic when it fails.
    fn run<B, Fut>(&self, name: &str, body: B)
    where
        B: FnOnce(Self::Spawner) -> Fut,
        Fut: Future<Output = ()> + Send + 'static;
}

/// A fresh spawner for each check, of the closure's own type, so that the adapter's own spawn
/// path (its `spawn_prepared` and join handle) is the one checked; the check's body is spawned
/// on it and awaited with its [`block_on`](Spawner::block_on), which must drive the runtime (for
/// tokio, a `TokioSpawner` built from the `Runtime`, not from a current-thread runtime's
/// `Handle`). A `block_on` that does not drive the spawned tasks hangs the checks rather than
/// failing them.
impl<F, S> Harness for F
where
    F: Fn() -> S,
    S: Spawner,
{
    type Spawner = S;

    fn run<B, Fut>(&self, name: &str, body: B)
    where
        B: FnOnce(S) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let spawner = self();
        let task = spawner.spawn_in(Context::empty(), body(spawner.clone()));
        super::fail_with_the_bodys_panic(spawner.block_on(task), format_args!("{name}"));
    }
}

/// A fresh instance of the runtime for each check, as [`Runtime::run`] makes.
impl Harness for Runtime {
    type Spawner = AnySpawner;

    fn run<B, Fut>(&self, _name: &str, body: B)
    where
        B: FnOnce(AnySpawner) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        super::__private::run_test(*self, body);
    }
}

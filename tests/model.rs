//! Random programs of context operations, run against ctxflow and against a reference model of
//! its semantics: every observation must match.
//!
//! A program is a tree of operations: `set`, `reset` (with a token of its own variable and
//! context, of another variable, of another context, or one already used), reads, snapshots,
//! `run`, `sync_scope`, `attach`, `wrap` called on another thread, `suppress_flow`, futures in a
//! context (`in_context`, `in_current_context`, `scope`) nested in each other, futures dropped
//! after their first poll, tasks and blocking closures (awaited, detached, aborted, or spawned
//! from synchronous code and joined afterwards), and panics anywhere.
//!
//! The program runs once against ctxflow, on every runtime or on a plain executor, and once
//! against [`model`], a stack of plain variable maps. Each operation runs at most once, so each
//! observation is filed under the id of the operation that made it, and the two records must be
//! equal. After each run every value is dropped, and raw tasks on the workers see no context.

mod common;

use std::collections::BTreeMap;
use std::future::{pending, Future};
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::task::Poll;

use common::{assert_workers_clean, poll_once, yield_now};
use ctxflow::context::{ResetError, Token};
use ctxflow::testing::Runtime;
use ctxflow::Spawner;
use ctxflow::{AnySpawner, Context, ContextVar, InContext, JoinError, JoinHandle};
use futures::channel::oneshot;
use futures::FutureExt;
use proptest::prelude::*;

/// The variables programs use: two that flow into spawned work and one that does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Var {
    A,
    B,
    Local,
}

const VARS: [Var; 3] = [Var::A, Var::B, Var::Local];

/// The value of each variable, `None` when unset.
type Values = [Option<u64>; 3];

/// A value that counts how many of its kind are alive, so a run can check that none is left.
struct Tracked {
    value: u64,
    alive: Arc<AtomicUsize>,
}

impl Tracked {
    fn new(value: u64, alive: &Arc<AtomicUsize>) -> Self {
        alive.fetch_add(1, Ordering::SeqCst);
        Tracked {
            value,
            alive: alive.clone(),
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.alive.fetch_sub(1, Ordering::SeqCst);
    }
}

static A: ContextVar<Tracked> = ContextVar::new("a");
static B: ContextVar<Tracked> = ContextVar::new("b");
static LOCAL: ContextVar<Tracked> = ContextVar::non_flowing("local");

fn var(var: Var) -> &'static ContextVar<Tracked> {
    match var {
        Var::A => &A,
        Var::B => &B,
        Var::Local => &LOCAL,
    }
}

/// How a `Spawn` operation spawns its body.
#[derive(Clone, Copy, Debug)]
enum How<R> {
    Task,
    Blocking,
    TaskIn(R),
    BlockingIn(R),
    /// The handle is dropped at once.
    Detached,
    /// The task runs its body, then waits until it is aborted.
    Aborted,
}

/// Where a future's context comes from.
#[derive(Clone, Copy, Debug)]
enum Source<R> {
    Current,
    Snapshot(R),
}

/// An operation as generated. `R` refers to another operation: a `Set` for a reset's token, a
/// `Snapshot` for a context; generated as any number, it is resolved to one that exists.
#[derive(Clone, Debug)]
enum Op<R = usize> {
    Set(Var),
    Reset(Var, R),
    Check,
    Snapshot,
    ReadSnapshot(R),
    /// Records the values it sees when the body it is in ends, however it ends.
    OnDrop,
    Panic,
    Yield,
    Run(R, Vec<Op<R>>),
    SyncScope(Var, Vec<Op<R>>),
    Attach(R, Vec<Op<R>>),
    /// `Context::wrap`, called on a new thread.
    Wrap(R, Vec<Op<R>>),
    SuppressFlow(Vec<Op<R>>),
    /// A future polled once, then dropped.
    DropEarly(Source<R>, Vec<Op<R>>),
    InContext(Source<R>, Vec<Op<R>>),
    Scope(Var, Vec<Op<R>>),
    Spawn(How<R>, Vec<Op<R>>),
}

/// A reference to the operation whose token or snapshot is meant; `None` when the program has
/// no operation of that kind.
type Ref = Option<u32>;

/// An operation with its id (its position in the program, depth first) and resolved references.
#[derive(Debug)]
struct Node {
    id: u32,
    op: Op<Ref>,
    body: Arc<[Node]>,
}

/// Numbers a program's operations and resolves their references.
fn resolve(program: &[Op]) -> (Arc<[Node]>, usize) {
    fn collect(ops: &[Op], next: &mut u32, sets: &mut Vec<u32>, snapshots: &mut Vec<u32>) {
        for op in ops {
            let id = *next;
            *next += 1;
            match op {
                Op::Set(_) => sets.push(id),
                Op::Snapshot => snapshots.push(id),
                _ => {}
            }
            collect(body_of(op), next, sets, snapshots);
        }
    }
    fn pick(ids: &[u32], r: usize) -> Ref {
        (!ids.is_empty()).then(|| ids[r % ids.len()])
    }
    fn build(ops: &[Op], next: &mut u32, sets: &[u32], snaps: &[u32]) -> Arc<[Node]> {
        ops.iter()
            .map(|op| {
                let id = *next;
                *next += 1;
                let snap = |r: &usize| pick(snaps, *r);
                let source = |s: &Source<usize>| match s {
                    Source::Current => Source::Current,
                    Source::Snapshot(r) => Source::Snapshot(snap(r)),
                };
                let resolved = match op {
                    Op::Set(v) => Op::Set(*v),
                    Op::Reset(v, r) => Op::Reset(*v, pick(sets, *r)),
                    Op::Check => Op::Check,
                    Op::Snapshot => Op::Snapshot,
                    Op::ReadSnapshot(r) => Op::ReadSnapshot(snap(r)),
                    Op::OnDrop => Op::OnDrop,
                    Op::Panic => Op::Panic,
                    Op::Yield => Op::Yield,
                    Op::Run(r, _) => Op::Run(snap(r), Vec::new()),
                    Op::SyncScope(v, _) => Op::SyncScope(*v, Vec::new()),
                    Op::Attach(r, _) => Op::Attach(snap(r), Vec::new()),
                    Op::Wrap(r, _) => Op::Wrap(snap(r), Vec::new()),
                    Op::SuppressFlow(_) => Op::SuppressFlow(Vec::new()),
                    Op::DropEarly(s, _) => Op::DropEarly(source(s), Vec::new()),
                    Op::InContext(s, _) => Op::InContext(source(s), Vec::new()),
                    Op::Scope(v, _) => Op::Scope(*v, Vec::new()),
                    Op::Spawn(how, _) => Op::Spawn(
                        match how {
                            How::Task => How::Task,
                            How::Blocking => How::Blocking,
                            How::TaskIn(r) => How::TaskIn(snap(r)),
                            How::BlockingIn(r) => How::BlockingIn(snap(r)),
                            How::Detached => How::Detached,
                            How::Aborted => How::Aborted,
                        },
                        Vec::new(),
                    ),
                };
                let body = build(body_of(op), next, sets, snaps);
                Node {
                    id,
                    op: resolved,
                    body,
                }
            })
            .collect()
    }
    let (mut sets, mut snapshots, mut count) = (Vec::new(), Vec::new(), 0);
    collect(program, &mut count, &mut sets, &mut snapshots);
    let nodes = build(program, &mut 0, &sets, &snapshots);
    (nodes, count as usize)
}

fn body_of<R>(op: &Op<R>) -> &[Op<R>] {
    match op {
        Op::Run(_, body)
        | Op::SyncScope(_, body)
        | Op::Attach(_, body)
        | Op::Wrap(_, body)
        | Op::SuppressFlow(body)
        | Op::DropEarly(_, body)
        | Op::InContext(_, body)
        | Op::Scope(_, body)
        | Op::Spawn(_, body) => body,
        _ => &[],
    }
}

/// How a body, a task or a closure ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Done,
    Panicked,
    Cancelled,
    /// Pending at its only poll, then dropped.
    Suspended,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reset {
    Done,
    OtherVariable,
    OtherContext,
    /// The token was never issued here, or was already used.
    NoToken,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Obs {
    Values(Values),
    /// A token's `old_value`.
    Old(Option<u64>),
    Reset(Reset),
    End(End),
    /// A snapshot read before it was taken.
    Missing,
}

/// An observation's place: the id of the operation that made it, and which of its observations
/// it is (0: its result, 1: the context after it, 2: what an aborted task saw at its drop).
type Key = (u32, u8);

/// Observations about the program as a whole.
const TOP: u32 = u32::MAX;

type Record = BTreeMap<Key, Obs>;

/// The payload of a panic a program asks for; other panics are failures of the test itself.
struct ProgramPanic;

fn quiet_program_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<ProgramPanic>() {
                default(info);
            }
        }));
    });
}

/// The end of something that may have panicked; a panic the program did not ask for goes on.
fn ended<T>(outcome: std::thread::Result<T>) -> End {
    match outcome {
        Ok(_) => End::Done,
        Err(payload) if payload.is::<ProgramPanic>() => End::Panicked,
        Err(payload) => panic::resume_unwind(payload),
    }
}

fn joined<T>(outcome: Result<T, JoinError>) -> End {
    match outcome {
        Ok(_) => End::Done,
        Err(error) if error.is_cancelled() => End::Cancelled,
        Err(error) => ended::<T>(Err(error.into_panic())),
    }
}

mod real {
    //! The program, run against ctxflow.

    use super::*;

    fn current() -> Values {
        VARS.map(|v| var(v).with(|value| value.map(|value| value.value)))
    }

    fn values_of(cx: &Context) -> Values {
        VARS.map(|v| cx.get(var(v)).map(|value| value.value))
    }

    /// What every part of one run shares.
    #[derive(Clone)]
    pub struct Env {
        pub record: Arc<Mutex<Record>>,
        pub alive: Arc<AtomicUsize>,
        pub spawner: Option<AnySpawner>,
        pub size: usize,
    }

    impl Env {
        fn record(&self, key: Key, obs: Obs) {
            let previous = self.record.lock().unwrap().insert(key, obs);
            assert!(previous.is_none(), "{key:?} observed twice");
        }
    }

    /// Tokens and snapshots, by the id of the operation that made them.
    struct Pool {
        tokens: Vec<Option<Token<Tracked>>>,
        snapshots: Vec<Option<Context>>,
    }

    /// One line of execution: a task, a closure run, a thread.
    pub struct Flow {
        env: Env,
        pool: Arc<Mutex<Pool>>,
        can_spawn: bool,
        /// Spawned from synchronous code; joined once that code is done.
        deferred: Vec<(u32, JoinHandle<()>)>,
    }

    impl Flow {
        pub fn new(env: Env) -> Self {
            let size = env.size;
            let pool = Pool {
                tokens: (0..size).map(|_| None).collect(),
                snapshots: vec![None; size],
            };
            Flow {
                env,
                pool: Arc::new(Mutex::new(pool)),
                can_spawn: true,
                deferred: Vec::new(),
            }
        }

        /// A flow that shares this one's tokens and snapshots.
        fn sharing(&self, can_spawn: bool) -> Flow {
            Flow {
                env: self.env.clone(),
                pool: self.pool.clone(),
                can_spawn,
                deferred: Vec::new(),
            }
        }

        /// A flow with no tokens and a copy of this one's snapshots, for work that runs
        /// alongside this flow.
        fn apart(&self) -> Flow {
            let flow = Flow::new(self.env.clone());
            flow.pool.lock().unwrap().snapshots = self.pool.lock().unwrap().snapshots.clone();
            flow
        }

        fn snapshot(&self, r: Ref) -> Context {
            r.and_then(|id| self.pool.lock().unwrap().snapshots[id as usize].clone())
                .unwrap_or_default()
        }

        fn spawner(&self) -> Option<AnySpawner> {
            self.env.spawner.clone().filter(|_| self.can_spawn)
        }

        fn after(&self, id: u32, end: End) {
            self.env.record((id, 0), Obs::End(end));
            self.env.record((id, 1), Obs::Values(current()));
        }

        async fn join_deferred(&mut self) {
            for (id, handle) in std::mem::take(&mut self.deferred) {
                self.env.record((id, 0), Obs::End(joined(handle.await)));
            }
        }
    }

    /// Records the values it sees when dropped.
    struct Probe {
        env: Env,
        key: Key,
    }

    impl Drop for Probe {
        fn drop(&mut self) {
            self.env.record(self.key, Obs::Values(current()));
        }
    }

    /// Signals when dropped: a detached task's context holds it, so the signal comes once the
    /// task has released its context.
    struct Released(Mutex<Option<oneshot::Sender<()>>>);

    impl Drop for Released {
        fn drop(&mut self) {
            if let Some(sender) = self.0.get_mut().unwrap().take() {
                let _ = sender.send(());
            }
        }
    }

    static RELEASED: ContextVar<Released> = ContextVar::new("released");

    /// Runs the operations any body can run; false for those only an async body can.
    #[allow(
        clippy::disallowed_methods,
        reason = "`Wrap` runs its closure on a plain thread, carried by `wrap` alone"
    )]
    fn step(node: &Node, flow: &mut Flow, probes: &mut Vec<Probe>) -> bool {
        let id = node.id;
        let env = flow.env.clone();
        match node.op {
            Op::Set(v) => {
                let token = var(v).set(Tracked::new(id.into(), &env.alive));
                env.record((id, 0), Obs::Old(token.old_value().map(|old| old.value)));
                flow.pool.lock().unwrap().tokens[id as usize] = Some(token);
            }
            Op::Reset(v, r) => {
                let token = r.and_then(|set| flow.pool.lock().unwrap().tokens[set as usize].take());
                let reset = match token.map(|token| var(v).reset(token)) {
                    None => Reset::NoToken,
                    Some(Ok(())) => Reset::Done,
                    Some(Err(ResetError::OtherVariable { .. })) => Reset::OtherVariable,
                    Some(Err(ResetError::OtherContext { .. })) => Reset::OtherContext,
                    Some(Err(error)) => panic!("unexpected reset error: {error}"),
                };
                env.record((id, 0), Obs::Reset(reset));
            }
            Op::Check => env.record((id, 0), Obs::Values(current())),
            Op::Snapshot => {
                flow.pool.lock().unwrap().snapshots[id as usize] = Some(Context::current());
            }
            Op::ReadSnapshot(r) => {
                let snapshot =
                    r.and_then(|s| flow.pool.lock().unwrap().snapshots[s as usize].clone());
                let obs = snapshot.map_or(Obs::Missing, |cx| Obs::Values(values_of(&cx)));
                env.record((id, 0), obs);
            }
            Op::OnDrop => probes.push(Probe { env, key: (id, 0) }),
            Op::Panic => panic::panic_any(ProgramPanic),
            Op::Run(r, _) => {
                let cx = flow.snapshot(r);
                let end = ended(panic::catch_unwind(AssertUnwindSafe(|| {
                    cx.run(|| exec_sync(&node.body, flow))
                })));
                flow.after(id, end);
            }
            Op::SyncScope(v, _) => {
                let value = Tracked::new(id.into(), &env.alive);
                let end = ended(panic::catch_unwind(AssertUnwindSafe(|| {
                    var(v).sync_scope(value, || exec_sync(&node.body, flow))
                })));
                flow.after(id, end);
            }
            Op::Attach(r, _) => {
                let cx = flow.snapshot(r);
                let end = ended(panic::catch_unwind(AssertUnwindSafe(|| {
                    let _guard = cx.attach();
                    exec_sync(&node.body, flow)
                })));
                flow.after(id, end);
            }
            Op::Wrap(r, _) => {
                let mut inner = flow.sharing(false);
                let body = node.body.clone();
                let job = flow.snapshot(r).wrap(move || exec_sync(&body, &mut inner));
                let end = ended(std::thread::spawn(job).join());
                flow.after(id, end);
            }
            Op::SuppressFlow(_) => {
                let end = ended(panic::catch_unwind(AssertUnwindSafe(|| {
                    ctxflow::suppress_flow(|| exec_sync(&node.body, flow))
                })));
                flow.after(id, end);
            }
            Op::DropEarly(source, _) => {
                let cx = match source {
                    Source::Current => None,
                    Source::Snapshot(r) => Some(flow.snapshot(r)),
                };
                let mut inner = flow.sharing(false);
                let future = exec_async(&node.body, &mut inner);
                let mut future = Box::pin(match cx {
                    None => future.in_current_context(),
                    Some(cx) => future.in_context(cx),
                });
                let end = match panic::catch_unwind(AssertUnwindSafe(|| poll_once(future.as_mut())))
                {
                    Ok(Poll::Ready(())) => End::Done,
                    Ok(Poll::Pending) => End::Suspended,
                    outcome => ended(outcome),
                };
                drop(future);
                flow.after(id, end);
            }
            Op::Spawn(how, _) => {
                if let Some(spawner) = flow.spawner() {
                    spawn_deferred(node, how, flow, &spawner);
                }
            }
            Op::Yield | Op::InContext(..) | Op::Scope(..) => return false,
        }
        true
    }

    /// Spawns from synchronous code: the child runs alongside, and is joined later.
    fn spawn_deferred(node: &Node, how: How<Ref>, flow: &mut Flow, spawner: &AnySpawner) {
        let mut child = flow.apart();
        let body = node.body.clone();
        let handle = match how {
            How::Task | How::Detached | How::Aborted => {
                spawner.spawn(async move { exec_async(&body, &mut child).await })
            }
            How::TaskIn(r) => spawner.spawn_in(flow.snapshot(r), async move {
                exec_async(&body, &mut child).await
            }),
            How::Blocking => spawner.spawn_blocking(move || run_blocking(&body, child)),
            How::BlockingIn(r) => {
                spawner.spawn_blocking_in(flow.snapshot(r), move || run_blocking(&body, child))
            }
        };
        flow.deferred.push((node.id, handle));
    }

    /// A blocking closure's body; what it spawned is joined before it returns, panic or not.
    fn run_blocking(body: &[Node], mut flow: Flow) {
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| exec_sync(body, &mut flow)));
        if let Some(spawner) = flow.env.spawner.clone() {
            spawner.block_on(flow.join_deferred());
        }
        drop(flow);
        if let Err(payload) = outcome {
            panic::resume_unwind(payload);
        }
    }

    pub fn exec_sync(body: &[Node], flow: &mut Flow) {
        let mut probes = Vec::new();
        for node in body.iter() {
            step(node, flow, &mut probes);
        }
    }

    pub fn exec_async<'a>(
        body: &'a [Node],
        flow: &'a mut Flow,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            let mut probes = Vec::new();
            for node in body.iter() {
                let id = node.id;
                match node.op {
                    Op::Yield => yield_now().await,
                    Op::InContext(source, _) => {
                        let cx = match source {
                            Source::Current => None,
                            Source::Snapshot(r) => Some(flow.snapshot(r)),
                        };
                        let future = exec_async(&node.body, flow);
                        let future = match cx {
                            None => future.in_current_context(),
                            Some(cx) => future.in_context(cx),
                        };
                        let end = ended(AssertUnwindSafe(future).catch_unwind().await);
                        flow.after(id, end);
                    }
                    Op::Scope(v, _) => {
                        let value = Tracked::new(id.into(), &flow.env.alive);
                        let future = var(v).scope(value, exec_async(&node.body, flow));
                        let end = ended(AssertUnwindSafe(future).catch_unwind().await);
                        flow.after(id, end);
                    }
                    Op::Spawn(how, _) => {
                        if let Some(spawner) = flow.spawner() {
                            spawn_now(node, how, flow, &spawner).await;
                        }
                    }
                    _ => {
                        step(node, flow, &mut probes);
                    }
                }
                flow.join_deferred().await;
            }
        })
    }

    /// Spawns from async code, and waits for the child's end.
    async fn spawn_now(node: &Node, how: How<Ref>, flow: &mut Flow, spawner: &AnySpawner) {
        let id = node.id;
        let body = node.body.clone();
        match how {
            How::Task | How::TaskIn(_) | How::Blocking | How::BlockingIn(_) => {
                let mut child = flow.sharing(true);
                let handle = match how {
                    How::Task => spawner.spawn(async move { exec_async(&body, &mut child).await }),
                    How::TaskIn(r) => spawner.spawn_in(flow.snapshot(r), async move {
                        exec_async(&body, &mut child).await
                    }),
                    How::Blocking => spawner.spawn_blocking(move || run_blocking(&body, child)),
                    How::BlockingIn(r) => spawner
                        .spawn_blocking_in(flow.snapshot(r), move || run_blocking(&body, child)),
                    How::Detached | How::Aborted => unreachable!(),
                };
                flow.env.record((id, 0), Obs::End(joined(handle.await)));
            }
            How::Detached => {
                // Its own tokens and snapshots, so that nothing outlives it but what it made.
                let mut child = flow.apart();
                let (sender, released) = oneshot::channel();
                let signal = Released(Mutex::new(Some(sender)));
                let handle = RELEASED.sync_scope(signal, || {
                    spawner.spawn(async move { exec_async(&body, &mut child).await })
                });
                drop(handle);
                released.await.unwrap();
            }
            How::Aborted => {
                let mut child = flow.sharing(true);
                let env = flow.env.clone();
                let (reached, on_reached) = oneshot::channel();
                let handle = spawner.spawn(async move {
                    exec_async(&body, &mut child).await;
                    let _probe = Probe { env, key: (id, 2) };
                    let _ = reached.send(());
                    pending::<()>().await;
                });
                let _ = on_reached.await;
                handle.abort();
                flow.env.record((id, 0), Obs::End(joined(handle.await)));
            }
        }
        flow.env.record((id, 1), Obs::Values(current()));
    }

    /// Runs a program as the whole body of a task or thread, and records how it ended.
    pub async fn exec_program(program: &[Node], mut flow: Flow) {
        let outcome = AssertUnwindSafe(exec_async(program, &mut flow))
            .catch_unwind()
            .await;
        flow.join_deferred().await;
        flow.env.record((TOP, 0), Obs::End(ended(outcome)));
        flow.env.record((TOP, 1), Obs::Values(current()));
    }
}

mod model {
    //! The semantics, as plainly as they can be said: a context is a map of variables, a scope
    //! has an identity, and each kind of operation copies, changes or discards maps.

    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::rc::Rc;

    use super::*;

    /// A scope: a context installed for a while (a task, a closure run, an attached guard, a
    /// future in a context, a thread), with the identity that tokens check.
    struct Frame {
        id: u64,
        values: Values,
    }

    struct Token {
        var: Var,
        frame: u64,
        old: Option<u64>,
    }

    #[derive(Default)]
    struct Pool {
        tokens: HashMap<u32, Token>,
        snapshots: HashMap<u32, Values>,
    }

    #[derive(Clone)]
    struct Flow {
        pool: Rc<RefCell<Pool>>,
        can_spawn: bool,
        suppressed: bool,
        /// Inside a future that is polled once: the first yield ends it.
        suspendable: bool,
    }

    impl Flow {
        /// The same, in a scope of its own (`run`, `attach`, a future's poll): suppression
        /// belongs to the scope it was asked in.
        fn own_scope(&self) -> Flow {
            Flow {
                suppressed: false,
                ..self.clone()
            }
        }
    }

    pub struct Model {
        record: Record,
        frames: u64,
        spawner: bool,
    }

    const EMPTY: Values = [None; 3];

    fn index(v: Var) -> usize {
        VARS.iter().position(|x| *x == v).unwrap()
    }

    impl Model {
        /// What `program` records, run as the body of a task (with a spawner) or of a thread.
        pub fn run(program: &[Node], spawner: bool) -> Record {
            let mut model = Model {
                record: Record::new(),
                frames: 0,
                spawner,
            };
            let mut top = model.frame(EMPTY);
            let flow = Flow {
                pool: Rc::default(),
                can_spawn: true,
                suppressed: false,
                suspendable: false,
            };
            let end = model.exec(program, &mut top, &flow, true);
            model.record.insert((TOP, 0), Obs::End(end));
            model.record.insert((TOP, 1), Obs::Values(top.values));
            model.record
        }

        fn frame(&mut self, values: Values) -> Frame {
            self.frames += 1;
            Frame {
                id: self.frames,
                values,
            }
        }

        fn snapshot(flow: &Flow, r: Ref) -> Values {
            r.and_then(|id| flow.pool.borrow().snapshots.get(&id).copied())
                .unwrap_or(EMPTY)
        }

        fn source(flow: &Flow, frame: &Frame, source: Source<Ref>) -> Values {
            match source {
                Source::Current => frame.values,
                Source::Snapshot(r) => Self::snapshot(flow, r),
            }
        }

        fn after(&mut self, id: u32, end: End, frame: &Frame) {
            self.record.insert((id, 0), Obs::End(end));
            self.record.insert((id, 1), Obs::Values(frame.values));
        }

        /// Runs a body in `frame`; the body's `OnDrop`s see the frame as the body leaves it.
        fn exec(&mut self, body: &[Node], frame: &mut Frame, flow: &Flow, is_async: bool) -> End {
            let mut probes = Vec::new();
            let end = self.ops(body, frame, flow, is_async, &mut probes);
            for key in probes {
                self.record.insert(key, Obs::Values(frame.values));
            }
            end
        }

        fn ops(
            &mut self,
            body: &[Node],
            frame: &mut Frame,
            flow: &Flow,
            is_async: bool,
            probes: &mut Vec<Key>,
        ) -> End {
            for node in body.iter() {
                let id = node.id;
                match node.op {
                    Op::Set(v) => {
                        let old = frame.values[index(v)];
                        self.record.insert((id, 0), Obs::Old(old));
                        let token = Token {
                            var: v,
                            frame: frame.id,
                            old,
                        };
                        flow.pool.borrow_mut().tokens.insert(id, token);
                        frame.values[index(v)] = Some(id.into());
                    }
                    Op::Reset(v, r) => {
                        let token = r.and_then(|set| flow.pool.borrow_mut().tokens.remove(&set));
                        let reset = match token {
                            None => Reset::NoToken,
                            Some(token) if token.var != v => Reset::OtherVariable,
                            Some(token) if token.frame != frame.id => Reset::OtherContext,
                            Some(token) => {
                                frame.values[index(v)] = token.old;
                                Reset::Done
                            }
                        };
                        self.record.insert((id, 0), Obs::Reset(reset));
                    }
                    Op::Check => {
                        self.record.insert((id, 0), Obs::Values(frame.values));
                    }
                    Op::Snapshot => {
                        flow.pool.borrow_mut().snapshots.insert(id, frame.values);
                    }
                    Op::ReadSnapshot(r) => {
                        let seen = r.and_then(|s| flow.pool.borrow().snapshots.get(&s).copied());
                        self.record
                            .insert((id, 0), seen.map_or(Obs::Missing, Obs::Values));
                    }
                    Op::OnDrop => probes.push((id, 0)),
                    Op::Panic => return End::Panicked,
                    Op::Yield => {
                        if is_async && flow.suspendable {
                            return End::Suspended;
                        }
                    }
                    Op::Run(r, _) | Op::Attach(r, _) => {
                        let mut inner = self.frame(Self::snapshot(flow, r));
                        let end = self.exec(&node.body, &mut inner, &flow.own_scope(), false);
                        self.after(id, end, frame);
                    }
                    Op::SyncScope(v, _) => {
                        let mut values = frame.values;
                        values[index(v)] = Some(id.into());
                        let mut inner = self.frame(values);
                        let end = self.exec(&node.body, &mut inner, flow, false);
                        self.after(id, end, frame);
                    }
                    Op::Wrap(r, _) => {
                        let mut inner = self.frame(Self::snapshot(flow, r));
                        // Another thread: nothing suppressed there, and nothing spawned.
                        let on_thread = Flow {
                            pool: flow.pool.clone(),
                            can_spawn: false,
                            suppressed: false,
                            suspendable: false,
                        };
                        let end = self.exec(&node.body, &mut inner, &on_thread, false);
                        self.after(id, end, frame);
                    }
                    Op::SuppressFlow(_) => {
                        let suppressed = Flow {
                            suppressed: true,
                            ..flow.clone()
                        };
                        let end = self.exec(&node.body, frame, &suppressed, false);
                        self.after(id, end, frame);
                    }
                    Op::DropEarly(source, _) => {
                        let mut inner = self.frame(Self::source(flow, frame, source));
                        let polled_once = Flow {
                            can_spawn: false,
                            suspendable: true,
                            ..flow.own_scope()
                        };
                        let end = self.exec(&node.body, &mut inner, &polled_once, true);
                        self.after(id, end, frame);
                    }
                    Op::InContext(source, _) if is_async => {
                        let mut inner = self.frame(Self::source(flow, frame, source));
                        let end = self.exec(&node.body, &mut inner, &flow.own_scope(), true);
                        if end == End::Suspended {
                            return End::Suspended;
                        }
                        self.after(id, end, frame);
                    }
                    Op::Scope(v, _) if is_async => {
                        let mut values = frame.values;
                        values[index(v)] = Some(id.into());
                        let mut inner = self.frame(values);
                        let end = self.exec(&node.body, &mut inner, &flow.own_scope(), true);
                        if end == End::Suspended {
                            return End::Suspended;
                        }
                        self.after(id, end, frame);
                    }
                    Op::InContext(..) | Op::Scope(..) => {}
                    Op::Spawn(how, _) => {
                        if flow.can_spawn && self.spawner {
                            self.spawn(node, how, frame, flow, is_async);
                        }
                    }
                }
            }
            End::Done
        }

        fn spawn(
            &mut self,
            node: &Node,
            how: How<Ref>,
            frame: &Frame,
            flow: &Flow,
            is_async: bool,
        ) {
            let id = node.id;
            let inherited = if flow.suppressed {
                EMPTY
            } else {
                let mut values = frame.values;
                values[index(Var::Local)] = None;
                values
            };
            let (values, body_is_async) = match how {
                How::TaskIn(r) => (Self::snapshot(flow, r), true),
                How::BlockingIn(r) => (Self::snapshot(flow, r), false),
                How::Blocking => (inherited, false),
                How::Task | How::Detached | How::Aborted => (inherited, true),
            };
            let child_flow = |pool| Flow {
                pool,
                can_spawn: true,
                suppressed: false,
                suspendable: false,
            };
            let apart = || {
                let snapshots = flow.pool.borrow().snapshots.clone();
                Rc::new(RefCell::new(Pool {
                    tokens: HashMap::new(),
                    snapshots,
                }))
            };
            let mut child = self.frame(values);
            if !is_async {
                // Spawned from synchronous code, it runs alongside its parent: its own tokens,
                // a copy of the snapshots, and joined later.
                let end = self.exec(&node.body, &mut child, &child_flow(apart()), body_is_async);
                self.record.insert((id, 0), Obs::End(end));
                return;
            }
            match how {
                How::Detached => {
                    self.exec(&node.body, &mut child, &child_flow(apart()), true);
                }
                How::Aborted => {
                    let end =
                        self.exec(&node.body, &mut child, &child_flow(flow.pool.clone()), true);
                    let end = match end {
                        End::Panicked => End::Panicked,
                        _ => {
                            self.record.insert((id, 2), Obs::Values(child.values));
                            End::Cancelled
                        }
                    };
                    self.record.insert((id, 0), Obs::End(end));
                }
                _ => {
                    let child_flow = child_flow(flow.pool.clone());
                    let end = self.exec(&node.body, &mut child, &child_flow, body_is_async);
                    self.record.insert((id, 0), Obs::End(end));
                }
            }
            self.record.insert((id, 1), Obs::Values(frame.values));
        }
    }
}

fn arb_var() -> impl Strategy<Value = Var> {
    prop_oneof![Just(Var::A), Just(Var::B), Just(Var::Local)]
}

fn arb_program() -> impl Strategy<Value = Vec<Op>> {
    let leaf = prop_oneof![
        4 => arb_var().prop_map(Op::Set),
        3 => (arb_var(), any::<usize>()).prop_map(|(v, r)| Op::Reset(v, r)),
        4 => Just(Op::Check),
        2 => Just(Op::Snapshot),
        2 => any::<usize>().prop_map(Op::ReadSnapshot),
        1 => Just(Op::OnDrop),
        1 => Just(Op::Panic),
        2 => Just(Op::Yield),
    ];
    let op = leaf.prop_recursive(4, 32, 4, |inner| {
        let body = prop::collection::vec(inner, 0..5);
        let source = prop_oneof![
            Just(Source::Current),
            any::<usize>().prop_map(Source::Snapshot)
        ];
        let how = prop_oneof![
            Just(How::Task),
            Just(How::Blocking),
            any::<usize>().prop_map(How::TaskIn),
            any::<usize>().prop_map(How::BlockingIn),
            Just(How::Detached),
            Just(How::Aborted),
        ];
        prop_oneof![
            1 => (any::<usize>(), body.clone()).prop_map(|(r, b)| Op::Run(r, b)),
            1 => (arb_var(), body.clone()).prop_map(|(v, b)| Op::SyncScope(v, b)),
            1 => (any::<usize>(), body.clone()).prop_map(|(r, b)| Op::Attach(r, b)),
            1 => (any::<usize>(), body.clone()).prop_map(|(r, b)| Op::Wrap(r, b)),
            1 => body.clone().prop_map(Op::SuppressFlow),
            1 => (source.clone(), body.clone()).prop_map(|(s, b)| Op::DropEarly(s, b)),
            1 => (source, body.clone()).prop_map(|(s, b)| Op::InContext(s, b)),
            1 => (arb_var(), body.clone()).prop_map(|(v, b)| Op::Scope(v, b)),
            2 => (how, body).prop_map(|(h, b)| Op::Spawn(h, b)),
        ]
    });
    // Every variable starts set, so that whatever starts from the context has something to see.
    let start = [Op::Set(Var::A), Op::Set(Var::B), Op::Set(Var::Local)];
    prop::collection::vec(op, 1..7).prop_map(move |ops| start.iter().cloned().chain(ops).collect())
}

/// Runs `program` on a plain executor on a new thread, whose own context is the program's
/// outermost one; returns what it recorded.
#[allow(
    clippy::disallowed_methods,
    reason = "the program runs on a fresh plain thread, which starts with an empty context"
)]
fn run_on_a_thread(program: &[Op]) -> Result<Record, TestCaseError> {
    let (nodes, size) = resolve(program);
    let record = Arc::new(Mutex::new(Record::new()));
    let alive = Arc::new(AtomicUsize::new(0));
    let env = real::Env {
        record: record.clone(),
        alive: alive.clone(),
        spawner: None,
        size,
    };
    std::thread::spawn(move || {
        futures::executor::block_on(real::exec_program(&nodes, real::Flow::new(env)))
    })
    .join()
    .map_err(|_| TestCaseError::fail("the program's thread failed"))?;
    prop_assert_eq!(alive.load(Ordering::SeqCst), 0, "values left alive");
    let record = std::mem::take(&mut *record.lock().unwrap());
    Ok(record)
}

/// Runs `program` as the body of a task on `runtime`; returns what it recorded.
fn run_on(runtime: Runtime, program: &[Op]) -> Result<Record, TestCaseError> {
    let (nodes, size) = resolve(program);
    let record = Arc::new(Mutex::new(Record::new()));
    let alive = Arc::new(AtomicUsize::new(0));
    let env = real::Env {
        record: record.clone(),
        alive: alive.clone(),
        spawner: None,
        size,
    };
    let outcome = runtime.run(move |spawner| async move {
        let env = real::Env {
            spawner: Some(spawner.clone()),
            ..env
        };
        real::exec_program(&nodes, real::Flow::new(env)).await;
        assert_workers_clean(&spawner).await;
    });
    prop_assert!(outcome.is_ok(), "on {}: {:?}", runtime.name(), outcome);
    prop_assert!(Context::current().is_empty());
    settle(&alive);
    prop_assert_eq!(
        alive.load(Ordering::SeqCst),
        0,
        "values left alive on {}",
        runtime.name()
    );
    let record = std::mem::take(&mut *record.lock().unwrap());
    Ok(record)
}

/// Waits, for a bounded time, for values being dropped on a worker to be gone. A detached task
/// signals its release from inside the drop of its context, and that drop may still be
/// dropping the context's other values on the worker when the signal is received.
fn settle(alive: &AtomicUsize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while alive.load(Ordering::SeqCst) != 0 && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Shrunk failures are kept as regular tests in this file, not in a side file.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(2048))]

    #[test]
    fn programs_on_a_plain_executor_observe_what_the_model_predicts(program in arb_program()) {
        quiet_program_panics();
        let expected = model::Model::run(&resolve(&program).0, false);
        let observed = run_on_a_thread(&program)?;
        prop_assert_eq!(observed, expected);
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn programs_on_every_runtime_observe_what_the_model_predicts(program in arb_program()) {
        quiet_program_panics();
        let expected = model::Model::run(&resolve(&program).0, true);
        for &runtime in Runtime::all() {
            let observed = run_on(runtime, &program)?;
            prop_assert_eq!(&observed, &expected, "on {}", runtime.name());
        }
    }
}

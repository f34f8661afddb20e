//! [`Carrier`]: ambient state kept by another library (a span, a hub, a thread-local) that
//! flows with the context as if it were one of its variables.

use std::any::{Any, TypeId};
use std::error::Error;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

use crate::captured::{self, Captured};

/// A piece of ambient state that ctxflow captures with every snapshot and puts back around
/// every poll and every closure that runs in it: Kotlin's `ThreadContextElement`.
///
/// A library that keeps its own "current" value in a thread-local (a `tracing` span,
/// OpenTelemetry's context, Sentry's hub, a locale) loses it whenever work moves to another
/// task or thread. Registered once with [`register_carrier`], a carrier makes that value part
/// of [`Context`](crate::Context): [`Context::current`](crate::Context::current) captures it,
/// and wherever the context is installed (every spawn, [`Context::run`](crate::Context::run),
/// [`Context::wrap`](crate::Context::wrap), `in_context`, the thread and pool helpers) the
/// carrier installs the captured value first and restores the thread's own afterwards, panics
/// included. Nothing is needed at the spawn sites.
///
/// ```
/// use std::cell::RefCell;
/// use ctxflow::{register_carrier, Carrier, Context};
///
/// thread_local! {
///     static LOCALE: RefCell<&'static str> = const { RefCell::new("en") };
/// }
///
/// struct Locale;
///
/// impl Carrier for Locale {
///     type Captured = &'static str;
///     type Saved = &'static str;
///     const NAME: &'static str = "locale";
///
///     fn capture(&self) -> &'static str {
///         LOCALE.with(|locale| *locale.borrow())
///     }
///     fn install(&self, captured: &&'static str) -> &'static str {
///         LOCALE.with(|locale| locale.replace(captured))
///     }
///     fn restore(&self, _captured: &&'static str, saved: &'static str) {
///         LOCALE.with(|locale| *locale.borrow_mut() = saved);
///     }
/// }
///
/// register_carrier(Locale).unwrap();
///
/// LOCALE.with(|locale| *locale.borrow_mut() = "fr");
/// let job = Context::current().wrap(|| LOCALE.with(|locale| *locale.borrow()));
/// assert_eq!(std::thread::spawn(job).join().unwrap(), "fr");
/// ```
///
/// # What a carrier must not do
///
/// - Install and restore run around every poll, capture at every snapshot: keep them to a few
///   loads and stores, and do not block, allocate without need, or log.
/// - They must not read or set context variables, attach a [`Context`](crate::Context) or
///   spawn: they run while the context itself is being installed or restored.
/// - `restore` must put back exactly what `install` replaced: the thread's state before the
///   install, not a default.
/// - A panic in any of them is reported as the panic of the task or closure being run, naming
///   the carrier; the other carriers and the variables are restored all the same.
pub trait Carrier: Send + Sync + 'static {
    /// The state a snapshot holds: captured once, installed at every poll.
    type Captured: Send + Sync + 'static;
    /// What [`install`](Self::install) replaced, handed back to [`restore`](Self::restore).
    /// Up to two words are kept in place, without allocating, until the restore; a larger
    /// value is boxed, once per poll.
    type Saved: 'static;
    /// The carrier's name, shown in panics and in `Debug` output.
    const NAME: &'static str;
    /// Whether the state flows into spawned work, as a variable declared with
    /// [`ContextVar::new`](crate::ContextVar::new) does. A carrier that does not flow is still
    /// captured by [`Context::current`](crate::Context::current), like a
    /// [non-flowing](crate::ContextVar::non_flowing) variable. Nothing flows inside
    /// [`suppress_flow`](crate::suppress_flow).
    const FLOWS: bool = true;
    /// Whether `install` and `restore` are called inside `catch_unwind`, so that a panic in
    /// them is reported with the carrier's name (see below). `false` spares that around every
    /// poll, a few nanoseconds: for a carrier that only calls code which does not panic, or
    /// whose panics may surface as they are. Its panics still unwind through the other
    /// carriers and the variables, which are restored all the same; a restore that panics
    /// while the thread already unwinds is caught and left out, since a second panic would
    /// abort the process. The `tracing`, `opentelemetry` and `sentry` carriers set it to
    /// `false`, as `tracing::Instrument`, OpenTelemetry's `with_context` and Sentry's
    /// `bind_hub` catch nothing either.
    const CATCH_PANICS: bool = true;

    /// The state current on this thread now.
    fn capture(&self) -> Self::Captured;

    /// Makes `captured` current on this thread; returns what it replaced.
    fn install(&self, captured: &Self::Captured) -> Self::Saved;

    /// Puts back what [`install`](Self::install) replaced, on the same thread.
    fn restore(&self, captured: &Self::Captured, saved: Self::Saved);

    /// Whether `captured` is no state at all: installing it would change nothing on any
    /// thread, as entering `tracing`'s disabled span does. A snapshot leaves such state out,
    /// so taking one where no carrier has state allocates nothing. The default is `false`:
    /// the state is installed wherever the snapshot runs, also when it is a default value
    /// that hides the polling thread's own. State left out is not restored either: what the
    /// work changes in the thread-local directly stays for whatever the thread runs next, so
    /// say `true` only where installing would truly change nothing. A panic here is the
    /// capture's: reported where the snapshot runs.
    fn is_empty(&self, captured: &Self::Captured) -> bool {
        let _ = captured;
        false
    }
}

/// Why [`register_carrier`] refused a carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegisterError {
    /// A carrier of the same type is registered already: a second one would install the same
    /// state twice around every poll.
    AlreadyRegistered {
        /// The carrier's name.
        name: &'static str,
    },
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterError::AlreadyRegistered { name } => {
                write!(f, "the carrier `{name}` is registered already")
            }
        }
    }
}

impl Error for RegisterError {}

/// Registers `carrier` for the life of the process: every snapshot taken from now on captures
/// it. Register at start-up, before the work that should carry it is spawned; a library that
/// wants its carrier registered with no call at all uses [`static_carrier!`](crate::static_carrier)
/// instead, as the integrations do. A carrier refused is dropped.
///
/// ```
/// use ctxflow::{register_carrier, Carrier};
/// use ctxflow::carrier::RegisterError;
///
/// struct Nothing;
/// impl Carrier for Nothing {
///     type Captured = ();
///     type Saved = ();
///     const NAME: &'static str = "nothing";
///     fn capture(&self) {}
///     fn install(&self, _: &()) {}
///     fn restore(&self, _: &(), _: ()) {}
/// }
///
/// register_carrier(Nothing).unwrap();
/// assert_eq!(
///     register_carrier(Nothing),
///     Err(RegisterError::AlreadyRegistered { name: "nothing" })
/// );
/// ```
pub fn register_carrier<C: Carrier>(carrier: C) -> Result<(), RegisterError> {
    let refused = Err(RegisterError::AlreadyRegistered { name: C::NAME });
    if statically_registered().any(|existing| Any::type_id(existing) == TypeId::of::<C>()) {
        return refused;
    }
    // Leaked only by the initialisation of the free slot it goes into, so that a refused
    // carrier is dropped; a registration racing for the same slot waits for that one and
    // then compares types with it, so that exactly one carrier of a type gets in.
    let mut unregistered = Some(carrier);
    let mut slot = &REGISTERED;
    loop {
        let existing = slot.get_or_init(|| {
            let carrier = unregistered
                .take()
                .expect("a slot is initialised once, and the registration returns after it");
            Box::leak(Box::new(Node {
                carrier: Box::leak(Box::new(carrier)),
                next: OnceLock::new(),
            }))
        });
        if unregistered.is_none() {
            ANY.store(SOME, Ordering::Relaxed);
            return Ok(());
        }
        if Any::type_id(existing.carrier) == TypeId::of::<C>() {
            return refused;
        }
        slot = &existing.next;
    }
}

/// The registered carriers: a list that only grows, linked through `OnceLock`s so that reading
/// it takes no lock, and checking that it is empty is one load.
static REGISTERED: OnceLock<&'static Node> = OnceLock::new();

struct Node {
    carrier: &'static dyn Registered,
    next: OnceLock<&'static Node>,
}

/// Registers a [`Carrier`] for the life of the process before `main` starts, with no call at
/// start-up: what a library does so that its state flows as soon as it is linked in. The
/// `tracing` and `opentelemetry` integrations register theirs this way.
///
/// It takes a constant expression of a carrier type (a unit struct, typically) and is written
/// at module level. Each carrier type is registered once, statically or with
/// [`register_carrier`], which refuses a type registered here. The order in which carriers are
/// installed is unspecified; each is restored in the reverse order of its install.
///
/// ```
/// use std::cell::Cell;
/// use ctxflow::{Carrier, Context};
///
/// thread_local! {
///     static REGION: Cell<&'static str> = const { Cell::new("eu") };
/// }
///
/// struct Region;
///
/// impl Carrier for Region {
///     type Captured = &'static str;
///     type Saved = &'static str;
///     const NAME: &'static str = "region";
///     fn capture(&self) -> &'static str {
///         REGION.with(Cell::get)
///     }
///     fn install(&self, region: &&'static str) -> &'static str {
///         REGION.with(|current| current.replace(region))
///     }
///     fn restore(&self, _: &&'static str, previous: &'static str) {
///         REGION.with(|current| current.set(previous));
///     }
/// }
///
/// ctxflow::static_carrier!(Region);
///
/// REGION.with(|current| current.set("us"));
/// let job = Context::current().wrap(|| REGION.with(Cell::get));
/// assert_eq!(std::thread::spawn(job).join().unwrap(), "us");
/// ```
#[macro_export]
macro_rules! static_carrier {
    ($carrier:expr $(,)?) => {
        $crate::__private::inventory::submit! {
            $crate::__private::StaticCarrier::new(&$carrier)
        }
    };
}

/// A carrier registered by [`static_carrier!`](crate::static_carrier); not meant to be named.
#[doc(hidden)]
pub struct StaticCarrier(&'static dyn Registered);

impl StaticCarrier {
    #[doc(hidden)]
    pub const fn new<C: Carrier>(carrier: &'static C) -> Self {
        StaticCarrier(carrier)
    }
}

inventory::collect!(StaticCarrier);

fn statically_registered() -> impl Iterator<Item = &'static dyn Registered> {
    inventory::iter::<StaticCarrier>
        .into_iter()
        .map(|registered| registered.0)
}

/// Whether any carrier can be captured: one load, once the answer is known, so that a
/// snapshot with no carrier registered costs what it did before carriers existed.
#[inline]
pub(crate) fn any() -> bool {
    match ANY.load(Ordering::Relaxed) {
        NONE => false,
        SOME => true,
        _ => any_first(),
    }
}

/// Whether any carrier is registered: [`UNKNOWN`] until a snapshot or a registration asks.
static ANY: AtomicU8 = AtomicU8::new(UNKNOWN);
const UNKNOWN: u8 = 0;
const NONE: u8 = 1;
const SOME: u8 = 2;

/// Looks at the registered carriers, once. A registration that races with it leaves
/// [`SOME`]: it stores it after appending its carrier, and a [`NONE`] found before that
/// is only stored while the flag is still [`UNKNOWN`].
#[cold]
fn any_first() -> bool {
    let any = statically_registered().next().is_some() || REGISTERED.get().is_some();
    let found = if any { SOME } else { NONE };
    match ANY.compare_exchange(UNKNOWN, found, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => any,
        Err(stored) => stored == SOME,
    }
}

/// The registered carriers: the static ones, then the others in the order of registration.
pub(crate) fn registered() -> impl Iterator<Item = &'static dyn Registered> {
    let mut next = REGISTERED.get();
    let dynamic = std::iter::from_fn(move || {
        let node = next?;
        next = node.next.get();
        Some(node.carrier)
    });
    statically_registered().chain(dynamic)
}

/// A registered carrier, whatever its type.
pub(crate) trait Registered: Any + Send + Sync {
    fn flows(&self) -> bool;
    /// Captures the carrier's state above `below`, the state captured from the carriers
    /// installed after it; when it has none, `below` is all there is and nothing is allocated.
    fn capture(&'static self, below: Option<Arc<dyn Captured>>) -> Option<Arc<dyn Captured>>;
}

impl<C: Carrier> Registered for C {
    fn flows(&self) -> bool {
        C::FLOWS
    }

    fn capture(&'static self, below: Option<Arc<dyn Captured>>) -> Option<Arc<dyn Captured>> {
        captured::capture(self, below)
    }
}

/// Captures `carrier`'s state, `None` when it [is empty](Carrier::is_empty); a panic in
/// either is kept as its message, to be raised again, with the carrier's name, where the state
/// would have been installed ([`capture_failed`]), as snapshots are taken at every spawn.
#[inline]
pub(crate) fn capture<C: Carrier>(carrier: &C) -> Result<Option<C::Captured>, String> {
    panic::catch_unwind(AssertUnwindSafe(|| {
        let captured = carrier.capture();
        (!carrier.is_empty(&captured)).then_some(captured)
    }))
    .map_err(|payload| message(&*payload))
}

/// Installs `captured` inside `catch_unwind`, for a carrier that asks for it; returns what it
/// replaced, for [`restore_catching`].
///
/// # Panics
/// When the install panicked, with the carrier's name; nothing is installed. Not while the
/// thread is already panicking: then the state is left out, and `None` says so.
pub(crate) fn install_catching<C: Carrier>(
    carrier: &C,
    captured: &C::Captured,
) -> Option<C::Saved> {
    match panic::catch_unwind(AssertUnwindSafe(|| carrier.install(captured))) {
        Ok(saved) => Some(saved),
        Err(payload) => failed_unless_panicking::<C>("installing", &message(&*payload)),
    }
}

/// Where a carrier whose capture panicked would have been installed.
///
/// # Panics
/// With the capture's message and the carrier's name, unless the thread is already panicking.
#[cold]
pub(crate) fn capture_failed<C: Carrier>(message: &str) {
    failed_unless_panicking::<C>("capturing", message);
}

/// Puts back what [`install_catching`] replaced, inside `catch_unwind`; also what any
/// carrier's install replaced, when the restore runs while the thread unwinds.
///
/// # Panics
/// When the restore panicked, with the carrier's name; not while the thread is already
/// panicking, when a second panic would abort (the hook has printed this one already).
pub(crate) fn restore_catching<C: Carrier>(carrier: &C, captured: &C::Captured, saved: C::Saved) {
    let restored = panic::catch_unwind(AssertUnwindSafe(|| carrier.restore(captured, saved)));
    if let Err(payload) = restored {
        failed_unless_panicking::<C>("restoring", &message(&*payload));
    }
}

/// A future dropped while its task unwinds is dropped inside its context: a second panic there
/// would abort the process, so the carrier's state is left out, and the first panic goes on.
#[cold]
fn failed_unless_panicking<C: Carrier>(doing: &str, message: &str) -> Option<C::Saved> {
    if std::thread::panicking() {
        return None;
    }
    failed::<C>(doing, message)
}

#[cold]
#[inline(never)]
#[track_caller]
fn failed<C: Carrier>(doing: &str, message: &str) -> ! {
    panic!(
        "ctxflow: carrier `{}` panicked while {doing}: {message}",
        C::NAME
    )
}

fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "(a panic payload that is not a string)".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::Context;

    thread_local! {
        static LATE: Cell<Option<u32>> = const { Cell::new(None) };
    }

    /// Registered by the test below only: no other test of this crate registers a carrier.
    struct Late;

    impl Carrier for Late {
        type Captured = Option<u32>;
        type Saved = Option<u32>;
        const NAME: &'static str = "late";

        fn capture(&self) -> Option<u32> {
            LATE.with(Cell::get)
        }
        fn install(&self, captured: &Option<u32>) -> Option<u32> {
            LATE.with(|late| late.replace(*captured))
        }
        fn restore(&self, _: &Option<u32>, saved: Option<u32>) {
            LATE.with(|late| late.set(saved));
        }
        fn is_empty(&self, captured: &Option<u32>) -> bool {
            captured.is_none()
        }
    }

    #[test]
    fn a_carrier_registered_after_snapshots_were_taken_is_captured_from_then_on() {
        LATE.with(|late| late.set(Some(5)));
        let before = Context::current().wrap(|| LATE.with(Cell::get));
        assert_eq!(std::thread::spawn(before).join().unwrap(), None);

        register_carrier(Late).unwrap();
        let after = Context::current().wrap(|| LATE.with(Cell::get));
        assert_eq!(std::thread::spawn(after).join().unwrap(), Some(5));
    }
}

//! [`Carrier`]: ambient state kept by another library (a span, a hub, a thread-local) that
//! flows with the context as if it were one of its variables.

use std::any::{Any, TypeId};
use std::error::Error;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};

use crate::saved::SavedState;

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
/// - Capture, install and restore run around every poll: keep them to a few loads and stores,
///   and do not block, allocate without need, or log.
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
    /// Up to two words are kept without allocating where a guard holds it across a poll
    /// (tokio's task hooks, [`Context::attach`](crate::Context::attach)); a larger value is
    /// boxed there, once per poll.
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
    /// carriers and the variables, which are restored all the same. The `tracing`,
    /// `opentelemetry` and `sentry` carriers set it to `false`, as `tracing::Instrument`,
    /// OpenTelemetry's `with_context` and Sentry's `bind_hub` catch nothing either.
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
    /// that hides the polling thread's own.
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
/// instead, as the integrations do.
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
    let node: &'static Node = Box::leak(Box::new(Node {
        carrier: Box::leak(Box::new(carrier)),
        next: OnceLock::new(),
    }));
    if statically_registered().any(|existing| Any::type_id(existing) == TypeId::of::<C>()) {
        return Err(RegisterError::AlreadyRegistered { name: C::NAME });
    }
    let mut slot = &REGISTERED;
    loop {
        match slot.get() {
            Some(existing) => {
                if Any::type_id(existing.carrier) == TypeId::of::<C>() {
                    return Err(RegisterError::AlreadyRegistered { name: C::NAME });
                }
                slot = &existing.next;
            }
            // Lost a race with another registration: look again at what it appended.
            None => match slot.set(node) {
                Ok(()) => return Ok(()),
                Err(_) => continue,
            },
        }
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

/// Whether any carrier can be captured: two loads.
#[inline]
pub(crate) fn any() -> bool {
    inventory::iter::<StaticCarrier>
        .into_iter()
        .next()
        .is_some()
        || REGISTERED.get().is_some()
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

/// One carrier's captured state, whatever its type, and the state of the carriers installed
/// after it: a list shared by every snapshot that holds it.
pub(crate) trait Captured: Send + Sync {
    fn name(&self) -> &'static str;
    /// The state of the carrier installed next.
    fn below(&self) -> Option<&dyn Captured>;
    /// Installs the state, and every state below it, runs `work`, and restores the thread's
    /// own, panics included.
    fn enter(&self, work: &mut dyn FnMut());
    /// Installs this state alone until [`restore`](Self::restore) is given what this returns.
    fn install(&self) -> Option<SavedState>;
    fn restore(&self, saved: Option<SavedState>);
}

impl<C: Carrier> Registered for C {
    fn flows(&self) -> bool {
        C::FLOWS
    }

    fn capture(&'static self, below: Option<Arc<dyn Captured>>) -> Option<Arc<dyn Captured>> {
        let captured = capture(self);
        if matches!(&captured, Ok(state) if self.is_empty(state)) {
            return below;
        }
        Some(Arc::new(Typed {
            carrier: self,
            captured,
            below,
        }))
    }
}

struct Typed<C: Carrier> {
    carrier: &'static C,
    captured: Capture<C>,
    below: Option<Arc<dyn Captured>>,
}

impl<C: Carrier> Captured for Typed<C> {
    fn name(&self) -> &'static str {
        C::NAME
    }

    fn below(&self) -> Option<&dyn Captured> {
        self.below.as_deref()
    }

    #[inline]
    fn enter(&self, work: &mut dyn FnMut()) {
        let below = |work: &mut dyn FnMut()| match &self.below {
            Some(below) => below.enter(work),
            None => work(),
        };
        // A carrier that catches nothing is called directly: `install` keeps the failure
        // paths, and is not inlined.
        if let (false, Ok(captured)) = (C::CATCH_PANICS, &self.captured) {
            let _restore = Unchecked {
                carrier: self.carrier,
                captured,
                saved: Some(self.carrier.install(captured)),
            };
            return below(work);
        }
        let _entered = enter(self.carrier, &self.captured);
        below(work)
    }

    fn install(&self) -> Option<SavedState> {
        install(self.carrier, &self.captured).map(SavedState::new)
    }

    fn restore(&self, saved: Option<SavedState>) {
        let saved = saved.map(SavedState::into_inner::<C::Saved>);
        restore(self.carrier, &self.captured, saved);
    }
}

/// Restores a carrier that catches no panics, when dropped.
struct Unchecked<'a, C: Carrier> {
    carrier: &'a C,
    captured: &'a C::Captured,
    saved: Option<C::Saved>,
}

impl<C: Carrier> Drop for Unchecked<'_, C> {
    #[inline]
    fn drop(&mut self) {
        if let Some(saved) = self.saved.take() {
            self.carrier.restore(self.captured, saved);
        }
    }
}

/// What capturing a carrier gave: its state, or the message of the panic that stopped it,
/// raised again where the state would have been installed.
pub(crate) type Capture<C> = Result<<C as Carrier>::Captured, CaptureFailed>;

#[derive(Clone, Debug)]
pub(crate) struct CaptureFailed(String);

/// Captures `carrier`'s state; a panic is kept, to be the panic of the work that runs in it.
#[inline]
pub(crate) fn capture<C: Carrier>(carrier: &C) -> Capture<C> {
    panic::catch_unwind(AssertUnwindSafe(|| carrier.capture()))
        .map_err(|payload| CaptureFailed(message(&*payload)))
}

/// Keeps a carrier's state installed on this thread; restores the thread's own when dropped.
pub(crate) struct Entered<'a, C: Carrier> {
    carrier: &'a C,
    captured: &'a Capture<C>,
    saved: Option<C::Saved>,
}

/// Installs `captured` until the guard drops.
///
/// # Panics
/// See [`install`].
#[inline]
pub(crate) fn enter<'a, C: Carrier>(carrier: &'a C, captured: &'a Capture<C>) -> Entered<'a, C> {
    Entered {
        carrier,
        captured,
        saved: install(carrier, captured),
    }
}

impl<C: Carrier> Drop for Entered<'_, C> {
    #[inline]
    fn drop(&mut self) {
        restore(self.carrier, self.captured, self.saved.take());
    }
}

/// Installs `captured`; returns what it replaced, for [`restore`].
///
/// # Panics
/// When the capture or the install panicked, with the carrier's name; nothing is installed.
/// Not while the thread is already panicking: then the state is left out, and `None` says so.
#[inline]
pub(crate) fn install<C: Carrier>(carrier: &C, captured: &Capture<C>) -> Option<C::Saved> {
    if let (false, Ok(captured)) = (C::CATCH_PANICS, captured) {
        return Some(carrier.install(captured));
    }
    let failure = match captured {
        Ok(captured) => match panic::catch_unwind(AssertUnwindSafe(|| carrier.install(captured))) {
            Ok(saved) => return Some(saved),
            Err(payload) => ("installing", message(&*payload)),
        },
        Err(CaptureFailed(message)) => ("capturing", message.clone()),
    };
    // A future dropped while its task unwinds is dropped inside its context: a second panic
    // there would abort the process, so the state is left out, and the first panic goes on.
    if std::thread::panicking() {
        return None;
    }
    failed::<C>(failure.0, &failure.1)
}

/// Puts back what [`install`] replaced.
///
/// # Panics
/// When the restore panicked, with the carrier's name; not while the thread is already
/// panicking, when a second panic would abort (the hook has printed this one already).
#[inline]
pub(crate) fn restore<C: Carrier>(carrier: &C, captured: &Capture<C>, saved: Option<C::Saved>) {
    let (Ok(captured), Some(saved)) = (captured, saved) else {
        return;
    };
    if !C::CATCH_PANICS {
        return carrier.restore(captured, saved);
    }
    let restored = panic::catch_unwind(AssertUnwindSafe(|| carrier.restore(captured, saved)));
    if let Err(payload) = restored {
        if !std::thread::panicking() {
            failed::<C>("restoring", &message(&*payload));
        }
    }
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

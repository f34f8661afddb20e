//! [`Captured`]: the carriers' state a snapshot holds, one carrier's on each link of a list,
//! and how a whole list is installed and restored ([`enter`], [`Attached`]).
//!
//! A list is installed with one indirect call and restored with one more, whatever it holds;
//! what each carrier's install replaced waits in a slot of the caller's frame until its
//! restore. With one indirect call into each carrier and one more back into the work, a poll
//! carrying a span cost 1.33× what `tracing::Instrumented` adds, and one carrying Sentry's hub
//! 1.76× what `bind_hub` adds; this way, 1.22× and 1.61× (`benches/carriers.rs`, CPU time).
//!
//! One of the three modules where the crate lets `unsafe` code in: a slot holds any carrier's
//! saved state in three words of untyped memory, written by the install of the list link at its
//! depth and read back, as the same type, by that link's restore. Kept through `dyn Any` instead
//! (`smallbox`), each restore pays one more indirect call for the type check; boxed, an
//! allocation per poll (`tests/allocation.rs` counts none). The soundness argument is local:
//! only this module writes and reads slots, the only implementation of the list's install and
//! restore is [`Node`]'s, here, behind a trait no other module can implement, and a slot's
//! depth is fixed when its link is made; `enter` and [`Attached`] restore exactly the list they
//! installed (they hold it).
#![allow(unsafe_code)]

use std::marker::PhantomData;
use std::mem::{self, MaybeUninit};
use std::ptr::NonNull;
use std::sync::Arc;

use crate::carrier::{self, Carrier};

/// One carrier's captured state, whatever its type, and the state of the carriers installed
/// after it: a list shared by every snapshot that holds it. Implemented in this module only.
pub(crate) trait Captured: Send + Sync + sealed::Install {
    fn name(&self) -> &'static str;
    /// The state of the carrier installed next.
    fn below(&self) -> Option<&dyn Captured>;
}

mod sealed {
    use super::Slots;

    /// What only this module may call: each implementation must write and read exactly the
    /// slot at its own depth, as its own type.
    pub trait Install {
        /// How many links there are from this one down to the last, this one included: each
        /// link saves into the slot of its depth.
        fn depth(&self) -> usize;
        /// Installs this state and every state below it, saving what each replaced in its
        /// slot. If one panics, the ones installed before it are restored first.
        fn install(&self, slots: &mut Slots);
        /// Restores what [`install`](Self::install) saved, the last installed first; each
        /// one is restored also when another panics.
        fn restore(&self, slots: &mut Slots);
        /// Restores as [`restore`](Self::restore) does, while the thread unwinds: a carrier
        /// that panics then is left out, whether it catches its panics or not, since a second
        /// panic out of a drop aborts the process.
        fn restore_unwinding(&self, slots: &mut Slots);
    }
}

/// Captures `carrier`'s state above `below`; when it has none, `below` is all there is and
/// nothing is allocated.
pub(crate) fn capture<C: Carrier>(
    carrier: &'static C,
    below: Option<Arc<dyn Captured>>,
) -> Option<Arc<dyn Captured>> {
    match carrier::capture(carrier) {
        Ok(None) => below,
        Ok(Some(captured)) => Some(Node::above(Typed { carrier, captured }, below)),
        Err(message) => Some(Node::above(
            Failed::<C> {
                message,
                carrier: PhantomData,
            },
            below,
        )),
    }
}

/// One link of the list: a carrier's own part of the install and restore.
trait Link: Send + Sync + 'static {
    const NAME: &'static str;
    /// Installs this link's state, saving what it replaced at `depth`.
    fn install(&self, slots: &mut Slots, depth: usize);
    /// Restores what [`install`](Self::install) saved at `depth`.
    fn restore(&self, slots: &mut Slots, depth: usize);
    /// As [`restore`](Self::restore), while the thread unwinds: a panic is caught.
    fn restore_unwinding(&self, slots: &mut Slots, depth: usize);
}

/// A captured state, installed by its carrier.
struct Typed<C: Carrier> {
    carrier: &'static C,
    captured: C::Captured,
}

impl<C: Carrier> Link for Typed<C> {
    const NAME: &'static str = C::NAME;

    #[inline(always)]
    fn install(&self, slots: &mut Slots, depth: usize) {
        if C::CATCH_PANICS {
            slots.put(
                depth,
                carrier::install_catching(self.carrier, &self.captured),
            );
        } else {
            slots.put(depth, self.carrier.install(&self.captured));
        }
    }

    #[inline(always)]
    fn restore(&self, slots: &mut Slots, depth: usize) {
        // SAFETY: `install` put this type at this depth, and each install is restored once
        // (see `enter` and `Attached`).
        if C::CATCH_PANICS {
            if let Some(saved) = unsafe { slots.take::<Option<C::Saved>>(depth) } {
                carrier::restore_catching(self.carrier, &self.captured, saved);
            }
        } else {
            let saved = unsafe { slots.take::<C::Saved>(depth) };
            self.carrier.restore(&self.captured, saved);
        }
    }

    // Catching here, reached only while unwinding, and not in `restore`, spares a carrier that
    // does not catch its panics a `catch_unwind` around every poll, and still never turns the
    // panic its task is unwinding with into an abort.
    #[cold]
    fn restore_unwinding(&self, slots: &mut Slots, depth: usize) {
        // SAFETY: as in `restore`.
        let saved = if C::CATCH_PANICS {
            unsafe { slots.take::<Option<C::Saved>>(depth) }
        } else {
            Some(unsafe { slots.take::<C::Saved>(depth) })
        };
        if let Some(saved) = saved {
            carrier::restore_catching(self.carrier, &self.captured, saved);
        }
    }
}

/// A capture that panicked: installing it raises that panic again, with the carrier's name.
struct Failed<C> {
    message: String,
    carrier: PhantomData<fn() -> C>,
}

impl<C: Carrier> Link for Failed<C> {
    const NAME: &'static str = C::NAME;

    fn install(&self, _: &mut Slots, _: usize) {
        carrier::capture_failed::<C>(&self.message);
    }

    fn restore(&self, _: &mut Slots, _: usize) {}

    fn restore_unwinding(&self, _: &mut Slots, _: usize) {}
}

/// A link, and the links installed after it.
struct Node<L> {
    link: L,
    below: Option<Arc<dyn Captured>>,
    /// How many links there are from this one down to the last, this one included: the link
    /// saves into the slot of its depth.
    depth: usize,
}

impl<L: Link> Captured for Node<L> {
    fn name(&self) -> &'static str {
        L::NAME
    }

    fn below(&self) -> Option<&dyn Captured> {
        self.below.as_deref()
    }
}

impl<L: Link> sealed::Install for Node<L> {
    fn depth(&self) -> usize {
        self.depth
    }

    fn install(&self, slots: &mut Slots) {
        self.link.install(slots, self.depth);
        if let Some(below) = &self.below {
            self.install_below(&**below, slots);
        }
    }

    fn restore(&self, slots: &mut Slots) {
        match &self.below {
            None => self.link.restore(slots, self.depth),
            Some(below) => self.restore_below_first(&**below, slots),
        }
    }

    fn restore_unwinding(&self, slots: &mut Slots) {
        if let Some(below) = &self.below {
            below.restore_unwinding(slots);
        }
        self.link.restore_unwinding(slots, self.depth);
    }
}

impl<L: Link> Node<L> {
    /// `link` on top of `below`.
    fn above(link: L, below: Option<Arc<dyn Captured>>) -> Arc<dyn Captured> {
        let depth = below.as_deref().map_or(0, |below| below.depth()) + 1;
        Arc::new(Node { link, below, depth })
    }

    // The links below are out of line, so that a list of one carrier, the usual one, is
    // installed and restored by a leaf function with nothing to keep across a call.

    #[inline(never)]
    fn install_below(&self, below: &dyn Captured, slots: &mut Slots) {
        let restore_if_unwinding = RestoreLinkIfUnwinding { node: self, slots };
        below.install(restore_if_unwinding.slots);
        mem::forget(restore_if_unwinding);
    }

    #[inline(never)]
    fn restore_below_first(&self, below: &dyn Captured, slots: &mut Slots) {
        let restore_if_unwinding = RestoreLinkIfUnwinding { node: self, slots };
        below.restore(restore_if_unwinding.slots);
        mem::forget(restore_if_unwinding);
        self.link.restore(slots, self.depth);
    }
}

/// Restores one link when a link below it panics in its install or restore: dropped only while
/// unwinding, it is the one place on this path that pays for catching a second panic.
struct RestoreLinkIfUnwinding<'a, L: Link> {
    node: &'a Node<L>,
    slots: &'a mut Slots,
}

impl<L: Link> Drop for RestoreLinkIfUnwinding<'_, L> {
    #[inline(always)]
    fn drop(&mut self) {
        self.node
            .link
            .restore_unwinding(self.slots, self.node.depth);
    }
}

/// Room for one carrier's saved state: what the integrations' carriers save (nothing for a
/// tracing span, a two-byte stack position for OpenTelemetry, an `Arc` for Sentry's hub) and
/// any state of up to two words, with the flag a carrier that catches panics needs beside it
/// (whether its install was left out); a larger state is boxed.
type Space = MaybeUninit<[usize; 3]>;

/// How many carriers' saved states a guard holds in place; the states of more carriers than
/// that are held in a box, allocated at each install.
const INLINE: usize = 4;

/// The saved state of each link of an installed list, by depth.
pub(crate) struct Slots {
    inline: [Slot; INLINE],
    more: Option<Box<Slots>>,
    /// A saved state belongs to the thread it was saved on, and may be neither `Send` nor
    /// `Sync` (OpenTelemetry's guard is neither): untyped memory would be both.
    _on_its_thread: PhantomData<*const ()>,
}

impl Slots {
    #[inline]
    fn new() -> Self {
        Slots {
            inline: [const { Slot(MaybeUninit::uninit()) }; INLINE],
            more: None,
            _on_its_thread: PhantomData,
        }
    }

    /// Keeps `saved` at `depth`, for [`take`](Self::take).
    #[inline]
    fn put<T>(&mut self, depth: usize, saved: T) {
        if mem::size_of::<T>() == 0 {
            // Nothing to keep: `take` makes it again from no bytes.
            mem::forget(saved);
        } else {
            self.slot(depth).put(saved);
        }
    }

    /// # Safety
    /// What [`put`](Self::put) kept at `depth` was a `T`, not yet taken.
    #[inline]
    unsafe fn take<T>(&mut self, depth: usize) -> T {
        if mem::size_of::<T>() == 0 {
            // SAFETY: a zero-sized value is read from any aligned pointer; the one `put`
            // forgot is taken back, once (the caller's).
            unsafe { NonNull::<T>::dangling().as_ptr().read() }
        } else {
            // SAFETY: the caller's.
            unsafe { self.slot(depth).take() }
        }
    }

    #[inline]
    fn slot(&mut self, depth: usize) -> &mut Slot {
        match depth - 1 {
            index @ 0..INLINE => &mut self.inline[index],
            _ => self.more().slot(depth - INLINE),
        }
    }

    #[cold]
    fn more(&mut self) -> &mut Slots {
        self.more.get_or_insert_with(|| Box::new(Slots::new()))
    }
}

/// What one carrier's install gave back: the value itself when it fits in [`Space`], else
/// boxed.
struct Slot(Space);

impl Slot {
    const fn fits<T>() -> bool {
        mem::size_of::<T>() <= mem::size_of::<Space>()
            && mem::align_of::<T>() <= mem::align_of::<Space>()
    }

    #[inline]
    fn put<T>(&mut self, saved: T) {
        if Self::fits::<T>() {
            // SAFETY: `Space` is large and aligned enough for `T` (checked above).
            unsafe { self.0.as_mut_ptr().cast::<T>().write(saved) }
        } else {
            // SAFETY: a box is one word.
            unsafe { self.0.as_mut_ptr().cast::<Box<T>>().write(Box::new(saved)) }
        }
    }

    /// # Safety
    /// The slot holds what [`put`](Self::put) wrote with the same `T`, not yet taken.
    #[inline]
    unsafe fn take<T>(&mut self) -> T {
        if Self::fits::<T>() {
            // SAFETY: the caller's.
            unsafe { self.0.as_ptr().cast::<T>().read() }
        } else {
            // SAFETY: the caller's.
            *unsafe { self.0.as_ptr().cast::<Box<T>>().read() }
        }
    }
}

/// Runs `f` with `list` installed, then restores the thread's own state, panics included.
///
/// # Panics
/// When a carrier's capture or install panicked (see [`carrier::install_catching`]): the ones
/// installed before it are restored first.
#[inline]
pub(crate) fn enter<R>(list: &dyn Captured, f: impl FnOnce() -> R) -> R {
    let mut slots = Slots::new();
    list.install(&mut slots);
    let restore_if_unwinding = RestoreListIfUnwinding {
        list,
        slots: &mut slots,
    };
    let output = f();
    mem::forget(restore_if_unwinding);
    list.restore(&mut slots);
    output
}

/// Restores an installed list when the work run in it panics. Dropped only then, it catches
/// a carrier's second panic where the work's own goes on, and the restore after work that
/// returned stays a plain call.
struct RestoreListIfUnwinding<'a> {
    list: &'a dyn Captured,
    slots: &'a mut Slots,
}

impl Drop for RestoreListIfUnwinding<'_> {
    // Inlined, so that the guard stays in registers: out of line, its address is taken and the
    // path after a return pays four more instructions a poll to store it.
    #[inline(always)]
    fn drop(&mut self) {
        self.list.restore_unwinding(self.slots);
    }
}

/// A list of carriers' state installed until dropped, for a guard that cannot hold a closure's
/// stack: [`Context::attach`](crate::Context::attach), and a runtime's poll hooks.
pub(crate) struct Attached {
    list: Arc<dyn Captured>,
    slots: Slots,
}

impl Attached {
    /// Installs `list`.
    ///
    /// # Panics
    /// As [`enter`].
    pub(crate) fn new(list: Arc<dyn Captured>) -> Self {
        let mut slots = Slots::new();
        list.install(&mut slots);
        Attached { list, slots }
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        // A guard held across a panic is dropped while its thread unwinds, where a carrier's
        // second panic would abort the process.
        if std::thread::panicking() {
            self.list.restore_unwinding(&mut self.slots);
        } else {
            self.list.restore(&mut self.slots);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::panic::{self, AssertUnwindSafe};

    use super::*;

    thread_local! {
        static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
        /// Each numbered carrier's thread-local value, as a framework would keep it.
        static VALUES: RefCell<[u32; 8]> = const { RefCell::new([0; 8]) };
        static TOKENS_DROPPED: Cell<usize> = const { Cell::new(0) };
    }

    fn log(entry: String) {
        LOG.with(|log| log.borrow_mut().push(entry));
    }

    fn take_log() -> Vec<String> {
        LOG.with(|log| log.take())
    }

    /// Carries `VALUES[n]`; saves the value it replaced.
    struct Numbered(usize);

    impl Carrier for Numbered {
        type Captured = u32;
        type Saved = u32;
        const NAME: &'static str = "numbered";
        const CATCH_PANICS: bool = false;

        fn capture(&self) -> u32 {
            VALUES.with(|values| values.borrow()[self.0])
        }
        fn install(&self, captured: &u32) -> u32 {
            log(format!("install {}", self.0));
            VALUES.with(|values| std::mem::replace(&mut values.borrow_mut()[self.0], *captured))
        }
        fn restore(&self, _: &u32, saved: u32) {
            log(format!("restore {}", self.0));
            VALUES.with(|values| values.borrow_mut()[self.0] = saved);
        }
    }

    /// A list of `Numbered` carriers, 0 on top, each captured with `value`.
    fn numbered_list(carriers: &'static [Numbered], value: u32) -> Arc<dyn Captured> {
        VALUES.with(|values| *values.borrow_mut() = [value; 8]);
        let list = carriers
            .iter()
            .rev()
            .fold(None, |below, carrier| capture(carrier, below))
            .expect("every carrier has state");
        VALUES.with(|values| *values.borrow_mut() = [0; 8]);
        list
    }

    fn values() -> [u32; 8] {
        VALUES.with(|values| *values.borrow())
    }

    static SIX: [Numbered; 6] = [
        Numbered(0),
        Numbered(1),
        Numbered(2),
        Numbered(3),
        Numbered(4),
        Numbered(5),
    ];

    #[test]
    fn more_carriers_than_fit_in_place_are_each_installed_and_restored_in_reverse() {
        let list = numbered_list(&SIX, 9);
        let seen = enter(&*list, values);
        assert_eq!(seen, [9, 9, 9, 9, 9, 9, 0, 0]);
        assert_eq!(values(), [0; 8]);
        let installs = (0..6).map(|n| format!("install {n}"));
        let restores = (0..6).rev().map(|n| format!("restore {n}"));
        assert_eq!(take_log(), installs.chain(restores).collect::<Vec<_>>());

        let attached = Attached::new(list);
        assert_eq!(values(), [9, 9, 9, 9, 9, 9, 0, 0]);
        drop(attached);
        assert_eq!(values(), [0; 8]);
        take_log();
    }

    /// Saves more than a slot holds in place.
    struct Wide;

    impl Carrier for Wide {
        type Captured = [u64; 6];
        type Saved = [u64; 6];
        const NAME: &'static str = "wide";

        fn capture(&self) -> [u64; 6] {
            [1, 2, 3, 4, 5, 6]
        }
        fn install(&self, captured: &[u64; 6]) -> [u64; 6] {
            captured.map(|word| word * 10)
        }
        fn restore(&self, _: &[u64; 6], saved: [u64; 6]) {
            log(format!("{saved:?}"));
        }
    }

    #[test]
    fn a_saved_state_larger_than_a_slot_is_given_back_whole() {
        let list = capture(&Wide, None).expect("the wide carrier has state");
        enter(&*list, || {});
        assert_eq!(take_log(), ["[10, 20, 30, 40, 50, 60]"]);
    }

    /// Saves a zero-sized token that counts its drops.
    struct Tokened;

    struct Token;

    impl Drop for Token {
        fn drop(&mut self) {
            TOKENS_DROPPED.with(|dropped| dropped.set(dropped.get() + 1));
        }
    }

    impl Carrier for Tokened {
        type Captured = ();
        type Saved = Token;
        const NAME: &'static str = "tokened";
        const CATCH_PANICS: bool = false;

        fn capture(&self) {}
        fn install(&self, (): &()) -> Token {
            Token
        }
        fn restore(&self, (): &(), token: Token) {
            assert_eq!(
                TOKENS_DROPPED.with(Cell::get),
                0,
                "dropped before its restore"
            );
            drop(token);
        }
    }

    #[test]
    fn a_zero_sized_saved_state_is_dropped_once_by_its_restore() {
        let list = capture(&Tokened, None).expect("the carrier has state");
        enter(&*list, || {
            assert_eq!(TOKENS_DROPPED.with(Cell::get), 0, "dropped by the install");
        });
        assert_eq!(TOKENS_DROPPED.with(Cell::get), 1);
    }

    /// Panics in its install.
    struct Panicking;

    impl Carrier for Panicking {
        type Captured = ();
        type Saved = ();
        const NAME: &'static str = "panicking";

        fn capture(&self) {}
        fn install(&self, (): &()) {
            panic!("no install today");
        }
        fn restore(&self, (): &(), (): ()) {
            unreachable!("never installed");
        }
    }

    static ABOVE: [Numbered; 2] = [Numbered(0), Numbered(1)];

    #[test]
    fn a_carrier_panicking_in_its_install_leaves_the_ones_above_it_restored() {
        let below = capture(&Panicking, None);
        VALUES.with(|values| *values.borrow_mut() = [5; 8]);
        let list = ABOVE
            .iter()
            .rev()
            .fold(below, |below, carrier| capture(carrier, below))
            .expect("every carrier has state");
        VALUES.with(|values| *values.borrow_mut() = [0; 8]);

        let panic = panic::catch_unwind(AssertUnwindSafe(|| enter(&*list, || unreachable!())))
            .expect_err("the install panics");
        let message = panic.downcast_ref::<String>().expect("a message");
        assert!(message.contains("carrier `panicking` panicked while installing: no install today"));
        assert_eq!(values(), [0; 8]);
        assert_eq!(
            take_log(),
            ["install 0", "install 1", "restore 1", "restore 0"]
        );
    }
}

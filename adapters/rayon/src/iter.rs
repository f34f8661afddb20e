//! [`ParallelIteratorExt`]: parallel iterators whose later stages run in a given context.
//!
//! The context travels inside the consumer that rayon splits across its workers, and is
//! installed around each piece of work a worker does with it: turning a split-off consumer into
//! a folder, folding a chunk of items, completing the fold, and reducing two results. A chunk of
//! a million items therefore costs one install, not a million.

use ::rayon::iter::plumbing::{Consumer, Folder, Reducer, UnindexedConsumer};
use ::rayon::iter::ParallelIterator;

use ctxflow_core::Context;

/// Carries a context into a parallel iterator: implemented for every [`ParallelIterator`].
///
/// ```
/// use ctxflow::rayon::ParallelIteratorExt;
/// use ctxflow::ContextVar;
/// use rayon::prelude::*;
///
/// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
/// let _token = REQUEST_ID.set("req-123".into());
///
/// let orders = vec![3, 1, 2];
/// let labels: Vec<String> = orders
///     .par_iter()
///     .with_current_context()
///     .map(|order| format!("order {order} of {}", REQUEST_ID.get().unwrap()))
///     .collect();
/// assert_eq!(labels, ["order 3 of req-123", "order 1 of req-123", "order 2 of req-123"]);
/// ```
pub trait ParallelIteratorExt: ParallelIterator {
    /// Runs every closure of the stages after this one (`map`, `filter`, `for_each`, `fold`,
    /// `reduce`, ...) in a snapshot of the context current here, on whichever worker thread
    /// they run. The snapshot is what a spawn here would carry: the flowing variables, none
    /// inside [`suppress_flow`](ctxflow_core::suppress_flow).
    ///
    /// Put it right after the source (`par_iter()`, `into_par_iter()`, ...), or after the
    /// index-based adaptors (`enumerate`, `zip`, `rev`, `skip`, ...) if you use them: the
    /// result is not an [`IndexedParallelIterator`](rayon::iter::IndexedParallelIterator),
    /// because rayon drives index-based adaptors in a way no consumer wrapper can reach.
    /// `collect` into a `Vec` stays as fast as on the indexed source.
    ///
    /// The snapshot is installed once per chunk of items that rayon hands to a worker, so the
    /// items of one chunk share it: an item's closure that sets a variable should undo the
    /// `set` (or use [`sync_scope`](ctxflow_core::ContextVar::sync_scope)) to keep it from the items
    /// after it. Nothing of it outlives the chunk.
    ///
    /// ```
    /// use ctxflow::rayon::ParallelIteratorExt;
    /// use ctxflow::ContextVar;
    /// use rayon::prelude::*;
    ///
    /// static TENANT: ContextVar<&'static str> = ContextVar::new("tenant");
    /// let _token = TENANT.set("acme");
    ///
    /// let acme_items = (0..10_000)
    ///     .into_par_iter()
    ///     .enumerate()
    ///     .with_current_context()
    ///     .filter(|_| TENANT.get() == Some("acme"))
    ///     .count();
    /// assert_eq!(acme_items, 10_000);
    /// ```
    fn with_current_context(self) -> ContextIter<Self> {
        ContextIter {
            base: self,
            context: Context::inheritable(),
        }
    }

    /// Runs every closure of the stages after this one in exactly `context`, as
    /// [`with_current_context`](Self::with_current_context) does with the current one.
    ///
    /// ```
    /// use ctxflow::rayon::ParallelIteratorExt;
    /// use ctxflow::{Context, ContextVar};
    /// use rayon::prelude::*;
    ///
    /// static BATCH: ContextVar<u32> = ContextVar::new("batch");
    /// let batch_7 = Context::empty().with_value(&BATCH, 7);
    ///
    /// let total: u32 = (0..4)
    ///     .into_par_iter()
    ///     .with_context(batch_7)
    ///     .map(|_| BATCH.get().unwrap())
    ///     .sum();
    /// assert_eq!(total, 28);
    /// ```
    fn with_context(self, context: Context) -> ContextIter<Self> {
        ContextIter {
            base: self,
            context,
        }
    }
}

impl<I: ParallelIterator> ParallelIteratorExt for I {}

/// A parallel iterator whose later stages run in a context; made by
/// [`ParallelIteratorExt::with_current_context`] and [`ParallelIteratorExt::with_context`].
///
/// ```
/// use ctxflow::rayon::{ContextIter, ParallelIteratorExt};
/// use ctxflow::ContextVar;
/// use rayon::prelude::*;
///
/// static REQUEST_ID: ContextVar<u64> = ContextVar::new("request_id");
/// let _token = REQUEST_ID.set(9);
///
/// let items: ContextIter<_> = (0..3u64).into_par_iter().with_current_context();
/// assert_eq!(items.map(|item| item + REQUEST_ID.get().unwrap()).sum::<u64>(), 30);
/// ```
#[derive(Clone, Debug)]
#[must_use = "parallel iterators are lazy and do nothing unless consumed"]
pub struct ContextIter<I> {
    base: I,
    context: Context,
}

impl<I: ParallelIterator> ParallelIterator for ContextIter<I> {
    type Item = I::Item;

    fn drive_unindexed<C>(self, consumer: C) -> C::Result
    where
        C: UnindexedConsumer<Self::Item>,
    {
        let ContextIter { base, context } = self;
        // The driving thread waits in rayon's joins, and runs other queued jobs meanwhile: in
        // an empty context, as the consumer installs this one around its own work.
        crate::while_waiting_in_empty_context(|| {
            base.drive_unindexed(ContextConsumer {
                base: consumer,
                context: &context,
            })
        })
    }

    fn opt_len(&self) -> Option<usize> {
        // Exact whenever the base's is: the consumer passes every item through, one for one.
        self.base.opt_len()
    }
}

/// A consumer that runs its base's work inside `context`. The context is borrowed, so that
/// splitting the consumer copies a pointer and touches no reference count.
struct ContextConsumer<'c, C> {
    base: C,
    context: &'c Context,
}

impl<'c, T, C: Consumer<T>> Consumer<T> for ContextConsumer<'c, C> {
    type Folder = ContextFolder<'c, C::Folder>;
    type Reducer = ContextReducer<'c, C::Reducer>;
    type Result = C::Result;

    fn split_at(self, index: usize) -> (Self, Self, Self::Reducer) {
        let context = self.context;
        let (left, right, reducer) = self.base.split_at(index);
        (
            ContextConsumer {
                base: left,
                context,
            },
            ContextConsumer {
                base: right,
                context,
            },
            ContextReducer {
                base: reducer,
                context,
            },
        )
    }

    fn into_folder(self) -> Self::Folder {
        // `fold` and `reduce` call the user's `identity` here.
        let context = self.context;
        ContextFolder {
            base: context.run(|| self.base.into_folder()),
            context,
        }
    }

    fn full(&self) -> bool {
        self.base.full()
    }
}

impl<T, C: UnindexedConsumer<T>> UnindexedConsumer<T> for ContextConsumer<'_, C> {
    fn split_off_left(&self) -> Self {
        ContextConsumer {
            base: self.base.split_off_left(),
            context: self.context,
        }
    }

    fn to_reducer(&self) -> Self::Reducer {
        ContextReducer {
            base: self.base.to_reducer(),
            context: self.context,
        }
    }
}

struct ContextFolder<'c, F> {
    base: F,
    context: &'c Context,
}

impl<T, F: Folder<T>> Folder<T> for ContextFolder<'_, F> {
    type Result = F::Result;

    fn consume(self, item: T) -> Self {
        // Reached item by item only when a stage before this adaptor (`filter`, say) feeds
        // items one at a time; hence the advice to put the adaptor right after the source.
        let context = self.context;
        ContextFolder {
            base: context.run(|| self.base.consume(item)),
            context,
        }
    }

    fn consume_iter<I>(self, iter: I) -> Self
    where
        I: IntoIterator<Item = T>,
    {
        // The path rayon's producers take: one install for a whole chunk.
        let context = self.context;
        ContextFolder {
            base: context.run(|| self.base.consume_iter(iter)),
            context,
        }
    }

    fn complete(self) -> Self::Result {
        self.context.run(|| self.base.complete())
    }

    fn full(&self) -> bool {
        self.base.full()
    }
}

struct ContextReducer<'c, R> {
    base: R,
    context: &'c Context,
}

impl<T, R: Reducer<T>> Reducer<T> for ContextReducer<'_, R> {
    fn reduce(self, left: T, right: T) -> T {
        // `reduce` and `fold().reduce()` call the user's closure here.
        self.context.run(|| self.base.reduce(left, right))
    }
}

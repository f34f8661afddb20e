//! [`Isolated`]: hyper's executor for tasks that outlive the request that made hyper spawn them.

use std::future::Future;

use ctxflow_core::{Context, Spawner};
use hyper::rt::Executor;

/// hyper's executor for a client's connection pool: every task it spawns starts in one context
/// given up front (empty unless [`with_context`](Self::with_context) says otherwise), never in
/// the context of the request that happened to make hyper spawn it.
///
/// A client spawns a connection's task while it sends the first request on that connection,
/// and the task lives as long as the connection, which a pool (hyper-util's legacy `Client`)
/// reuses for later requests. Spawned through a plain spawner, the task would keep the first
/// request's context: the bodies of later requests, streamed by that task, would be polled and
/// logged under the first request's id and span, and its values, a span included, would stay
/// alive until the connection closes. A server's tasks (one connection, or one HTTP/2 stream,
/// each) are the work of the code that spawns them: give a server the plain spawner.
///
/// ```
/// use ctxflow::hyper::Isolated;
/// use ctxflow::tokio::TokioSpawner;
/// use http_body_util::Full;
/// use hyper::body::Bytes;
/// use hyper_util::client::legacy::Client;
///
/// # let runtime = tokio::runtime::Runtime::new().unwrap();
/// # let _entered = runtime.enter();
/// let client = Client::builder(Isolated::new(TokioSpawner::current()))
///     .build_http::<Full<Bytes>>();
/// # drop(client);
/// ```
///
/// Its tasks are not given the caller's context by a runtime's own spawn hooks either
/// ([`ContextHooks`](https://docs.rs/ctxflow/latest/ctxflow/tokio/trait.ContextHooks.html)):
/// they are spawned inside [`suppress_flow`](ctxflow_core::suppress_flow).
#[derive(Clone, Debug)]
pub struct Isolated<S> {
    spawner: S,
    context: Context,
}

impl<S: Spawner> Isolated<S> {
    /// Spawns every task on `spawner`, in an empty context.
    pub fn new(spawner: S) -> Self {
        Self::with_context(spawner, Context::empty())
    }

    /// Spawns every task on `spawner`, in `context`: what the application's own tasks all
    /// share (a service name, a region), taken where the client is built.
    ///
    /// ```
    /// use ctxflow::hyper::Isolated;
    /// use ctxflow::{Context, DefaultSpawner};
    ///
    /// let executor = Isolated::with_context(DefaultSpawner, Context::current());
    /// # drop(executor);
    /// ```
    pub fn with_context(spawner: S, context: Context) -> Self {
        Isolated { spawner, context }
    }
}

impl<S, Fut> Executor<Fut> for Isolated<S>
where
    S: Spawner,
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    fn execute(&self, future: Fut) {
        ctxflow_core::suppress_flow(|| self.spawner.spawn_in(self.context.clone(), future))
            .detach();
    }
}

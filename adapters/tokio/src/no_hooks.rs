//! Without `--cfg tokio_unstable` tokio has no task hooks: [`ContextHooks`] exists so that a
//! call to it fails to compile with a message naming the missing flag, instead of an unresolved
//! import or, worse, a silent no-op.

use ::tokio::runtime::Builder;

/// Stands for the `tokio_unstable` configuration that ctxflow's runtime hooks need; nothing
/// implements it in a build without that flag.
#[diagnostic::on_unimplemented(
    message = "ctxflow's `carry_context` needs tokio's task hooks: build with RUSTFLAGS=\"--cfg tokio_unstable\"",
    label = "tokio's task hooks exist only with `--cfg tokio_unstable`",
    note = "without the flag, spawn through ctxflow (`ctxflow::spawn`, `TokioSpawner`) or wrap futures with `.in_current_context()`"
)]
pub trait TokioUnstable {}

/// Makes context follow every task of a tokio runtime, whoever spawns it; implemented for
/// tokio's [`Builder`], and usable only in a build with `RUSTFLAGS="--cfg tokio_unstable"`:
/// tokio's task hooks need it. In this build, calling it does not compile:
///
/// ```compile_fail,E0599
/// use ctxflow::tokio::ContextHooks;
/// let runtime = tokio::runtime::Builder::new_multi_thread().carry_context().build();
/// ```
pub trait ContextHooks {
    /// Installs ctxflow's task hooks; see the documentation built with `--cfg tokio_unstable`.
    fn carry_context(&mut self) -> &mut Self;
}

/// Implemented for every builder that is [`TokioUnstable`], which none is in this build: the
/// call fails with that trait's message.
impl<B: TokioUnstable> ContextHooks for B {
    fn carry_context(&mut self) -> &mut Self {
        self
    }
}

/// Keeps tokio's builder named here, where it would be with the flag.
const _: Option<&Builder> = None;

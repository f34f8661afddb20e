//! `ctxflow::time` where one runtime matters: tokio's paused test clock, a tokio runtime without
//! timers, compio's timer and its thread, no runtime at all, and bad input.

use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use ctxflow::time::{interval, now, sleep, sleep_until, timeout};

const A_DAY: Duration = Duration::from_secs(86_400);

fn panic_message(run: impl FnOnce()) -> String {
    let payload = panic::catch_unwind(AssertUnwindSafe(run)).unwrap_err();
    payload
        .downcast_ref::<&str>()
        .map(|message| message.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

// With the clock paused, tokio jumps it to the next tokio timer whenever the runtime is idle: a
// ctxflow timer on tokio's timer ends at once, while one on any other timer would leave tokio's
// own two-day guard to fire first and fail the test.
#[tokio::test(start_paused = true)]
async fn tokios_paused_clock_drives_ctxflow_timers_even_with_other_runtimes_enabled() {
    async fn guard<F: std::future::Future>(what: F) -> F::Output {
        tokio::time::timeout(2 * A_DAY, what)
            .await
            .expect("ctxflow's timer follows tokio's paused clock")
    }
    let start = tokio::time::Instant::now();
    guard(sleep(A_DAY)).await;
    assert!(start.elapsed() >= A_DAY);

    let stuck = guard(timeout(A_DAY, std::future::pending::<()>())).await;
    assert!(stuck.is_err());

    let mut daily = interval(A_DAY);
    daily.tick().await;
    let second = guard(daily.tick()).await;
    assert!(tokio::time::Instant::now().into_std() >= second);
}

#[tokio::test(start_paused = true)]
async fn tokio_advance_moves_a_ctxflow_sleep_past_its_deadline() {
    let mut nap = Box::pin(sleep(Duration::from_secs(60)));
    assert!(futures::poll!(nap.as_mut()).is_pending());
    tokio::time::advance(Duration::from_secs(61)).await;
    assert!(futures::poll!(nap.as_mut()).is_ready());
}

// `std::time::Instant::now()` does not move with `advance`: a deadline built from it would be an
// hour in the past here, and the sleep would end at once.
#[tokio::test(start_paused = true)]
async fn deadlines_from_ctxflows_now_follow_tokios_advanced_clock() {
    tokio::time::advance(Duration::from_secs(3600)).await;
    let start = tokio::time::Instant::now();
    assert_eq!(now(), start.into_std());

    let deadline = now() + Duration::from_secs(60);
    let nap = sleep_until(deadline);
    assert_eq!(nap.deadline(), deadline);
    nap.await;
    assert_eq!(start.elapsed(), Duration::from_secs(60));

    let mut minutely = interval(Duration::from_secs(60));
    assert_eq!(minutely.tick().await, now());
    assert_eq!(minutely.tick().await, deadline + Duration::from_secs(60));
}

#[test]
fn inside_a_tokio_runtime_without_timers_tokios_panic_says_to_enable_them() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let message = panic_message(|| runtime.block_on(sleep(Duration::from_millis(1))));
    assert!(message.contains("enable_time"), "{message}");
}

#[test]
fn a_zero_period_interval_panics_naming_the_cause() {
    let message = panic_message(|| drop(interval(Duration::ZERO)));
    assert_eq!(
        message,
        "ctxflow::time::interval: the period must be longer than zero"
    );
}

/// Only a build with tokio and neither smol nor async-std has no timer outside a tokio runtime;
/// run it with `cargo test --no-default-features --features tokio --test time`.
#[cfg(not(any(feature = "smol", feature = "async-std")))]
#[test]
fn a_timer_outside_any_runtime_panics_saying_what_to_do() {
    // Only the runtimes of the build are named.
    let compio = if cfg!(feature = "compio") {
        " or a compio runtime"
    } else {
        ""
    };
    let expected = format!(
        "ctxflow::time: no runtime drives timers on this thread: await the timer inside a tokio \
         runtime (built with `enable_time()` or `enable_all()`){compio}, or enable ctxflow's \
         `smol` feature, whose timer runs under any executor"
    );
    let slept = panic_message(|| futures::executor::block_on(sleep(Duration::from_millis(1))));
    assert_eq!(slept, expected);
    // Even a future ready at once: the mistake shows on the first run, not on the first delay.
    let timed = panic_message(|| {
        let _ = futures::executor::block_on(timeout(A_DAY, async {}));
    });
    assert_eq!(timed, expected);
}

#[cfg(any(feature = "smol", feature = "async-std"))]
#[test]
fn outside_any_runtime_timers_run_on_async_io() {
    futures::executor::block_on(async {
        sleep(Duration::from_millis(1)).await;
        let stuck = timeout(Duration::from_millis(1), std::future::pending::<()>()).await;
        assert!(stuck.is_err());
    });
}

/// ctxflow's own runtimes have timers: `ctxflow::block_on` outside any runtime, with tokio the
/// only runtime, builds one.
#[test]
fn ctxflow_block_on_runs_timers() {
    ctxflow::block_on(async {
        sleep(Duration::from_millis(1)).await;
        ctxflow::spawn(sleep(Duration::from_millis(1)))
            .await
            .unwrap();
    });
}

#[test]
fn a_sleep_made_before_a_paused_tokio_runtime_starts_follows_its_clock() {
    let nap = sleep(A_DAY);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        tokio::time::timeout(2 * A_DAY, nap)
            .await
            .expect("the runtime that polls the sleep first drives it");
    });
}

/// A future that keeps using up tokio's cooperative budget (a busy channel) still times out:
/// the deadline is polled outside the budget, as tokio's own `timeout` polls its delay.
#[test]
fn a_timeout_fires_on_a_future_that_uses_up_tokios_budget() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let busy = async {
            loop {
                tokio::task::consume_budget().await;
            }
        };
        // The outer timeout only turns a hang into a failure.
        let timed = tokio::time::timeout(
            Duration::from_secs(60),
            timeout(Duration::from_millis(1), busy),
        )
        .await;
        assert!(matches!(timed, Ok(Err(_))), "ctxflow's timeout never fired");
    });
}

#[cfg(feature = "compio")]
mod on_compio {
    use std::pin::Pin;
    use std::time::Instant;

    use super::*;

    /// Polls `future` once, as the runtime that drives it would.
    fn poll_once<F: std::future::Future>(future: Pin<&mut F>) -> bool {
        let waker = futures::task::noop_waker();
        future
            .poll(&mut std::task::Context::from_waker(&waker))
            .is_ready()
    }

    fn next_compio_deadline() -> Option<Duration> {
        compio::runtime::Runtime::with_current(|runtime| runtime.current_timeout())
    }

    // async-io's timer would run too (smol's feature is on in a full build), but from a thread of
    // its own: inside compio, its timer wakes the task on the runtime's thread instead.
    #[test]
    fn inside_a_compio_runtime_ctxflow_timers_are_compios() {
        let runtime = compio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            assert_eq!(next_compio_deadline(), None);
            let mut nap = Box::pin(sleep(A_DAY));
            assert!(!poll_once(nap.as_mut()));
            let armed = next_compio_deadline().expect("compio's timer holds the sleep");
            assert!(armed > A_DAY / 2);
            drop(nap);
            assert_eq!(next_compio_deadline(), None, "released with the sleep");

            let start = Instant::now();
            sleep(Duration::from_millis(5)).await;
            assert!(start.elapsed() >= Duration::from_millis(5));
            let stuck = timeout(Duration::from_millis(1), std::future::pending::<()>()).await;
            assert!(stuck.is_err());
        });
    }

    /// A compio task never leaves its thread; a sleep polled there by hand and then sent away
    /// is the one way to get its timer polled elsewhere.
    #[test]
    fn a_sleep_moved_off_its_compio_thread_panics_when_polled_naming_the_cause() {
        let runtime = compio::runtime::Runtime::new().unwrap();
        let mut nap = Box::pin(sleep(A_DAY));
        runtime.block_on(async { assert!(!poll_once(nap.as_mut())) });
        let message = ctxflow::thread::spawn(move || {
            let message = panic_message(|| {
                let _ = poll_once(nap.as_mut());
            });
            // Dropped here, off its thread: left to compio rather than a panic in a destructor.
            drop(nap);
            message
        })
        .join()
        .expect("dropping the sleep off its thread does not panic");
        assert_eq!(
            message,
            "ctxflow::time: a timer started on a compio runtime's thread was polled on another \
             thread; compio's timers stay on the thread that started them"
        );
    }
}

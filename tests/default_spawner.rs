//! Which runtime `ctxflow::block_on` and `ctxflow::spawn` pick when several runtime features are
//! enabled: enabling one more never moves code that worked without it to another runtime.

#[cfg(all(feature = "tokio", feature = "smol"))]
#[test]
fn block_on_outside_any_runtime_stays_on_tokio_when_smol_is_enabled_too() {
    let on_tokio = ctxflow::block_on(async {
        // tokio's timer panics unless a tokio runtime drives this future.
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        tokio::runtime::Handle::try_current().is_ok()
    });
    assert!(on_tokio);
}

#[cfg(all(feature = "tokio", feature = "smol"))]
#[test]
fn spawning_inside_a_tokio_runtime_stays_on_it_when_smol_is_enabled_too() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let on_tokio = runtime.block_on(async {
        ctxflow::spawn(async { tokio::runtime::Handle::try_current().is_ok() })
            .await
            .unwrap()
    });
    assert!(on_tokio);
}

#[cfg(all(feature = "async-std", feature = "smol"))]
#[test]
fn spawning_outside_any_runtime_stays_on_async_std_when_smol_is_enabled_too() {
    let handle = ctxflow::spawn(async { async_std::task::try_current().is_some() });
    assert!(futures::executor::block_on(handle).unwrap());
}

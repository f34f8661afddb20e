//! Faults: panics, aborts, shutdowns, dropped handles and exiting threads never leave a value
//! behind, never leave a context on a worker thread, and never stop the runtime.

mod common;

use std::sync::{Arc, Mutex};

use ctxflow::ContextVar;

static REQUEST_ID: ContextVar<u64> = ContextVar::new("request_id");

/// When dropped, records the request id it sees.
struct ReadsOnDrop(Arc<Mutex<Vec<Option<u64>>>>);

impl Drop for ReadsOnDrop {
    fn drop(&mut self) {
        self.0.lock().unwrap().push(REQUEST_ID.get());
    }
}

static READS_ON_DROP: ContextVar<ReadsOnDrop> = ContextVar::new("reads_on_drop");

mod thread_exit {
    use super::*;

    #[test]
    fn a_value_dropped_when_its_thread_exits_can_read_the_context_and_sees_it_empty() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let probe = ReadsOnDrop(seen.clone());
        std::thread::spawn(move || {
            let _id = REQUEST_ID.set(7);
            let _probe = READS_ON_DROP.set(probe);
            // Both stay in the thread's context until its storage is destroyed.
        })
        .join()
        .unwrap();
        assert_eq!(*seen.lock().unwrap(), [None]);
    }

    #[test]
    fn a_value_dropped_when_its_thread_exits_can_set_a_variable_that_goes_nowhere() {
        struct SetsOnDrop(Arc<Mutex<Option<Option<u64>>>>);
        impl Drop for SetsOnDrop {
            fn drop(&mut self) {
                let _token = REQUEST_ID.set(9);
                *self.0.lock().unwrap() = Some(REQUEST_ID.get());
            }
        }
        static SETS_ON_DROP: ContextVar<SetsOnDrop> = ContextVar::new("sets_on_drop");
        let seen = Arc::new(Mutex::new(None));
        let probe = SetsOnDrop(seen.clone());
        std::thread::spawn(move || {
            let _probe = SETS_ON_DROP.set(probe);
        })
        .join()
        .unwrap();
        assert_eq!(*seen.lock().unwrap(), Some(None));
    }
}

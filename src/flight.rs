//! Single flight: a call that runs once, in a task of its own, however many
//! requests wait for it (key-set fetches, introspection calls).
//!
//! A [`Flight`] is the waiting end of one call. The call runs in a task the
//! requests do not own: a request dropped while it waits (a client gone, a
//! deadline) only stops its own wait; the call still finishes, and what it
//! stores is there for the next request. [`Flights`] keys flights, so that
//! requests for the same thing join the call under way instead of starting
//! another.

use std::future::Future;
#[cfg(feature = "introspection")]
use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Mutex, PoisonError},
};

use tokio::sync::watch;

/// The waiting end of one call running in a task of its own. Cheap to
/// clone; every clone gets the call's outcome.
pub(crate) struct Flight<T>(watch::Receiver<Option<T>>);

impl<T> Clone for Flight<T> {
    fn clone(&self) -> Self {
        Flight(self.0.clone())
    }
}

impl<T: Clone + Send + Sync + 'static> Flight<T> {
    /// Starts `call` in a task of its own on `runtime`. Dropping every
    /// [`Flight`] never aborts it.
    pub(crate) fn spawn(
        runtime: &tokio::runtime::Handle,
        call: impl Future<Output = T> + Send + 'static,
    ) -> Self {
        let (tx, rx) = watch::channel(None);
        runtime.spawn(async move {
            let outcome = call.await;
            let _ = tx.send(Some(outcome));
        });
        Flight(rx)
    }

    /// Whether the call may still answer: false once it answered, or once
    /// its task was dropped without answering (its runtime shut down), when
    /// waiting for it is pointless and another should start.
    pub(crate) fn running(&self) -> bool {
        self.0.has_changed().is_ok()
    }

    /// The call's outcome; `None` if its task was dropped before it had one.
    pub(crate) async fn wait(&mut self) -> Option<T> {
        self.0
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|outcome| outcome.clone())
    }
}

/// What [`Flights::join`] gives: a flight to wait for, or the answer now.
#[cfg(feature = "introspection")]
pub(crate) enum Joined<T> {
    /// Wait for this call.
    Flight(Flight<T>),
    /// Answered without a call.
    Answer(T),
}

/// Flights by key: at most one running call per key.
#[cfg(feature = "introspection")]
pub(crate) struct Flights<K, T> {
    running: Mutex<HashMap<K, Flight<T>>>,
}

#[cfg(feature = "introspection")]
impl<K: Eq + Hash, T: Clone + Send + Sync + 'static> Flights<K, T> {
    pub(crate) fn new() -> Self {
        Flights {
            running: Mutex::new(HashMap::new()),
        }
    }

    /// The flight to wait for about `key`, or an answer at once. Under one
    /// lock: `answered` first (a call that just ended stored its answer
    /// before it [`landed`](Flights::land), so it is seen there), then the
    /// running flight for `key`, else `start` starts one (or answers at
    /// once, for instance when no more calls may start).
    pub(crate) fn join(
        &self,
        key: K,
        answered: impl FnOnce() -> Option<T>,
        start: impl FnOnce() -> Joined<T>,
    ) -> Joined<T> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(outcome) = answered() {
            return Joined::Answer(outcome);
        }
        if let Some(flight) = running.get(&key).filter(|f| f.running()) {
            return Joined::Flight(flight.clone());
        }
        let joined = start();
        if let Joined::Flight(flight) = &joined {
            running.insert(key, flight.clone());
        }
        joined
    }

    /// Ends `key`'s flight: called by its call, once its answer is stored
    /// and before it is sent.
    pub(crate) fn land(&self, key: &K) {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }
}

#[cfg(all(test, feature = "introspection"))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Waiters dropped mid-wait do not abort the call; callers meanwhile
    /// join it instead of starting another.
    #[tokio::test]
    async fn dropped_waiters_never_abort_nor_duplicate_a_call() {
        let flights: Arc<Flights<u8, usize>> = Arc::new(Flights::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let start = |flights: &Arc<Flights<u8, usize>>| {
            let (flights2, calls) = (Arc::clone(flights), Arc::clone(&calls));
            flights.join(
                1,
                || None,
                || {
                    Joined::Flight(Flight::spawn(
                        &tokio::runtime::Handle::current(),
                        async move {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                            flights2.land(&1);
                            n
                        },
                    ))
                },
            )
        };
        let flight = |joined| match joined {
            Joined::Flight(flight) => flight,
            Joined::Answer(_) => panic!("no flight"),
        };
        let mut first = flight(start(&flights));
        let waiter = tokio::spawn(async move { first.wait().await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        waiter.abort();
        let mut second = flight(start(&flights));
        assert_eq!(second.wait().await, Some(1));
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one call");
        assert!(!second.running());
        // Landed: the next join starts a new call.
        assert_eq!(flight(start(&flights)).wait().await, Some(2));
    }

    /// A call whose task is dropped unanswered is not waited for again.
    #[test]
    fn a_flight_dropped_with_its_runtime_is_replaced() {
        let flights: Flights<u8, u8> = Flights::new();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let handle = runtime.handle().clone();
        let Joined::Flight(flight) = flights.join(
            1,
            || None,
            || Joined::Flight(Flight::spawn(&handle, std::future::pending())),
        ) else {
            panic!("no flight")
        };
        drop(runtime);
        assert!(!flight.running());
        let joined = flights.join(1, || None, || Joined::Answer(9));
        assert!(matches!(joined, Joined::Answer(9)), "a new call starts");
    }
}

//! One token request per key: the first caller on a miss starts the request as a task; later
//! callers wait for its result (or its error). The task runs to completion whoever is still
//! waiting, so a cancelled caller strands no one.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::{CacheKey, CachedToken};
use crate::error::Error;

pub(crate) type FlightResult = Result<Arc<CachedToken>, Error>;
type Flights = HashMap<CacheKey, watch::Receiver<Option<FlightResult>>>;

#[derive(Default)]
pub(crate) struct SingleFlight {
    flights: Arc<Mutex<Flights>>,
}

/// How a caller gets its token.
pub(crate) enum Joined {
    /// The cache had it after all (filled while this caller was on its way).
    Cached(Arc<CachedToken>),
    /// Wait on a request in flight.
    Waiting(watch::Receiver<Option<FlightResult>>),
}

impl SingleFlight {
    /// Joins the request in flight for `key`, or starts `fetch` as a task. `recheck` runs under
    /// the same lock the finishing task takes, so a token stored just before cannot be missed.
    /// `fetch` must store its token in the cache before it returns.
    pub(crate) fn join<F>(
        &self,
        key: &CacheKey,
        recheck: impl FnOnce() -> Option<Arc<CachedToken>>,
        fetch: impl FnOnce() -> F,
    ) -> Result<Joined, Error>
    where
        F: Future<Output = FlightResult> + Send + 'static,
    {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::Configuration("confidant's token requests need a Tokio runtime".into())
        })?;
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rx) = flights.get(key) {
            return Ok(Joined::Waiting(rx.clone()));
        }
        if let Some(token) = recheck() {
            return Ok(Joined::Cached(token));
        }
        let (tx, rx) = watch::channel(None);
        flights.insert(key.clone(), rx.clone());
        let all = Arc::clone(&self.flights);
        let key = key.clone();
        let request = fetch();
        runtime.spawn(async move {
            let result = request.await;
            all.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
            let _ = tx.send(Some(result));
        });
        Ok(Joined::Waiting(rx))
    }

    /// Waits for the flight's result.
    pub(crate) async fn wait(mut rx: watch::Receiver<Option<FlightResult>>) -> FlightResult {
        match rx.wait_for(Option::is_some).await {
            Ok(value) => value.clone().unwrap_or_else(|| Err(abandoned())),
            Err(_) => Err(abandoned()),
        }
    }

    /// Whether a request for `key` is in flight.
    pub(crate) fn is_in_flight(&self, key: &CacheKey) -> bool {
        self.flights
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(key)
    }
}

fn abandoned() -> Error {
    Error::Configuration(
        "the token request task ended without a result (runtime shutting down?)".into(),
    )
}

//! Large requests are handled on threads of their own, at a low scheduling
//! priority.
//!
//! Decoding a request of hundreds of kilobytes, or evaluating the large filter
//! it carries, takes milliseconds. On the runtime's threads that time would be
//! taken from every other connection: with the server on one core, a `ping`
//! would wait for the whole decode. Handed to a thread at nice 10, the work
//! runs mostly when nothing else wants the core: the kernel weighs a runtime
//! thread about nine times as much and preempts the large request as soon as
//! one has something to do, so small requests keep the latency they have on an
//! idle server. The large request is not starved: on a core busy with other
//! work it still gets a tenth of it (at nice 19 it would get a sixtieth, and a
//! megabyte request on a loaded machine would take seconds).
//!
//! A connection handles its requests one at a time (its replies keep their
//! order), so its reader waits for the offloaded request to end; no other
//! connection does.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

/// Requests at least this long are handled off the runtime. Smaller ones are
/// decoded in microseconds, less than the hand-over itself costs.
pub(crate) const FROM_BYTES: usize = 16 * 1024;

/// Two threads, so that one long request does not hold up the next large one;
/// more would only split the same spare time of the core further.
const THREADS: usize = 2;

/// The `nice` value of the large-request threads.
#[cfg(target_os = "linux")]
const LOW_PRIORITY: i32 = 10;

fn pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(THREADS)
            .thread_name(|i| format!("tidewire-large-{i}"))
            .start_handler(|_| lower_this_threads_priority())
            .build()
            .map_err(|err| tracing::warn!(%err, "large requests are handled on the runtime"))
            .ok()
    })
    .as_ref()
}

/// On Linux the nice value belongs to the thread, so this leaves the
/// runtime's threads as they are. Elsewhere it would lower the whole process,
/// so the threads keep the normal priority there. A process started at a lower
/// priority already keeps it.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    {
        let thread = Some(rustix::thread::gettid());
        let lowered = match rustix::process::getpriority_process(thread) {
            Ok(nice) if nice >= LOW_PRIORITY => Ok(()),
            _ => rustix::process::setpriority_process(thread, LOW_PRIORITY),
        };
        if let Err(err) = lowered {
            tracing::warn!(%err, "a large-request thread keeps the normal priority");
        }
    }
}

/// Runs `job` on a large-request thread, within the caller's runtime (so the
/// job may spawn tasks and read the runtime's clock), and returns its result.
/// A panic in `job` resumes in the caller, as it would have run there.
pub(crate) async fn run<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> T {
    let Some(pool) = pool() else {
        return job();
    };
    let runtime = tokio::runtime::Handle::current();
    let (done, result) = tokio::sync::oneshot::channel();
    pool.spawn_fifo(move || {
        let _runtime = runtime.enter();
        let _ = done.send(catch_unwind(AssertUnwindSafe(job)));
    });
    match result.await {
        Ok(Ok(value)) => value,
        Ok(Err(panic)) => resume_unwind(panic),
        // The job ends by sending, panic or not; the pool is never dropped.
        Err(_) => unreachable!("a large-request job ended without a result"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_job_runs_on_a_thread_of_the_pool_within_the_runtime() {
        let caller = std::thread::current().id();
        let (thread, in_runtime) = run(|| {
            (
                std::thread::current().id(),
                tokio::runtime::Handle::try_current().is_ok(),
            )
        })
        .await;
        assert_ne!(thread, caller);
        assert!(in_runtime);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "current_thread")]
    async fn the_pool_runs_at_the_low_priority_and_the_caller_keeps_its_own() {
        let priority =
            || rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        let callers = priority();
        assert!(run(priority).await >= LOW_PRIORITY.max(callers));
        assert_eq!(priority(), callers);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_panic_in_a_job_resumes_in_the_caller() {
        let outcome = tokio::spawn(run(|| panic!("boom"))).await;
        assert!(outcome.unwrap_err().is_panic());
        assert_eq!(run(|| 7).await, 7, "the pool survives a panicking job");
    }
}

//! Background threads that never take the window's frames.
//!
//! Inference and thumbnailing run at a lower scheduling priority than the UI thread: when the
//! window has a frame to draw it gets a core at once, and when it doesn't the workers still use
//! every core. (Giving the workers one core fewer would keep a core free too, but would halve a
//! batch's speed on a 2-core laptop even while nobody touches the window.)

/// The nice value of background threads: 0 is normal, 19 the lowest.
pub const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority to [`BACKGROUND_NICE`], never raising it (a
/// process started with `nice -n 19` stays at 19). On Linux nice values belong to threads, so
/// this leaves the rest of the process alone. Elsewhere it does nothing (a process-wide call
/// would slow the UI thread too).
pub fn lower_current_thread_priority() {
    #[cfg(target_os = "linux")]
    {
        // Linux: `setpriority(PRIO_PROCESS, 0, ..)` changes the calling thread only. Failure
        // (a sandbox that forbids it) leaves the thread at normal priority, which is harmless.
        use rustix::process::{getpriority_process, setpriority_process};
        if getpriority_process(None).is_ok_and(|nice| nice < BACKGROUND_NICE) {
            let _ = setpriority_process(None, BACKGROUND_NICE);
        }
    }
}

/// A rayon pool for one background worker: one thread per core, named `{name}-{i}`, each at
/// background priority. Run the worker's jobs inside [`rayon::ThreadPool::install`] so that
/// every parallel loop they start (gemm's, the model kernels', candle's) stays in this pool.
pub fn background_pool(name: &str) -> Result<rayon::ThreadPool, rayon::ThreadPoolBuildError> {
    let name = name.to_owned();
    rayon::ThreadPoolBuilder::new()
        .thread_name(move |i| format!("{name}-{i}"))
        .start_handler(|_| lower_current_thread_priority())
        .build()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn own_nice() -> i32 {
        rustix::process::getpriority_process(None).expect("getpriority")
    }

    #[test]
    fn lowers_only_the_calling_thread() {
        let before = own_nice();
        let in_thread = std::thread::Builder::new()
            .name("lowered".into())
            .spawn(|| {
                lower_current_thread_priority();
                own_nice()
            })
            .expect("spawn")
            .join()
            .expect("thread");
        assert_eq!(in_thread, BACKGROUND_NICE.max(before));
        assert_eq!(
            own_nice(),
            before,
            "the calling thread's priority changed too"
        );
    }

    #[test]
    fn pool_threads_run_at_background_priority_with_names() {
        let before = own_nice();
        let pool = background_pool("test-pool").expect("pool");
        let (nice, name) =
            pool.install(|| (own_nice(), std::thread::current().name().map(str::to_owned)));
        assert_eq!(nice, BACKGROUND_NICE.max(before));
        assert!(name.is_some_and(|n| n.starts_with("test-pool-")));
    }
}

//! [`Task<T>`]: a one-shot job on a named thread. Its answer arrives on a bounded channel that
//! the UI polls each frame; a job that panics, or a thread that dies without answering, is
//! reported as a [`TaskFailed`] instead of leaving its slot busy for ever; and dropping the task
//! joins the thread, so a job that writes files (an EXIF write, an export) is never cut off by
//! closing the window.

use std::sync::mpsc::{Receiver, TryRecvError, sync_channel};
use std::thread::JoinHandle;

use crate::domain::RepaintFn;

/// Why a task gave no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TaskFailed {
    #[error("{label}: the job panicked: {message}")]
    Panicked { label: String, message: String },
    #[error("{label}: the thread ended without an answer")]
    Gone { label: String },
}

/// A one-shot job on a named thread. See the module docs.
pub struct Task<T> {
    pub label: String,
    receiver: Receiver<std::thread::Result<T>>,
    thread: Option<JoinHandle<()>>,
}

impl<T: Send + 'static> Task<T> {
    /// Runs `job` on a thread named `thread_name`; `repaint` is called once it has answered.
    pub fn spawn(
        thread_name: &str,
        label: impl Into<String>,
        repaint: RepaintFn,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> std::io::Result<Self> {
        let (tx, receiver) = sync_channel(1);
        let thread = std::thread::Builder::new()
            .name(thread_name.into())
            .spawn(move || {
                let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                let _ = tx.send(answer);
                repaint();
            })?;
        Ok(Self {
            label: label.into(),
            receiver,
            thread: Some(thread),
        })
    }

    /// The answer once it is there: `Some(Ok(answer))`, or `Some(Err(..))` when the job
    /// panicked or its thread is gone. After `Some` the task is done: drop it.
    pub fn poll(&self) -> Option<Result<T, TaskFailed>> {
        match self.receiver.try_recv() {
            Ok(Ok(answer)) => Some(Ok(answer)),
            Ok(Err(payload)) => Some(Err(TaskFailed::Panicked {
                label: self.label.clone(),
                message: panic_message(payload.as_ref()),
            })),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err(TaskFailed::Gone {
                label: self.label.clone(),
            })),
        }
    }

    /// Waits for the answer (tests and shutdown; never from a frame).
    pub fn wait(mut self) -> Result<T, TaskFailed> {
        let answer = self.receiver.recv();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        match answer {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(payload)) => Err(TaskFailed::Panicked {
                label: self.label.clone(),
                message: panic_message(payload.as_ref()),
            }),
            Err(_) => Err(TaskFailed::Gone {
                label: self.label.clone(),
            }),
        }
    }
}

impl<T> Drop for Task<T> {
    /// Joins the thread: the job runs to its end (a write is finished, not cut off).
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The text of a panic payload (`panic!("..")` gives a `&str` or a `String`).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::no_repaint;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    fn wait_poll<T: Send + 'static>(task: &Task<T>) -> Result<T, TaskFailed> {
        loop {
            if let Some(answer) = task.poll() {
                return answer;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn answers_once() {
        let task = Task::spawn("test-task", "adding", no_repaint(), || 2 + 2).unwrap();
        assert_eq!(wait_poll(&task), Ok(4));
    }

    #[test]
    fn a_panicking_job_is_reported_not_left_busy() {
        let task: Task<u32> = Task::spawn("test-task", "exploding", no_repaint(), || {
            panic!("boom {}", 7)
        })
        .unwrap();
        let answer = wait_poll(&task);
        assert_eq!(
            answer,
            Err(TaskFailed::Panicked {
                label: "exploding".into(),
                message: "boom 7".into()
            })
        );
    }

    #[test]
    fn dropping_the_task_lets_the_job_finish() {
        let finished = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&finished);
        let task = Task::spawn("test-task", "slow", no_repaint(), move || {
            std::thread::sleep(Duration::from_millis(50));
            flag.store(true, Ordering::SeqCst);
        })
        .unwrap();
        drop(task);
        assert!(finished.load(Ordering::SeqCst), "drop joined the thread");
    }
}

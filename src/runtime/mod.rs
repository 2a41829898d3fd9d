//! The runtime layer: the threads that do the app's long work, between the domain modules
//! (`model`, `library`, `export`) below and the app above.
//!
//! - [`task`]: [`Task<T>`](task::Task), a one-shot job on a named thread whose answer (or its
//!   panic, or the thread's death) arrives on a channel, joined on drop;
//! - [`inference`]: the "inference" worker running GeoCLIP (or a fake) behind the `Embedder` trait;
//! - [`library`]: the "library" thread, the only owner of the SQLite connection: the UI and
//!   every job send it commands and get events back.

pub mod inference;
pub mod library;
pub mod task;

//! The browser's thumbnails as textures: asked of the "thumbnails" worker for the photos in
//! sight, kept for at most [`Thumbs::MAX_TEXTURES`] photos (the least recently seen go first), so
//! 10,000 photos never hold 10,000 textures.

use std::collections::HashMap;

use super::collection::Collection;
use crate::library::{ThumbnailEvent, ThumbnailWorker};

/// A thumbnail's state in the browser.
#[derive(Clone, Default)]
pub enum Thumb {
    #[default]
    None,
    Requested,
    Ready(egui::TextureHandle),
    Failed(String),
}

impl std::fmt::Debug for Thumb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Requested => f.write_str("Requested"),
            Self::Ready(t) => write!(f, "Ready({:?})", t.size()),
            Self::Failed(e) => write!(f, "Failed({e:?})"),
        }
    }
}

/// The thumbnail textures by photo index, and the worker that makes them.
pub struct Thumbs {
    worker: Option<ThumbnailWorker>,
    /// Photo index -> thumbnail and the frame it was last in sight.
    slots: HashMap<usize, (Thumb, u64)>,
    in_flight: usize,
}

impl Thumbs {
    pub const MAX_TEXTURES: usize = 600;
    const MAX_IN_FLIGHT: usize = 48;

    pub fn new(worker: Option<ThumbnailWorker>) -> Self {
        Self {
            worker,
            slots: HashMap::new(),
            in_flight: 0,
        }
    }

    pub fn get(&self, index: usize) -> &Thumb {
        const NONE: Thumb = Thumb::None;
        self.slots.get(&index).map_or(&NONE, |(t, _)| t)
    }

    pub fn clear(&mut self) {
        self.slots.clear();
    }

    /// Takes the worker's answers (never blocks); a thumbnail that fails marks the photo.
    pub fn drain(&mut self, ctx: &egui::Context, collection: &mut Collection) {
        let Some(worker) = &self.worker else {
            return;
        };
        let frame = ctx.cumulative_frame_nr();
        for event in worker.events() {
            self.in_flight = self.in_flight.saturating_sub(1);
            match event {
                ThumbnailEvent::Ready(ready) => {
                    if let Some(i) = collection.index_of(&ready.path) {
                        let image = egui::ColorImage::from_rgba_unmultiplied(
                            [ready.w as usize, ready.h as usize],
                            &ready.rgba,
                        );
                        let texture = ctx.load_texture(
                            format!("thumb/{i}"),
                            image,
                            egui::TextureOptions::LINEAR,
                        );
                        self.slots.insert(i, (Thumb::Ready(texture), frame));
                    }
                }
                ThumbnailEvent::Failed { path, error } => {
                    if let Some(i) = collection.index_of(&path) {
                        if let Some(photo) = collection.get_mut(i) {
                            photo.decode_error = Some(error.clone());
                        }
                        self.slots.insert(i, (Thumb::Failed(error), frame));
                    }
                }
            }
        }
    }

    /// Asks for the thumbnails of these photos (the visible ones) and evicts textures that have
    /// not been in sight for a while.
    pub fn want(&mut self, ctx: &egui::Context, collection: &Collection, indices: &[usize]) {
        let frame = ctx.cumulative_frame_nr();
        let Some(worker) = &self.worker else {
            return;
        };
        for &i in indices {
            let Some(photo) = collection.get(i) else {
                continue;
            };
            let slot = self.slots.entry(i).or_insert((Thumb::None, frame));
            slot.1 = frame;
            if matches!(slot.0, Thumb::None)
                && photo.entry.is_ok()
                && self.in_flight < Self::MAX_IN_FLIGHT
                && worker.request(photo.entry.path.clone())
            {
                slot.0 = Thumb::Requested;
                self.in_flight += 1;
            }
        }
        let ready = self
            .slots
            .values()
            .filter(|(t, _)| matches!(t, Thumb::Ready(_)))
            .count();
        if ready > Self::MAX_TEXTURES {
            let mut by_age: Vec<(u64, usize)> = self
                .slots
                .iter()
                .filter(|(_, (t, _))| matches!(t, Thumb::Ready(_)))
                .map(|(&i, &(_, seen))| (seen, i))
                .collect();
            by_age.sort_unstable();
            for &(_, i) in by_age.iter().take(ready - Self::MAX_TEXTURES) {
                self.slots.remove(&i);
            }
        }
    }

    /// How many textures are held (tests, the browser benchmark).
    pub fn textures(&self) -> usize {
        self.slots
            .values()
            .filter(|(t, _)| matches!(t, Thumb::Ready(_)))
            .count()
    }
}
